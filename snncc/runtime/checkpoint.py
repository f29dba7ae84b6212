"""Checkpoints: the network spec, rule, optimiser and every trained buffer, in one file.

Writes go to a temp file in the same directory, are fsynced, then renamed over the old file,
so a crash at any moment leaves either the old or the new checkpoint, never half of one.
Under MPI only rank 0 writes, and ``load`` reads on rank 0 and broadcasts the bytes, so the
checkpoint need not be on a file system every node sees.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from snncc.errors import SnnccError
from snncc.files import atomic_write

FORMAT = 1


def save_model(model, path) -> None:
    if not model.comm.is_root:  # the ranks hold the same state; rank 0 writes it
        return
    payload = {
        "format": FORMAT,
        "net": model.net,
        "rule": model.training.rule if model.training else None,
        "optimizer": model.optimizer,
        "batch_size": model.batch_size,
        "backend": model.backend,
        "state": model.state_dict(),
        "progress": dict(getattr(model, "progress", {})),
    }
    atomic_write(Path(path), pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))


def load(path, backend: str | None = None, devices=None):
    """Rebuild a model from ``path`` (compiling it, usually from the build cache)."""
    from snncc.runtime.compiler import compile as compile_net
    from snncc.runtime.parallel import world

    path = Path(path)

    def read() -> bytes:
        if not path.exists():
            raise SnnccError(f"no checkpoint at {path}")
        return path.read_bytes()

    data = world().bcast_from_root(read, f"reading {path}")  # rank 0 reads, all get it
    try:
        payload = pickle.loads(data)
    except Exception as err:
        raise SnnccError(f"{path} is not a readable snncc checkpoint ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SnnccError(f"{path} is not an snncc checkpoint of format {FORMAT}")
    model = compile_net(
        payload["net"],
        batch_size=payload["batch_size"],
        backend=backend or payload["backend"],
        rule=payload["rule"],
        optimizer=payload["optimizer"],
        devices=devices,
    )
    model.load_state_dict(payload["state"])
    model.progress = payload["progress"]
    return model
