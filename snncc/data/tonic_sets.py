"""Loaders for the public spiking benchmarks SHD, SSC and spiking sequential MNIST via tonic.

snncc NEVER downloads anything. Every loader first looks for the source files itself and
raises :class:`DatasetNotFoundError` (with instructions) if they are missing; tonic's dataset
classes are then constructed through subclasses whose ``download()`` raises, so tonic cannot
reach the network either.

Expected files (``data_dir`` is what you pass as ``--data-dir``):

* SHD: ``shd_train.h5``, ``shd_test.h5`` from https://zenkelab.org/datasets/ .
* SSC: ``ssc_train.h5``, ``ssc_valid.h5``, ``ssc_test.h5`` from the same page.
  For both, the ``.h5.gz`` files offered there (and the ``.h5.zip`` files tonic 1.7 itself
  would download) are accepted too; they are unpacked once into ``<cache_dir>/sources/``.
  The files may sit directly in ``data_dir`` or in ``data_dir/SHD`` / ``data_dir/SSC``
  (tonic's own layout) or ``data_dir/shd`` / ``data_dir/ssc``.
* SMNIST: the MNIST idx files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, raw or ``.gz``, directly in
  ``data_dir`` or in ``data_dir/smnist`` (tonic's layout), ``data_dir/mnist`` or
  ``data_dir/MNIST/raw`` (torchvision's layout). Any 28x28 idx set works, e.g. Fashion-MNIST
  from ``apt install dataset-fashion-mnist`` with ``--data-dir /usr/share/datasets/fashion-mnist``.

What tonic 1.7 expects, and what these loaders do about it:

* ``tonic.datasets.SHD/SSC(save_to)`` read ``<save_to>/SHD/shd_<split>.h5`` (the folder is the
  class name, not the ``hsd`` its docstring mentions) and call ``download()`` unless the
  archive ``shd_<split>.h5.zip`` is present next to it as well. The h5 layout is
  ``spikes/times`` (vlen float, seconds), ``spikes/units`` (vlen int), ``labels``,
  ``extra/keys`` and ``extra/speaker`` (the last two are read by the constructor). Times are
  converted to *integer* microseconds (truncated).
* ``tonic.datasets.SMNIST(save_to)`` reads the uncompressed idx files from
  ``<save_to>/smnist/``; its ``dt`` is the duration of one pixel in *microseconds*, and with
  ``duplicate=True`` every pixel lasts two steps (1568 steps per image).

If the files are not laid out the way tonic wants, they are symlinked (or decompressed) into a
private folder ``<cache_dir>/sources/<dataset>-<hash>/``. ``import tonic`` imports torch, so it
is only imported inside the loaders.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

from snncc.files import atomic_file

from .core import (
    DatasetError,
    DatasetNotFoundError,
    PathLike,
    SpikeDataset,
    cached_dataset,
    resolve_cache_dir,
)

__all__ = [
    "SHD_CLASSES",
    "SMNIST_CLASSES",
    "SSC_CLASSES",
    "ZENKELAB_URL",
    "load_shd",
    "load_smnist",
    "load_ssc",
]

ZENKELAB_URL = "https://zenkelab.org/datasets/"
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # what tonic 1.7 would use
SHD_CLASSES = 20
SSC_CLASSES = 35
SMNIST_CLASSES = 10
HSD_INPUTS = 700

_HSD_SPLITS = {"shd": ("train", "test"), "ssc": ("train", "valid", "test")}
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_WARN_BYTES = 4 << 30


# --------------------------------------------------------------------------------------------
# helpers: tonic without downloads, file discovery, staging


def _tonic():
    """The tonic package (it reads SHD, SSC and SMNIST), imported when first needed: it imports
    torch, and it is the optional extra ``datasets``."""
    try:
        import tonic.datasets
    except ImportError as err:
        raise DatasetError(
            f"reading SHD, SSC and SMNIST needs the tonic package ({err}); install it with "
            "pip install 'snncc[datasets]' (the embedded digits need nothing more)"
        ) from None
    return tonic


def _refuse_download(self: object) -> None:
    url = getattr(self, "url", None) or getattr(self, "base_url", "")
    raise DatasetNotFoundError(
        f"tonic wanted to download {url} into {getattr(self, 'location_on_system', '?')}; "
        "snncc never downloads datasets. Put the files there yourself (see snncc.data docs)."
    )


def _hsd_check_exists(self: object) -> bool:
    return os.path.isfile(os.path.join(self.location_on_system, self.data_filename))


def _no_download(base: type, check_exists: bool) -> type:
    """Subclass of a tonic dataset whose ``download`` raises. The subclass keeps the class name
    because tonic derives the data folder (``save_to/<ClassName>``) from it."""
    attrs: dict[str, object] = {"download": _refuse_download, "__module__": __name__}
    if check_exists:
        attrs["_check_exists"] = _hsd_check_exists
    return type(base.__name__, (base,), attrs)


def _check_dir(data_dir: PathLike | None, what: str, hint: str) -> Path:
    if data_dir is None:
        raise DatasetNotFoundError(
            f"{what} needs a data directory (pass --data-dir DIR / data_dir=DIR). {hint}"
        )
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise DatasetNotFoundError(
            f"{what}: data directory {d} does not exist or is not a directory. {hint}"
        )
    return d


def _check_options(what: str, dt: object, n_steps: object, limit: object) -> None:
    """The conversion options, checked before any file is opened."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < math.inf:
        raise DatasetError(f"{what}: dt must be a bin width > 0 in ms, got {dt!r}; e.g. dt=1.0")
    for name, value, low in (("n_steps", n_steps, 1), ("limit", limit, 0)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < low
        ):
            raise DatasetError(f"{what}: {name} must be None or an integer >= {low}, got {value!r}")


def _find(dirs: Sequence[Path], name: str, suffixes: Sequence[str]) -> Path | None:
    for d in dirs:
        for suffix in suffixes:
            p = d / (name + suffix)
            if p.is_file():
                return p
    return None


def _short_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _stage(src: Path, dest: Path) -> None:
    """Make ``dest`` an uncompressed copy of/link to ``src`` (.gz/.zip are unpacked)."""
    if dest.is_file():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix not in (".gz", ".zip"):
        try:
            os.symlink(src.resolve(), dest)
            return
        except FileExistsError:
            return
        except OSError:
            pass  # no symlinks on this filesystem: copy below
    with atomic_file(dest) as out:
        if src.suffix == ".gz":
            with gzip.open(src, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
        elif src.suffix == ".zip":
            with zipfile.ZipFile(src) as z:
                members = [m for m in z.namelist() if Path(m).name == dest.name]
                if not members:
                    raise DatasetNotFoundError(f"{src} contains no file named {dest.name}")
                with z.open(members[0]) as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        else:
            with open(src, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)


def _warn_size(name: str, n: int, n_steps: int | None, n_inputs: int) -> None:
    if n_steps is not None and n * n_steps * n_inputs > _WARN_BYTES:
        gib = n * n_steps * n_inputs / (1 << 30)
        warnings.warn(
            f"{name}: the dense spike array needs {gib:.1f} GiB "
            f"({n} x {n_steps} x {n_inputs} uint8); use a larger dt, a smaller n_steps "
            "or limit=",
            ResourceWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------
# SHD / SSC


def _hsd_hint(prefix: str, data_dir: Path | None) -> str:
    files = ", ".join(f"{prefix}_{s}.h5" for s in _HSD_SPLITS[prefix])
    target = str(data_dir) if data_dir is not None else "DIR"
    gz = " ".join(f"{ZENKELAB_URL}{prefix}_{s}.h5.gz" for s in _HSD_SPLITS[prefix])
    return (
        f"Get {files} from {ZENKELAB_URL} (offered as .h5.gz; .gz or .zip files may be left "
        f"compressed), e.g. `mkdir -p {target} && cd {target} && wget {gz}`, "
        f"then pass --data-dir {target}. snncc never downloads datasets itself."
    )


def _load_hsd(
    prefix: str,
    data_dir: PathLike | None,
    split: str,
    dt: float,
    n_steps: int | None,
    cache_dir: PathLike | None,
    limit: int | None,
    cache: bool,
) -> SpikeDataset:
    upper = prefix.upper()
    if split not in _HSD_SPLITS[prefix]:
        extra = " (use SpikeDataset.split() for a validation set)" if prefix == "shd" else ""
        raise DatasetError(
            f"{upper} split must be one of {list(_HSD_SPLITS[prefix])}, got {split!r}{extra}"
        )
    _check_options(upper, dt, n_steps, limit)
    d = _check_dir(data_dir, upper, _hsd_hint(prefix, None))
    fname = f"{prefix}_{split}.h5"
    dirs = [d, d / upper, d / prefix]
    src = _find(dirs, fname, ("", ".gz", ".zip"))
    if src is None:
        raise DatasetNotFoundError(
            f"{upper} {split} split: file {fname} (or {fname}.gz / {fname}.zip) not found in "
            f"{d} (also looked in {d / upper} and {d / prefix}). {_hsd_hint(prefix, d)}"
        )
    n_classes = SHD_CLASSES if prefix == "shd" else SSC_CLASSES
    name = f"{prefix}/{split}"
    params = {"split": split, "dt": float(dt), "n_steps": n_steps, "limit": limit}

    def build() -> SpikeDataset:
        try:
            return read(_tonic())
        except (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError) as err:
            if isinstance(err, DatasetError):
                raise
            raise DatasetError(
                f"{upper} {split} split: {src} is not a readable {upper} file "
                f"({type(err).__name__}: {err}); it should be the HDF5 file {fname} from "
                f"{ZENKELAB_URL}, with 'spikes/times', 'spikes/units' and 'labels'. Download it "
                "again."
            ) from None

    def read(tonic: object) -> SpikeDataset:
        if src.suffix == ".h5" and src.parent.name == upper:
            save_to = src.parent.parent  # already tonic's layout
        else:
            save_to = resolve_cache_dir(cache_dir) / "sources" / f"{prefix}-{_short_hash(src)}"
            _stage(src, save_to / upper / fname)
        cls = _no_download(getattr(tonic.datasets, upper), check_exists=True)  # type: ignore
        if prefix == "shd":
            tds = cls(save_to=str(save_to), train=(split == "train"))
        else:
            tds = cls(save_to=str(save_to), split=split)
        n = len(tds) if limit is None else min(limit, len(tds))
        _warn_size(name, n, n_steps, HSD_INPUTS)
        events, labels = [], []
        for i in range(n):
            ev, target = tds[i]
            events.append((ev["t"] / 1000.0, ev["x"]))  # tonic gives integer microseconds
            labels.append(int(target))
        return SpikeDataset.from_events(
            events, labels, HSD_INPUTS, dt, n_steps=n_steps, n_classes=n_classes, name=name
        )

    return cached_dataset(name, [src], params, build, cache_dir=cache_dir, cache=cache)


def load_shd(
    data_dir: PathLike | None,
    split: str = "train",
    dt: float = 1.0,
    n_steps: int | None = None,
    cache_dir: PathLike | None = None,
    limit: int | None = None,
    cache: bool = True,
) -> SpikeDataset:
    """Spiking Heidelberg Digits: 700 inputs, 20 classes, splits "train" / "test".

    ``dt`` is the bin width in ms; examples are padded to the longest one (about 1.4 s) unless
    ``n_steps`` is given. At ``dt=1`` the dense train set needs ~8 GB; ``limit`` keeps only
    the first N examples. The result is cached (see :mod:`snncc.data.core`).
    """
    return _load_hsd("shd", data_dir, split, dt, n_steps, cache_dir, limit, cache)


def load_ssc(
    data_dir: PathLike | None,
    split: str = "train",
    dt: float = 1.0,
    n_steps: int | None = None,
    cache_dir: PathLike | None = None,
    limit: int | None = None,
    cache: bool = True,
) -> SpikeDataset:
    """Spiking Speech Commands: 700 inputs, 35 classes, splits "train" / "valid" / "test".

    Same options as :func:`load_shd`. SSC is ~10x larger than SHD: use a coarse ``dt``,
    ``n_steps`` or ``limit``.
    """
    return _load_hsd("ssc", data_dir, split, dt, n_steps, cache_dir, limit, cache)


# --------------------------------------------------------------------------------------------
# spiking sequential MNIST


def _smnist_hint(data_dir: Path | None) -> str:
    target = str(data_dir) if data_dir is not None else "DIR"
    files = ", ".join(f for pair in _MNIST_FILES.values() for f in pair)
    return (
        f"Put the MNIST idx files ({files}; raw or .gz) into {target}, e.g. from "
        f"{MNIST_URL} or http://yann.lecun.com/exdb/mnist/, then pass --data-dir {target}. "
        "Offline alternative with the same format (Fashion-MNIST): "
        "`apt install dataset-fashion-mnist` and pass "
        "--data-dir /usr/share/datasets/fashion-mnist . "
        "snncc never downloads datasets itself."
    )


def load_smnist(
    data_dir: PathLike | None,
    split: str = "train",
    dt: float = 1.0,
    n_steps: int | None = None,
    cache_dir: PathLike | None = None,
    limit: int | None = None,
    num_neurons: int = 79,
    duplicate: bool = True,
    pixel_dt: float = 1.0,
    cache: bool = True,
) -> SpikeDataset:
    """Spiking sequential MNIST (tonic's SMNIST encoding), 10 classes, splits "train"/"test".

    Each of the 784 pixels (row-major) is one time slot of ``pixel_dt`` ms (two slots with
    ``duplicate=True``, which repeats every spike); ``num_neurons`` (odd; 79 as in mlGeNN, tonic's
    default is 99) threshold-crossing neurons encode the grey value: (num_neurons-1)/2 "up" and
    as many "down" crossing neurons plus one for value 255. ``n_inputs == num_neurons``.

    ``dt`` is the bin width in ms. ``n_steps`` defaults to the full sequence,
    ``ceil(784 * (2 if duplicate else 1) * pixel_dt / dt)`` (1568 at the defaults), so train
    and test have the same length. ``limit`` converts only the first N images (60000 x 1568 x
    79 bytes = 7.4 GB for the full train set).
    """
    if split not in _MNIST_FILES:
        raise DatasetError(f"SMNIST split must be one of {list(_MNIST_FILES)}, got {split!r}")
    if num_neurons % 2 == 0 or num_neurons < 3:
        raise DatasetError(f"num_neurons must be odd and >= 3, got {num_neurons}")
    _check_options("SMNIST", dt, n_steps, limit)
    d = _check_dir(data_dir, "SMNIST", _smnist_hint(None))
    dirs = [d, d / "smnist", d / "mnist", d / "MNIST" / "raw"]
    wanted = _MNIST_FILES[split]
    found = [_find(dirs, f, ("", ".gz")) for f in wanted]
    missing = [f for f, p in zip(wanted, found, strict=True) if p is None]
    if missing:
        raise DatasetNotFoundError(
            f"SMNIST {split} split: missing {' and '.join(missing)} (raw or .gz) in {d} (also "
            f"looked in {d / 'smnist'}, {d / 'mnist'}, {d / 'MNIST' / 'raw'}). "
            f"{_smnist_hint(d)}"
        )
    images, labels = found  # type: ignore[misc]
    seq_len = 784 * (2 if duplicate else 1) * pixel_dt
    if n_steps is None:
        n_steps = math.ceil(round(seq_len / dt, 9))
    name = f"smnist/{split}"
    params = {
        "split": split,
        "dt": float(dt),
        "n_steps": n_steps,
        "limit": limit,
        "num_neurons": num_neurons,
        "duplicate": bool(duplicate),
        "pixel_dt": float(pixel_dt),
    }

    def build() -> SpikeDataset:
        tonic = _tonic()
        if all(p.suffix != ".gz" and p.parent.name == "smnist" for p in (images, labels)) and (
            images.parent == labels.parent
        ):
            save_to = images.parent.parent
        else:
            save_to = (
                resolve_cache_dir(cache_dir) / "sources" / f"smnist-{_short_hash(images, labels)}"
            )
            for src, fname in zip((images, labels), wanted, strict=True):
                _stage(src, save_to / "smnist" / fname)
        cls = _no_download(tonic.datasets.SMNIST, check_exists=False)
        tds = cls(
            save_to=str(save_to),
            train=(split == "train"),
            duplicate=duplicate,
            num_neurons=num_neurons,
            dt=pixel_dt * 1000.0,  # tonic wants microseconds
        )
        n = len(tds) if limit is None else min(limit, len(tds))
        _warn_size(name, n, n_steps, num_neurons)
        events, ys = [], []
        for i in range(n):
            ev, target = tds[i]
            events.append((ev["t"] / 1000.0, ev["x"]))
            ys.append(int(target))
        return SpikeDataset.from_events(
            events, ys, num_neurons, dt, n_steps=n_steps, n_classes=SMNIST_CLASSES, name=name
        )

    return cached_dataset(name, [images, labels], params, build, cache_dir=cache_dir, cache=cache)
