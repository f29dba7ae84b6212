"""Core data structures: event binning, the dense :class:`SpikeDataset`, and the on-disk cache.

Spike trains are stored densely as ``uint8`` arrays of shape ``(n_examples, n_steps,
n_inputs)`` with values 0/1 (several events of one unit inside one time bin count as one
spike). Time is measured in milliseconds throughout; ``dt`` is the bin width in ms.

Converted datasets are cached as compressed ``.npz`` files in ``cache_dir`` (default: the
environment variable ``SNNCC_CACHE``, else ``~/.cache/snncc``). The cache file name contains a
hash of the dataset name, the size and modification time of every source file, and all
conversion parameters, so changing any of them produces a new cache entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from snncc.errors import SnnccError
from snncc.files import atomic_file

__all__ = [
    "CACHE_ENV",
    "DatasetError",
    "DatasetNotFoundError",
    "SpikeDataset",
    "bin_events",
    "cache_key",
    "cached_dataset",
    "default_cache_dir",
]

#: Environment variable that overrides the default cache directory.
CACHE_ENV = "SNNCC_CACHE"
#: Bump when the conversion or the cache format changes; old cache entries are then ignored.
CACHE_FORMAT_VERSION = 1

PathLike = str | os.PathLike


class DatasetError(SnnccError, ValueError):
    """A dataset cannot be used as given: bad options, or files that are not what they should
    be. The message names the dataset, file or option and says what to do."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset's source files are not on disk. snncc never downloads anything itself."""


# --------------------------------------------------------------------------------------------
# binning


def bin_events(
    times: Sequence[float] | np.ndarray,
    units: Sequence[int] | np.ndarray,
    n_units: int,
    dt: float,
    n_steps: int | None = None,
) -> np.ndarray:
    """Bin an event list into a dense 0/1 spike raster.

    Args:
        times: event times in ms (float), all >= 0.
        units: unit (input channel) index of every event, ``0 <= unit < n_units``.
        n_units: number of units (columns of the result).
        dt: bin width in ms; event ``k`` goes to bin ``floor(times[k] / dt)``.
        n_steps: number of bins; events in later bins are dropped. Default: last bin + 1
            (0 for an empty event list).

    Returns:
        ``uint8`` array of shape ``(n_steps, n_units)``; several events of one unit in one bin
        give a single 1.
    """
    bins, units = _event_bins(times, units, n_units, dt)
    if n_steps is None:
        n_steps = _implied_steps([bins], dt)
    if n_steps < 0:
        raise DatasetError(f"n_steps must be >= 0, got {n_steps}")
    keep = bins < n_steps
    out = np.zeros((n_steps, n_units), dtype=np.uint8)
    out[bins[keep], units[keep]] = 1
    return out


def _event_bins(
    times: Sequence[float] | np.ndarray,
    units: Sequence[int] | np.ndarray,
    n_units: int,
    dt: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an event list and return (bin index, unit index) as int64 arrays."""
    if not dt > 0:
        raise DatasetError(f"dt must be > 0, got {dt}")
    try:
        times = np.asarray(times, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DatasetError(f"event times must be numbers (ms), got {times!r:.60}") from None
    units = np.asarray(units).ravel()
    if times.shape != units.shape:
        raise DatasetError(f"times and units differ in length: {times.size} vs {units.size}")
    if times.size and not np.all(np.isfinite(times)):
        raise DatasetError(f"event time {times[~np.isfinite(times)][0]} is not finite; drop it")
    if times.size and times.min() < 0:
        raise DatasetError(f"negative event time {times.min()}")
    if units.size and units.dtype.kind not in "iu":
        raise DatasetError(f"unit indices must be integers, got dtype {units.dtype}")
    if units.size and (units.min() < 0 or units.max() >= n_units):
        raise DatasetError(
            f"unit index out of range [0, {n_units}): min {units.min()}, max {units.max()}"
        )
    # Round before flooring so that e.g. t = 0.3 ms with dt = 0.1 ms lands in bin 3, not 2.
    bins = np.floor(np.round(times / dt, 9)).astype(np.int64)
    return bins, units.astype(np.int64)


def _implied_steps(bins: Sequence[np.ndarray], dt: float) -> int:
    """The steps event bins imply (last bin + 1), bounded like snncc's input conversion: an
    event at 1e9 ms is a unit mistake, and its dense raster would not fit in memory."""
    from snncc.runtime.inputs import MAX_IMPLIED_STEPS

    n_steps = max((int(b.max()) + 1 for b in bins if b.size), default=0)
    if n_steps > MAX_IMPLIED_STEPS:
        raise DatasetError(
            f"an event at bin {n_steps - 1} implies {n_steps} time steps of {dt:g} ms, more "
            f"than the {MAX_IMPLIED_STEPS} snncc accepts without n_steps; check that times are "
            "in ms, or pass n_steps=... (later events are then dropped)"
        )
    return n_steps


# --------------------------------------------------------------------------------------------
# dataset


class SpikeDataset:
    """A labelled set of dense spike rasters.

    Attributes:
        x: ``uint8`` array ``(n, n_steps, n_inputs)`` of 0/1 spikes.
        y: ``int64`` array ``(n,)`` of class labels in ``[0, n_classes)``.
        n_inputs: number of input channels.
        n_classes: number of classes (not necessarily all present in ``y``).
        n_steps: number of time steps.
        name: a human-readable name, e.g. ``"shd/train"``.
        dt: bin width in ms the rasters were made with (informational; may be None).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        n_classes: int | None = None,
        name: str = "dataset",
        dt: float | None = None,
    ) -> None:
        x = np.asarray(x)
        y = np.asarray(y)
        if x.ndim != 3:
            raise DatasetError(f"x must have shape (n, n_steps, n_inputs), got {x.shape}")
        if y.shape != (x.shape[0],):
            raise DatasetError(f"y must have shape ({x.shape[0]},), got {y.shape}")
        # nothing is coerced silently: 0.5 would become 0 and 2 stay 2 in the uint8 raster
        if x.dtype.kind not in "biuf":
            raise DatasetError(f"{name}: x has dtype {x.dtype}; give 0/1 spikes (uint8 or bool)")
        if not _binary(x):
            raise DatasetError(
                f"{name}: x must hold 0/1 spikes, found {x[(x != 0) & (x != 1)][0]!r}; threshold "
                "or bin the data first (bin_events)"
            )
        if y.size and y.dtype.kind not in "iu":
            raise DatasetError(f"{name}: labels y must be integers, got dtype {y.dtype}")
        self.x: np.ndarray = x.astype(np.uint8, copy=False)
        self.y: np.ndarray = y.astype(np.int64, copy=False)
        if n_classes is None:
            n_classes = int(self.y.max()) + 1 if self.y.size else 0
        if self.y.size and (self.y.min() < 0 or self.y.max() >= n_classes):
            raise DatasetError(f"labels must lie in [0, {n_classes})")
        self.n_classes: int = int(n_classes)
        self.name: str = name
        self.dt: float | None = dt

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_events(
        cls,
        events: Iterable[tuple[np.ndarray, np.ndarray]],
        labels: Sequence[int] | np.ndarray,
        n_inputs: int,
        dt: float,
        n_steps: int | None = None,
        n_classes: int | None = None,
        name: str = "dataset",
    ) -> SpikeDataset:
        """Bin a list of ``(times_ms, units)`` event lists (see :func:`bin_events`).

        All examples are zero-padded to the longest one, or cut/padded to ``n_steps`` if given.
        """
        per_example = [_event_bins(t, u, n_inputs, dt) for t, u in events]
        labels = np.asarray(labels, dtype=np.int64)
        if len(per_example) != labels.shape[0]:
            raise DatasetError(f"{len(per_example)} event lists but {labels.shape[0]} labels")
        if n_steps is None:
            n_steps = _implied_steps([b for b, _ in per_example], dt)
        x = np.zeros((len(per_example), n_steps, n_inputs), dtype=np.uint8)
        for i, (bins, units) in enumerate(per_example):
            keep = bins < n_steps
            x[i, bins[keep], units[keep]] = 1
        return cls(x, labels, n_classes=n_classes, name=name, dt=dt)

    # -- basic protocol -----------------------------------------------------------------------

    @property
    def n_inputs(self) -> int:
        """Number of input channels."""
        return int(self.x.shape[2])

    @property
    def n_steps(self) -> int:
        """Number of time steps per example."""
        return int(self.x.shape[1])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.x[index], int(self.y[index])

    def __repr__(self) -> str:
        rate = float(self.x.mean()) if self.x.size else 0.0
        dt = "" if self.dt is None else f", dt={self.dt:g}ms"
        return (
            f"SpikeDataset({self.name!r}, n={len(self)}, n_steps={self.n_steps}, "
            f"n_inputs={self.n_inputs}, n_classes={self.n_classes}{dt}, "
            f"spikes/step/input={rate:.4f})"
        )

    # -- iteration ----------------------------------------------------------------------------

    def epoch_order(
        self, shuffle: bool = True, seed: int | None = None, epoch: int = 0
    ) -> np.ndarray:
        """Example order for one epoch: a permutation that depends only on (seed, epoch)."""
        n = len(self)
        if not shuffle:
            return np.arange(n)
        rng = np.random.default_rng(np.random.SeedSequence([_seed(seed), int(epoch)]))
        return rng.permutation(n)

    def batches(
        self,
        batch_size: int,
        shuffle: bool = True,
        seed: int | None = None,
        epoch: int = 0,
        drop_last: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x_batch, y_batch)`` covering every example once.

        The order is a deterministic function of ``(seed, epoch)`` (``seed=None`` means 0), so
        a run resumed at epoch ``e`` sees exactly the batches it would have seen. Pass a
        different ``epoch`` each epoch to get a new order. With ``drop_last`` a final batch
        smaller than ``batch_size`` is skipped. Batches may be views of ``x``: do not modify.
        """
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        order = self.epoch_order(shuffle, seed, epoch)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            if not shuffle:
                sl = slice(start, start + len(idx))
                yield self.x[sl], self.y[sl]
            else:
                yield self.x[idx], self.y[idx]

    def n_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches :meth:`batches` yields."""
        n = len(self)
        return n // batch_size if drop_last else -(-n // batch_size)

    # -- subsets ------------------------------------------------------------------------------

    def _take(self, idx: np.ndarray | slice, name: str) -> SpikeDataset:
        return SpikeDataset(self.x[idx], self.y[idx], self.n_classes, name, self.dt)

    def subset(self, n: int | Sequence[int] | np.ndarray) -> SpikeDataset:
        """The first ``n`` examples (int), or the examples at the given indices."""
        if isinstance(n, (int, np.integer)):
            if n < 0:
                raise DatasetError(f"subset size must be >= 0, got {n}")
            return self._take(slice(0, int(n)), f"{self.name}[:{int(n)}]")
        idx = np.asarray(n, dtype=np.int64)
        return self._take(idx, f"{self.name}[subset {len(idx)}]")

    def split(self, fraction: float, seed: int = 0) -> tuple[SpikeDataset, SpikeDataset]:
        """Split into ``(rest, held_out)`` with ``fraction`` of the examples held out.

        E.g. ``train, valid = ds.split(0.1, seed=0)``. The split is stratified by class and
        deterministic in ``seed``; both parts keep the original relative order.
        """
        if not 0.0 <= fraction <= 1.0:
            raise DatasetError(f"fraction must be in [0, 1], got {fraction}")
        rng = np.random.default_rng(_seed(seed))
        classes, counts = np.unique(self.y, return_counts=True)
        # per-class quotas summing to round(fraction * n) (largest remainder, random ties)
        exact = fraction * counts
        quota = np.floor(exact).astype(np.int64)
        extra = int(round(fraction * len(self))) - int(quota.sum())
        if extra > 0:
            tiebreak = rng.random(len(classes))
            quota[np.lexsort((tiebreak, -(exact - quota)))[:extra]] += 1
        held = []
        for c, k in zip(classes, quota, strict=True):
            members = np.flatnonzero(self.y == c)
            held.append(rng.permutation(members)[:k])
        mask = np.zeros(len(self), dtype=bool)
        if held:
            mask[np.concatenate(held)] = True
        return (
            self._take(np.flatnonzero(~mask), f"{self.name}[split {1 - fraction:g}]"),
            self._take(np.flatnonzero(mask), f"{self.name}[split {fraction:g}]"),
        )

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: PathLike) -> None:
        """Write to a compressed ``.npz`` atomically (temporary file, then ``os.replace``)."""
        with atomic_file(path) as f:
            np.savez_compressed(
                f,
                x=self.x,
                y=self.y,
                n_classes=np.int64(self.n_classes),
                name=np.str_(self.name),
                dt=np.float64(np.nan if self.dt is None else self.dt),
            )

    @classmethod
    def load(cls, path: PathLike) -> SpikeDataset:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as f:
                dt = float(f["dt"])
                return cls(
                    f["x"],
                    f["y"],
                    n_classes=int(f["n_classes"]),
                    name=str(f["name"]),
                    dt=None if np.isnan(dt) else dt,
                )
        except (OSError, ValueError, KeyError, TypeError) as err:
            if isinstance(err, DatasetError):
                raise
            why = f"{type(err).__name__}: {err}"
            if "pickle" in str(err):  # numpy's text suggests loading it anyway: never
                why = "it holds pickled Python objects, which snncc never loads"
            raise DatasetError(
                f"{path} is not a dataset written by SpikeDataset.save ({why}); save it again"
            ) from None


def _binary(x: np.ndarray) -> bool:
    """True if x holds only 0 and 1 (for bool and uint8 rasters without a full-size temporary)."""
    if x.dtype == bool:
        return True
    if x.dtype.kind == "u":
        return x.size == 0 or int(x.max()) <= 1
    return bool(np.all((x == 0) | (x == 1)))


def _seed(seed: int | None) -> int:
    if seed is None:
        return 0
    seed = int(seed)
    if seed < 0:
        raise DatasetError(f"seed must be >= 0, got {seed}")
    return seed


# --------------------------------------------------------------------------------------------
# cache


def default_cache_dir() -> Path:
    """``$SNNCC_CACHE`` if set, else ``~/.cache/snncc``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snncc"


def resolve_cache_dir(cache_dir: PathLike | None) -> Path:
    """``cache_dir`` as a Path, or the default cache directory if it is None."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def cache_key(name: str, source_files: Iterable[PathLike], **params: object) -> str:
    """Hash of the dataset name, each source file's path, size and mtime, and ``params``."""
    sources = []
    for p in source_files:
        st = os.stat(p)
        sources.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    blob = json.dumps(
        {"v": CACHE_FORMAT_VERSION, "name": name, "sources": sources, "params": params},
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cached_dataset(
    name: str,
    source_files: Sequence[PathLike],
    params: dict[str, object],
    build: Callable[[], SpikeDataset],
    cache_dir: PathLike | None = None,
    cache: bool = True,
) -> SpikeDataset:
    """Load ``name`` from the cache if an entry for these sources and params exists, else
    ``build()`` it and store the result. ``cache=False`` bypasses the cache entirely."""
    if not cache:
        return build()
    key = cache_key(name, source_files, **params)
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    path = resolve_cache_dir(cache_dir) / f"{safe}-{key}.npz"
    if path.is_file():
        try:
            return SpikeDataset.load(path)
        except (OSError, ValueError, KeyError):
            pass  # unreadable (e.g. truncated by a crash before os.replace existed): rebuild
    ds = build()
    ds.save(path)
    return ds
