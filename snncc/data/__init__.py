"""Datasets for snncc: dense spike rasters with deterministic batching and an on-disk cache.

``load(name, data_dir, split)`` dispatches to :func:`load_digits` (embedded default, offline),
:func:`load_shd`, :func:`load_ssc` and :func:`load_smnist`. See :mod:`snncc.data.tonic_sets`
for the files each public dataset needs; nothing is ever downloaded.
"""

from __future__ import annotations

from .core import (
    CACHE_ENV,
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


def load(name: str, data_dir=None, split: str = "train", **kw) -> SpikeDataset:
    """Load dataset ``name`` (one of :data:`DATASETS`); ``kw`` goes to the specific loader.

    ``digits`` ignores ``data_dir``; the others raise :class:`DatasetNotFoundError` with
    instructions when ``data_dir`` is None or lacks the files.
    """
    key = name.lower()
    if key == "digits":
        return load_digits(split=split, **kw)
    if key == "shd":
        return load_shd(data_dir, split=split, **kw)
    if key == "ssc":
        return load_ssc(data_dir, split=split, **kw)
    if key == "smnist":
        return load_smnist(data_dir, split=split, **kw)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
