"""Checking user input and turning it into the spike bit words the kernels read.

Input spikes reach the kernels as (batch, steps, words) uint32: unit i of a step is bit i % 32
of word i // 32. np.packbits makes them from a dense array at memory speed (a CSR list needed
np.nonzero, 5x slower at SHD sizes), the kernels walk the set bits with a count-trailing-zeros
loop, and a batch slices along its first axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from snncc.errors import ShapeError

#: The most steps event lists may imply without an explicit ``n_steps`` (100 s at dt = 1 ms;
#: SHD's longest example is 1.4 s). Beyond it an event time is far more likely a unit mistake
#: (us or s for ms) than intended, and the bit words alone would take gigabytes.
MAX_IMPLIED_STEPS = 100_000


def spike_words(n_units: int) -> int:
    return (n_units + 31) // 32


def as_bits(
    x: object, name: str, n_units: int, dt: float, n_steps: int | None = None
) -> np.ndarray:
    """Dense (batch, time, n) 0/1 array, or a list of (times_ms, units) per example ->
    (batch, time, words) uint32 spike bits."""
    if n_steps is not None and (
        not isinstance(n_steps, (int, np.integer)) or isinstance(n_steps, bool) or n_steps < 1
    ):
        raise ShapeError(f"n_steps must be a positive integer, got {n_steps!r}")
    if isinstance(x, np.ndarray) or (hasattr(x, "__array__") and not isinstance(x, (list, tuple))):
        bits = _dense_bits(np.asarray(x), name, n_units)
        if n_steps is not None and n_steps != bits.shape[1]:  # it would be ignored silently
            raise ShapeError(
                f"input '{name}': n_steps={n_steps} applies to event lists; a dense array has "
                f"its own {bits.shape[1]} steps: slice it (x[:, :{n_steps}]) or drop n_steps"
            )
        return bits
    if isinstance(x, Sequence) and x and all(_is_events(e) for e in x):
        if not all(isinstance(e, tuple) for e in x) and _looks_dense(x, n_units):
            raise ShapeError(
                f"input '{name}': this nested list of shape (batch, 2, {n_units}) is ambiguous: "
                "dense 0/1 spikes over 2 steps, or (times_ms, units) event pairs? Pass "
                "np.asarray(x) for dense spikes, or each example as a (times_ms, units) tuple"
            )
        return _events_bits(x, name, n_units, dt, n_steps)
    raise ShapeError(
        f"input '{name}': expected a (batch, time, {n_units}) 0/1 array or a list of "
        f"(times_ms, units) event pairs, got {type(x).__name__}"
    )


def _is_events(e: object) -> bool:
    return isinstance(e, (tuple, list)) and len(e) == 2


def _looks_dense(x: Sequence, n_units: int) -> bool:
    """True if the list ``x`` is also a rectangular (batch, 2, n_units) array of numbers."""
    try:
        arr = np.asarray(x)
    except ValueError:  # ragged: only event lists can be ragged
        return False
    return arr.ndim == 3 and arr.shape[1:] == (2, n_units) and arr.dtype.kind in "biuf"


def _dense_bits(x: np.ndarray, name: str, n_units: int) -> np.ndarray:
    if x.ndim != 3 or x.shape[2] != n_units:
        raise ShapeError(
            f"input '{name}': shape {x.shape} is not (batch, time, {n_units}); give one 0/1 "
            f"value per example, step and input unit"
        )
    if not (
        x.dtype == bool or np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    ):
        raise ShapeError(f"input '{name}': dtype {x.dtype} is not a spike array; use bool/uint8")
    if x.dtype == np.uint8:  # the common case: one fast pass
        binary = not (x > 1).any()
    else:
        binary = x.dtype == bool or bool(np.all((x == 0) | (x == 1)))
    if not binary:
        bad = x[(x != 0) & (x != 1)].flat[0]
        raise ShapeError(
            f"input '{name}': spikes must be 0 or 1, found {bad!r}; threshold or bin your data "
            "first (snncc.data.bin_events)"
        )
    B, T, _ = x.shape
    if B == 0 or T == 0:
        raise ShapeError(
            f"input '{name}': shape {x.shape} has no {'examples' if B == 0 else 'time steps'}; "
            "give at least one example of at least one step"
        )
    # 0/1 bytes are valid booleans: no (x != 0) copy for bool and uint8 arrays
    spikes = x.view(bool) if x.dtype in (np.uint8, np.bool_) else (x != 0)
    packed = np.packbits(spikes, axis=-1, bitorder="little")  # (B, T, ceil(n / 8)) bytes
    W = spike_words(n_units)
    if packed.shape[-1] != 4 * W:  # whole words: pad each step's bytes
        padded = np.zeros((B, T, 4 * W), np.uint8)
        padded[..., : packed.shape[-1]] = packed
        packed = padded
    return packed.view("<u4").astype(np.uint32, copy=False)


def _events_bits(
    events: Sequence, name: str, n_units: int, dt: float, n_steps: int | None
) -> np.ndarray:
    steps, units = [], []
    for k, (times, idx) in enumerate(events):
        try:
            times, idx = np.asarray(times, dtype=np.float64), np.asarray(idx)
        except (TypeError, ValueError):
            raise ShapeError(
                f"input '{name}', example {k}: times must be numbers (ms), got {times!r:.60}"
            ) from None
        if times.shape != idx.shape or times.ndim != 1:
            raise ShapeError(f"input '{name}', example {k}: times and units must be equal 1-D")
        if idx.size and (
            not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n_units
        ):
            raise ShapeError(
                f"input '{name}', example {k}: units must be integers in [0, {n_units})"
            )
        if times.size and (not np.all(np.isfinite(times)) or times.min() < 0):
            raise ShapeError(f"input '{name}', example {k}: times must be finite and >= 0 (ms)")
        steps.append(np.floor(times / dt).astype(np.int64))
        units.append(idx.astype(np.int64))
    B = len(events)
    if n_steps is not None:
        T = int(n_steps)
    else:
        T = max((int(s.max()) + 1 for s in steps if s.size), default=1)
        if T > MAX_IMPLIED_STEPS:
            k = next(k for k, s in enumerate(steps) if s.size and s.max() + 1 == T)
            raise ShapeError(
                f"input '{name}', example {k}: an event at {np.max(events[k][0]):g} ms implies "
                f"{T} time steps of {dt:g} ms, more than the {MAX_IMPLIED_STEPS} snncc accepts "
                "without n_steps; check that times are in ms, or pass n_steps=... (later "
                "events are then dropped)"
            )
    W = spike_words(n_units)
    b = np.repeat(np.arange(B), [s.size for s in steps])
    none = np.zeros(0, np.int64)
    s, u = np.concatenate([none, *steps]), np.concatenate([none, *units])
    keep = s < T  # events after the last step are dropped
    b, s, u = b[keep], s[keep], u[keep]
    bits = np.zeros(B * T * W, np.uint32)
    np.bitwise_or.at(bits, (b * T + s) * W + (u >> 5), np.uint32(1) << (u & 31).astype(np.uint32))
    return bits.reshape(B, T, W)


def check_inputs(x: object, input_names: list[str]) -> Mapping[str, object]:
    """One input population: x itself; several: a dict keyed by population name."""
    if isinstance(x, (list, tuple)) and len(x) == 0:
        raise ShapeError("inputs: the batch is empty; give at least one example")
    if isinstance(x, Mapping):
        missing = [n for n in input_names if n not in x]
        extra = [n for n in x if n not in input_names]
        if missing or extra:
            raise ShapeError(
                f"inputs: expected keys {input_names}, missing {missing}, unknown {extra}"
            )
        return x
    if len(input_names) != 1:
        raise ShapeError(f"this network has inputs {input_names}; pass a dict keyed by them")
    return {input_names[0]: x}


def unpack_spikes(bits: np.ndarray, n: int) -> np.ndarray:
    """(B, T, words) uint32 bitfields -> (B, T, n) uint8 spikes."""
    as_bytes = bits.astype("<u4").view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n]
