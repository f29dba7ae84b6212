"""Datasets for snncc: dense spike rasters with deterministic batching and an on-disk cache.

``load(name, data_dir, split)`` dispatches to :func:`load_digits` (embedded default, offline),
:func:`load_shd`, :func:`load_ssc` and :func:`load_smnist`. See :mod:`snncc.data.tonic_sets`
for the files each public dataset needs; nothing is ever downloaded.
"""

from __future__ import annotations

import os

from .core import (
    CACHE_ENV,
    DatasetError,
    DatasetNotFoundError,
    SpikeDataset,
    bin_events,
    cache_key,
    cached_dataset,
    default_cache_dir,
)
from .digits import load_digits
from .tonic_sets import load_shd, load_smnist, load_ssc

__all__ = [
    "CACHE_ENV",
    "DATASETS",
    "DatasetError",
    "DatasetNotFoundError",
    "SpikeDataset",
    "bin_events",
    "cache_key",
    "cached_dataset",
    "default_cache_dir",
    "load",
    "load_digits",
    "load_shd",
    "load_smnist",
    "load_ssc",
]

#: Names accepted by :func:`load`.
DATASETS = ("digits", "shd", "ssc", "smnist")


def load(
    name: str,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    **kw: object,
) -> SpikeDataset:
    """Load dataset ``name`` (one of :data:`DATASETS`); ``kw`` goes to the specific loader.

    ``digits`` ignores ``data_dir`` and the generic options ``cache_dir``/``cache`` (it is
    built in well under a second), accepts ``limit`` and only ``dt=1``. The others raise
    :class:`DatasetNotFoundError` with instructions when ``data_dir`` is None or lacks files.
    """
    if not isinstance(name, str):
        raise DatasetError(f"dataset name {name!r} must be a string: one of {', '.join(DATASETS)}")
    key = name.lower()
    if key == "digits":
        kw.pop("cache_dir", None)
        kw.pop("cache", None)
        limit = kw.pop("limit", None)
        dt = kw.pop("dt", 1.0)
        if dt != 1.0:
            raise DatasetError(f"digits has a fixed time step (dt=1), got dt={dt}")
        if kw.get("n_steps") is not None:
            raise DatasetError("digits has a fixed length; choose hold=/tail= instead of n_steps")
        kw.pop("n_steps", None)
        ds = load_digits(split=split, **kw)  # type: ignore[arg-type]
        return ds if limit is None else ds.subset(int(limit))  # type: ignore[arg-type]
    if key == "shd":
        return load_shd(data_dir, split=split, **kw)  # type: ignore[arg-type]
    if key == "ssc":
        return load_ssc(data_dir, split=split, **kw)  # type: ignore[arg-type]
    if key == "smnist":
        return load_smnist(data_dir, split=split, **kw)  # type: ignore[arg-type]
    raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
