"""Data-parallel training: several devices in one process, and MPI ranks (mpiexec -n 2).

Network: 20 inputs, 30 ALIF, 4 outputs, T = 50 (tests/mpi_worker.py). "Equal" means equal
weights after the optimiser steps to 1e-5; the gradients differ only in float32 summation order.
The MPI tests need an MPI launcher next to mpi4py (``pip install mpich``); they are skipped,
saying so, where none works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import snncc
from snncc.runtime.parallel import Communicator, RankFailure, launched_by_mpi
from tests import mpi_worker as w

ATOL = 1e-5
WORKER = str(Path(w.__file__).resolve())
ROOT = Path(__file__).resolve().parents[1]


def assert_same_weights(a: dict, b: dict, atol: float = ATOL) -> None:
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=atol, err_msg=k)


def reference(batch: int, steps: int = 3) -> tuple[dict, list[float]]:
    """One device holding the whole batch."""
    m = w.model(batch)
    losses = [r["loss"] for r in w.train_steps(m, steps, batch)]
    return w.weights(m), losses


# ----------------------------------------------------------------- one process, many devices
@pytest.mark.parametrize("batch,devices", [(8, 2), (7, 2), (5, 3)])
def test_devices_equal_one_device_with_the_full_batch(batch: int, devices: int) -> None:
    ref, ref_losses = reference(batch)
    m = w.model(-(-batch // devices), devices)
    assert len(m.programs) == devices
    losses = [r["loss"] for r in w.train_steps(m, 3, batch)]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    assert_same_weights(w.weights(m), ref)
    for prog in m.programs[1:]:  # every device took the same optimiser step
        for k in ("in_hid_w", "hid_hid_w", "opt_m_in_hid", "opt_v_hid_out"):
            np.testing.assert_array_equal(prog.get(k), m.programs[0].get(k))
    assert not np.array_equal(ref["in_hid"], w.weights(w.model(batch))["in_hid"])


def test_batch_larger_than_the_devices_hold_is_chunked_and_summed() -> None:
    """Capacity 3 on one device and 2 on each of two: 7 examples need several passes each."""
    ref, _ = reference(7)
    for devices, cap in ((1, 3), (2, 2)):
        m = w.model(cap, devices)
        w.train_steps(m, 3, 7)
        assert_same_weights(w.weights(m), ref)


def test_a_device_with_no_example() -> None:
    ref = w.model(1)
    m = w.model(1, devices=2)  # batch of 1 over 2 devices: device 0 gets none
    x, y = w.batch(0, 1)
    np.testing.assert_allclose(m.gradients(x, y)["hid_out"], ref.gradients(x, y)["hid_out"])
    m.train_batch(x, y)
    ref.train_batch(x, y)
    assert_same_weights(w.weights(m), w.weights(ref))


def test_shards_cover_the_batch_unevenly() -> None:
    assert Communicator.split(7, 2) == [(0, 3), (3, 7)]
    assert Communicator.split(5, 3) == [(0, 1), (1, 3), (3, 5)]
    assert Communicator.split(1, 3) == [(0, 0), (0, 0), (0, 1)]
    single = Communicator(None)
    assert (single.rank, single.size, single.shard(9), single.max_share(9)) == (0, 1, (0, 9), 9)


def test_mpi_is_detected_from_the_launcher_environment() -> None:
    assert not launched_by_mpi({})
    assert launched_by_mpi({"PMI_RANK": "0", "PMI_SIZE": "2"})  # MPICH / Intel MPI (Hydra)
    assert launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"})  # Open MPI
    assert launched_by_mpi({"PMIX_RANK": "1"})
    assert not launched_by_mpi({"PMI_RANK": "0", "SNNCC_MPI": "0"})
    assert launched_by_mpi({"SNNCC_MPI": "1"})


def test_single_process_never_imports_mpi() -> None:
    code = (
        "import sys, numpy as np; sys.path.insert(0, 'tests'); import mpi_worker as w; "
        "m = w.model(2); m.train_batch(*w.batch(0, 2)); m.evaluate(w.batch(1, 3)); "
        "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'; print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SNNCC_MPI", "PMI_RANK")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_rank_failure_names_the_ranks() -> None:
    one = RankFailure({1: "RuntimeError: injected"}, "training step 2")
    assert str(one) == "rank 1 failed while training step 2: RuntimeError: injected"
    two = RankFailure({3: "A: x", 0: "B: y"})
    assert two.ranks == [0, 3] and str(two).startswith("ranks 0, 3 failed: rank 0: B: y")
    assert isinstance(two, snncc.SnnccError)


# ------------------------------------------------------------------------------- MPI ranks
def _launcher() -> list[str] | None:
    """An mpiexec that goes with this Python's mpi4py (the venv's first), else None."""
    here = Path(sys.executable).parent / "mpiexec"
    cands = [here, shutil.which("mpiexec"), shutil.which("mpirun")]
    exe = next((str(c) for c in cands if c and Path(c).exists()), None)
    if exe is None:
        return None
    try:
        probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"],
                               capture_output=True, timeout=60)  # fmt: skip
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    cmd = [exe]
    if "Open MPI" in version.stdout + version.stderr or "OpenRTE" in version.stdout:
        cmd += ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return cmd


@pytest.fixture(scope="module")
def mpiexec():
    cmd = _launcher()
    if cmd is None:
        pytest.skip("no working MPI launcher (mpiexec) with mpi4py; install one: pip install mpich")
    return cmd


def run_ranks(mpiexec, n: int, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SNNCC_MPI"}
    env["OMP_NUM_THREADS"] = "1"  # n ranks on a small CI machine
    return subprocess.run([*mpiexec, "-n", str(n), sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_two_ranks_equal_a_single_process(mpiexec, tmp_path) -> None:
    ref, ref_losses = reference(7)  # 7 examples over 2 ranks: an uneven split
    proc = run_ranks(mpiexec, 2, WORKER, "train", str(tmp_path), "--batch", "7", "--steps", "3")
    assert proc.returncode == 0, proc.stderr
    got = dict(np.load(tmp_path / "weights.npz"))
    assert_same_weights(got, ref)
    info = json.loads((tmp_path / "losses.json").read_text())
    assert info["size"] == 2
    np.testing.assert_allclose(info["losses"], ref_losses, rtol=1e-5)


def test_two_ranks_with_event_inputs_run_the_whole_batch_steps(mpiexec, tmp_path) -> None:
    """Rank 0's examples end at step 20; it must still simulate the batch's 50 steps."""
    m = w.model(7)
    ref_losses = [r["loss"] for r in w.train_steps(m, 2, 7, events=True)]
    proc = run_ranks(mpiexec, 2, WORKER, "train", str(tmp_path), "--steps", "2", "--events")
    assert proc.returncode == 0, proc.stderr
    assert_same_weights(dict(np.load(tmp_path / "weights.npz")), w.weights(m))
    np.testing.assert_allclose(json.loads((tmp_path / "losses.json").read_text())["losses"],
                               ref_losses, rtol=1e-5)  # fmt: skip


def test_a_failing_rank_stops_every_rank_and_is_named(mpiexec, tmp_path) -> None:
    proc = run_ranks(mpiexec, 2, WORKER, "fail", str(tmp_path), "--rank", "1", "--step", "2")
    assert proc.returncode != 0
    assert "rank 1 failed while training step 2: RuntimeError: injected device failure" in (
        proc.stderr
    )
    assert not (tmp_path / "weights.npz").exists()


def test_an_uncaught_error_on_one_rank_aborts_the_job(mpiexec, tmp_path) -> None:
    proc = run_ranks(mpiexec, 2, WORKER, "raise", str(tmp_path), "--rank", "1", timeout=60)
    assert proc.returncode != 0
    assert "rank 1 failed: RuntimeError: deliberate failure on rank 1" in proc.stderr


def test_checkpoint_written_by_rank0_only_and_resumable(mpiexec, tmp_path) -> None:
    straight = w.model(7)
    straight.fit(w.dataset(), epochs=2, batch_size=7, seed=5, progress=False)
    first = run_ranks(mpiexec, 2, WORKER, "fit", str(tmp_path), "--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "writers.txt").read_text().split() == ["0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.snncc", "losses.json", "weights.npz", "writers.txt"]  # fmt: skip
    again = run_ranks(mpiexec, 2, WORKER, "fit", str(tmp_path), "--epochs", "1", "--resume")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "writers.txt").read_text().split() == ["0", "0"]
    assert_same_weights(dict(np.load(tmp_path / "weights.npz")), w.weights(straight))
    resumed = snncc.load(tmp_path / "checkpoint.snncc")  # and in a single process
    assert resumed.progress["epoch"] == 2
    assert_same_weights(w.weights(resumed), w.weights(straight))


def test_a_failed_checkpoint_write_stops_every_rank(mpiexec, tmp_path) -> None:
    proc = run_ranks(mpiexec, 2, WORKER, "save-fails", str(tmp_path))
    assert proc.returncode != 0
    assert "rank 0 failed while finishing epoch 1: OSError" in proc.stderr
    assert "No space left on device" in proc.stderr
    assert not (tmp_path / "checkpoint.snncc").exists()
    assert not list(tmp_path.glob(".checkpoint.snncc.*.tmp")), "a partial file was left"


def test_snncc_train_under_mpiexec(mpiexec, tmp_path) -> None:
    out = tmp_path / "run"
    args = ["--epochs", "1", "--neurons", "16", "--batch-size", "31", "--no-progress"]
    proc = run_ranks(mpiexec, 2, "-m", "snncc", "train", *args, "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("test accuracy") == 1, "only rank 0 prints"
    assert "2 MPI ranks" in proc.stdout
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2 and json.loads(rows[0])["epoch"] == 1  # the epoch, then the test set
    assert "test_accuracy" in json.loads(rows[1])
    assert (out / "checkpoint.snncc").exists() and (out / "config.json").exists()
