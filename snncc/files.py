"""Atomic file writes: the one mechanism behind checkpoints, the build and plan caches, the
dataset cache and benchmark results.

A writer gets a temporary file next to the target; on success it is renamed over the target in
one step, on any error it is removed. Readers and concurrent writers (MPI ranks sharing a cache)
see the old file or the new one, never half of one.
"""

from __future__ import annotations

import glob
import os
import socket
import tempfile
import time
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
    remove_stale_temps(path)
    prefix = f".{path.name}.{_HOST}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
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


#: A writer killed outright (kill -9, power cut) leaves its temp file behind. The next writer of
#: the same target removes it: the temp name holds host and pid, and a file of this host whose
#: process is gone, or of any host and older than a day, is stale.
_HOST = socket.gethostname().replace(".", "_") or "host"
STALE_AFTER_S = 24 * 3600


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove temp files that dead writers of ``path`` left; returns what was removed."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        parts = tmp.name[len(path.name) + 2 :].split(".")
        host, pid = (parts[0], parts[1]) if len(parts) >= 3 else ("", "")
        try:
            old = time.time() - tmp.stat().st_mtime > STALE_AFTER_S
        except OSError:
            continue
        if old or (host == _HOST and pid.isdigit() and not _alive(int(pid))):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def atomic_write(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` by ``data`` atomically (durably unless ``durable=False``)."""
    with atomic_file(path, durable=durable) as fh:
        fh.write(data)
