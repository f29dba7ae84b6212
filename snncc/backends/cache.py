"""Content-hash build cache shared by the backends.

A build is keyed by the hash of its sources, the compiler command and the backend, so an
unchanged model never recompiles. Builds land in a temp file first and are renamed into place
(atomic), so concurrent processes (MPI ranks) can share one cache safely.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from snncc.files import atomic_file


def cache_root() -> Path:
    root = Path(os.environ.get("SNNCC_CACHE", Path.home() / ".cache" / "snncc"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_dir(backend: str) -> Path:
    path = cache_root() / "build" / backend
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def publish(built: Path, cached: Path) -> None:
    """Copy a finished build into the cache atomically: concurrent builders (MPI ranks) never
    see half a file."""
    with atomic_file(cached, mode=0o755) as out, open(built, "rb") as src:
        shutil.copyfileobj(src, out)
