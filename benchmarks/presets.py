"""Benchmark presets: the sizes, sequence lengths, repeats and time limits of each suite.

``cpu`` (default, SHD sizes with batch 32), ``cpu-quick`` (``--quick``), ``gpu`` (``--gpu``:
batch 512, cuda backend, PyTorch on the GPU), ``gpu-quick``, and ``smoke`` (tiny sizes, used
by the tests).
"""

from __future__ import annotations

from typing import Any

SHD = (700, 256, 20)
SMNIST = (79, 256, 10)
RATE = 0.015  # input spikes per input per 1 ms step (SHD: roughly 1-2 %)
#: the peers beside snncc and PyTorch's dense BPTT (``torch``) in ``vs_T`` (training.SIDES)
#: (and snncc's exact BPTT, compared with the strongest of them and with snncc eProp)
PEERS = ("snncc-bptt", "torch-sparse", "jax", "torch-sparse-lif", "jax-lif", "snntorch")

_CPU = dict(
    device="cpu",
    backend="cpu",
    shd=SHD,
    smnist=SMNIST,
    rate=RATE,
    B=32,
    Ts=(100, 300, 685, 1000, 1370),
    peers=PEERS,
    peer_Ts=(100, 1000, 1370),  # the headline sequence lengths
    repeats=5,
    warmup=1,
    online=True,
    online_repeats=1,
    batch_T=300,
    batches=(1, 4, 16, 64, 256, 512),
    batch_repeats=3,
    hidden_T=1370,
    hidden_B=32,
    hidden_sizes=(128, 256, 512, 1024),
    verify_max=False,
    infer_T=1568,
    infer_batch=512,
    latency_seconds=3.0,
    throughput_seconds=6.0,
    compile_cold=3,
    compile_cached=5,
    compile_nvcc=True,
    isolate=True,
    timeout=900.0,
)
_GPU = dict(
    _CPU,
    device="cuda",
    backend="cuda",
    B=512,
    Ts=(100, 300, 685, 1370),
    peer_Ts=(100, 1370),
    repeats=5,
    batch_T=1370,
    hidden_B=512,
    hidden_sizes=(256, 512, 1024, 2048),
    verify_max=True,
    verify_timeout=240,
    throughput_seconds=4.0,
    energy_seconds=3.0,
    compile_cold=2,
    compile_cached=3,
    compile_nvcc=False,
    isolate=False,
    timeout=300.0,
)
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": _CPU,
    "cpu-quick": dict(
        _CPU,
        Ts=(100, 300, 1000),
        peer_Ts=(100, 1000),
        repeats=3,
        batch_T=100,
        batches=(1, 8, 32, 128),
        batch_repeats=2,
        hidden_sizes=(64, 128, 256),
        latency_seconds=1.0,
        throughput_seconds=2.0,
        infer_batch=128,
        compile_cold=1,
        compile_cached=2,
        compile_nvcc=False,
    ),
    "gpu": _GPU,
    "gpu-quick": dict(
        _GPU,
        Ts=(100, 1370),
        peer_Ts=(1370,),
        repeats=3,
        batches=(1, 32, 512),
        batch_repeats=2,
        hidden_sizes=(256, 512, 1024),
        verify_max=False,
        latency_seconds=1.0,
        throughput_seconds=2.0,
        energy_seconds=2.0,
        compile_cold=1,
        compile_cached=1,
    ),
    "smoke": dict(
        _CPU,
        shd=(20, 16, 4),
        smnist=(9, 16, 4),
        B=2,
        Ts=(10, 20),
        peer_Ts=(20,),
        repeats=1,
        warmup=1,
        batch_T=10,
        batches=(1, 3),
        batch_repeats=1,
        hidden_T=20,
        hidden_B=2,
        hidden_sizes=(8, 16, 24),
        infer_T=40,
        infer_batch=3,
        latency_seconds=0.0,
        throughput_seconds=0.0,
        max_calls=2,
        compile_cold=1,
        compile_cached=1,
        compile_nvcc=False,
        isolate=False,
        timeout=300.0,
    ),
}
