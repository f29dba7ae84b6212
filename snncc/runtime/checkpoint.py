"""Checkpoints: a zip archive of JSON metadata and NumPy arrays. Data only, never code.

``meta.json`` holds the format and version, the network spec as data (model/spec.py: equations
as text, rebuilt through the public API and the safe equation parser), the rule and optimiser
options, the training progress and a description of every array; each array is a ``.npy``
member read with ``allow_pickle=False`` after its header has been checked against that
description. docs/checkpoints.md documents the format.

Writes go to a temp file in the same directory, are fsynced, then renamed over the old file,
so a crash at any moment leaves either the old or the new checkpoint, never half of one.
Under MPI only rank 0 writes, and ``load`` reads on rank 0 and broadcasts the bytes, so the
checkpoint need not be on a file system every node sees.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from snncc.errors import CheckpointError, SnnccError, TrainingError
from snncc.files import atomic_file

FORMAT = "snncc-checkpoint"
VERSION = 2
META = "meta.json"
MAX_META_BYTES = 64 << 20
#: dtypes an array in a checkpoint may have (no object arrays: they would need pickle)
DTYPES = {"<f4", "<f8", "<i4", "<i8", "<u4", "|b1"}


# ----------------------------------------------------------------------------- options
def _registry() -> dict[str, type]:
    from snncc.symbolic.bptt import BPTT
    from snncc.symbolic.eprop import EProp
    from snncc.symbolic.optim import OPTIMIZERS

    return {"EProp": EProp, "BPTT": BPTT, **OPTIMIZERS}


def options_to_data(obj: object) -> dict | None:
    """A rule or optimiser (a dataclass of plain options) as ``{"type": ..., field: ...}``."""
    if obj is None:
        return None
    name = type(obj).__name__
    if name not in _registry() or not dataclasses.is_dataclass(obj):
        saved = ", ".join(_registry())
        raise SnnccError(f"cannot save a {name} in a checkpoint; snncc saves {saved}")
    data = {"type": name}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return data


def options_from_data(data: object, where: str) -> object:
    """Rebuild a rule or optimiser through its constructor (which validates every option)."""
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("type") not in _registry():
        raise CheckpointError(f"{where}: not a known rule or optimiser ({str(data)[:80]})")
    cls = _registry()[data["type"]]
    fields = {f.name for f in dataclasses.fields(cls)}
    options = {k: v for k, v in data.items() if k != "type"}
    unknown = set(options) - fields
    if unknown:
        raise CheckpointError(f"{where}: unknown {cls.__name__} option '{sorted(unknown)[0]}'")
    for k, v in options.items():
        if isinstance(v, list):
            options[k] = tuple(v)
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: invalid {cls.__name__} options ({err})") from None


# ------------------------------------------------------------------------------ writing
def write_archive(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """meta.json plus one .npy member per array, written atomically and durably."""
    meta = {**meta, "arrays": {k: _describe(a) for k, a in arrays.items()}}
    with atomic_file(path, durable=True) as fh, zipfile.ZipFile(fh, "w") as zf:
        zf.writestr(META, json.dumps(meta, indent=1, allow_nan=False))
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(name + ".npy", buf.getvalue())


def _describe(a: np.ndarray) -> dict:
    a = np.asarray(a)
    if a.dtype.str not in DTYPES:
        raise SnnccError(f"cannot save an array of dtype {a.dtype} in a checkpoint")
    return {"dtype": a.dtype.str, "shape": list(a.shape)}


def check_target(path: object) -> Path:
    """``path`` as a Path a checkpoint can be written to: a file name (not a directory) whose
    nearest existing folder is writable. Checked before any training or writing happens."""
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(
            f"a checkpoint path must be a file name such as 'run/checkpoint.snncc', got {path!r}"
        )
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory; give a file name inside it, e.g. {path / 'checkpoint.snncc'}"
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(
            f"cannot write the checkpoint {path}: {folder} is not a writable directory; choose "
            "another path"
        )
    return path


def save_model(model, path) -> None:
    from snncc import __version__
    from snncc.model.spec import digest, network_to_data

    if not model.comm.is_root:  # the ranks hold the same state; rank 0 writes it
        return
    path = check_target(path)
    if model.diverged:  # e.g. saved after fit raised: it would replace the last good checkpoint
        raise TrainingError(
            f"not saved to {path}: training stopped ({model.diverged}) and these weights are "
            "unusable; the file was left as it was. Restore a good state (snncc.load) first"
        )
    spec, net_arrays = network_to_data(model.net)
    state = model.state_dict()
    arrays = {f"network/{k}": v for k, v in net_arrays.items()}
    for group in ("weights", "params", "optimizer", "feedback"):
        arrays.update({f"state/{group}/{k}": v for k, v in state[group].items()})
    for name, array in arrays.items():
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise TrainingError(
                f"not saved to {path}: '{name}' holds NaN or inf (a diverged run, or a parameter "
                "such as a threshold of 0); the file was left as it was"
            )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "snncc": __version__,
        "network": spec,
        "spec_sha256": digest(spec, net_arrays),
        "structure": state["structure"],
        "rule": options_to_data(model.training.rule if model.training else None),
        "optimizer": options_to_data(model.optimizer),
        "batch_size": model.batch_size,
        "backend": model.backend,
        "step": state["step"],
        "progress": dict(getattr(model, "progress", {})),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError(
            f"cannot write the checkpoint {path}: its folder cannot be created "
            f"({err.strerror or err}); choose another path"
        ) from None
    write_archive(path, meta, arrays)


# ------------------------------------------------------------------------------ reading
def read_archive(data: bytes, path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a checkpoint's bytes; every check happens before an array is read."""

    def fail(why: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a usable snncc checkpoint: {why}")

    if not zipfile.is_zipfile(io.BytesIO(data)):
        hint = ""
        if data[:1] == b"\x80":  # a pickle: the format of snncc < 0.2, unsafe to open
            hint = (
                " It looks like a checkpoint of an older snncc (a Python pickle), which is never "
                "opened because loading a pickle can run code; retrain, or convert it with the "
                "old snncc version you trust."
            )
        raise fail(f"it is not a zip archive.{hint}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if META not in infos or infos[META].file_size > MAX_META_BYTES:
                raise fail(f"it has no {META} (or one over {MAX_META_BYTES >> 20} MiB)")
            meta = json.loads(zf.read(META))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise fail(f"{META} does not say format '{FORMAT}'")
            if meta.get("version") != VERSION:
                raise fail(
                    f"it is version {meta.get('version')!r}; this snncc reads version {VERSION}"
                )
            described = meta.get("arrays")
            if not isinstance(described, dict):
                raise fail(f"{META} has no array list")
            members = set(infos) - {META}
            expected = {k + ".npy" for k in described}
            if members != expected:
                odd = sorted(members ^ expected)[0]
                raise fail(f"member '{odd}' is missing or not described in {META}")
            arrays = {k: _read_array(zf, infos[k + ".npy"], d, fail) for k, d in described.items()}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as err:  # ValueError: JSON too
        raise fail(f"it is damaged ({err})") from None
    return meta, arrays


def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo, described: object, fail):
    if not isinstance(described, dict) or described.get("dtype") not in DTYPES:
        raise fail(f"{info.filename}: dtype {described!r} is not allowed")
    shape = described.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise fail(f"{info.filename}: bad shape {shape!r}")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise fail(f"{info.filename}: .npy format version {version} is not supported")
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        got_shape, fortran, dtype = read_header(fh)
        if dtype.str != described["dtype"] or list(got_shape) != shape or fortran:
            raise fail(f"{info.filename}: its header does not match {META}")
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if info.file_size - fh.tell() != size:  # no more and no less data than the header says
            raise fail(f"{info.filename}: holds {info.file_size - fh.tell()} bytes, not {size}")
        return np.frombuffer(fh.read(size), dtype=dtype).reshape(shape).copy()


def load(path, backend: str | None = None, devices=None, batch_size: int | None = None):
    """Rebuild a model from the checkpoint at ``path`` (compiling it, usually from the build
    cache) and restore its weights, parameters, optimiser state and progress."""
    from snncc.codegen.targets import TARGETS
    from snncc.model.spec import digest, network_from_data
    from snncc.runtime.compiler import compile as compile_net
    from snncc.runtime.parallel import world

    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"snncc.load needs the path of a checkpoint file, got {path!r}")
    path = Path(path)

    def read() -> bytes:
        if not path.exists():
            raise CheckpointError(f"no checkpoint at {path}: the file does not exist")
        if not path.is_file():
            raise CheckpointError(f"{path} is a directory, not a checkpoint file; give the file")
        return path.read_bytes()

    data = world().bcast_from_root(read, f"reading {path}")  # rank 0 reads, all get it
    meta, arrays = read_archive(data, path)
    net_arrays = {k[len("network/") :]: v for k, v in arrays.items() if k.startswith("network/")}
    try:
        net = network_from_data(meta.get("network"), net_arrays)
    except SnnccError as err:
        raise CheckpointError(f"{path}: its network spec is invalid: {err}") from None
    if digest(meta["network"], net_arrays) != meta.get("spec_sha256"):
        raise CheckpointError(f"{path}: its network spec does not match its checksum (damaged?)")
    saved_batch, saved_backend = meta.get("batch_size"), meta.get("backend")
    if not isinstance(saved_batch, int) or isinstance(saved_batch, bool) or saved_batch < 1:
        raise CheckpointError(f"{path}: {META} has no valid batch_size ({saved_batch!r}; damaged?)")
    if saved_backend not in TARGETS:
        raise CheckpointError(f"{path}: {META} has no valid backend ({saved_backend!r}; damaged?)")
    progress = meta.get("progress")
    if not isinstance(progress, dict) or not all(
        type(progress.get(k, 0)) is int and progress.get(k, 0) >= 0 for k in ("epoch", "seed")
    ):
        raise CheckpointError(f"{path}: {META} has no valid training progress ({progress!r})")
    model = compile_net(
        net,
        batch_size=saved_batch if batch_size is None else batch_size,
        backend=backend or saved_backend,
        rule=options_from_data(meta.get("rule"), f"{path}: rule"),
        optimizer=options_from_data(meta.get("optimizer"), f"{path}: optimizer"),
        devices=devices,
    )
    state: dict = {"structure": meta.get("structure"), "step": meta.get("step")}
    for group in ("weights", "params", "optimizer", "feedback"):
        prefix = f"state/{group}/"
        state[group] = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except SnnccError as err:
        raise CheckpointError(f"{path}: {err}") from None
    model.progress = progress
    return model
