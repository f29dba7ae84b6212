"""Atomic file writes: the one mechanism behind checkpoints, the build and plan caches, the
dataset cache and benchmark results.

A writer gets a temporary file next to the target; on success it is renamed over the target in
one step, on any error it is removed. Readers and concurrent writers (MPI ranks sharing a cache)
see the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(
    path: str | os.PathLike, mode: int = 0o644, durable: bool = False
) -> Iterator[BinaryIO]:
    """Write ``path`` through the yielded binary file; it appears only if the block succeeds.

    ``mode``: the file's permissions. ``durable``: fsync the file and the rename (checkpoints
    survive a power cut, not only a crash).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        try:
            fd = os.open(path.parent, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        except OSError:
            pass


def atomic_write(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` by ``data`` atomically (durably unless ``durable=False``)."""
    with atomic_file(path, durable=durable) as fh:
        fh.write(data)
