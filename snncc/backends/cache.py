"""Content-hash build cache shared by the backends, and the rules for trusting it.

A build is keyed by the hash of its sources, the compiler command and the backend, so an
unchanged model never recompiles. Builds land in a temp file first and are renamed into place
(atomic), so concurrent processes (MPI ranks) can share one cache safely.

The cache holds code (shared libraries, cubins) that snncc loads and runs, so it is trusted
the way ssh trusts its keys: every directory snncc creates there is private (mode 0700), and a
directory or file owned by another user, or writable by group or others, is refused with a
CacheError before anything in it is read. A cache shared between the ranks of one MPI job
belongs to the one user who runs the job.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from snncc.errors import CacheError
from snncc.files import atomic_file


def cache_root() -> Path:
    """``$SNNCC_CACHE`` or ``~/.cache/snncc``, created private, checked trusted."""
    root = Path(os.environ.get("SNNCC_CACHE", Path.home() / ".cache" / "snncc"))
    return _private_dir(root)


def build_dir(backend: str) -> Path:
    root = cache_root()
    return _private_dir(_private_dir(root / "build") / backend)


def _private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; refuse it unless trusted."""
    if not path.exists():
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir(mode=0o700)
            except FileExistsError:  # another process (an MPI rank) made it first
                pass
            except OSError as err:
                raise CacheError(
                    f"cannot create the cache directory {d} ({err.strerror}); set SNNCC_CACHE "
                    "to a directory of your own"
                ) from None
    trusted(path, directory=True)
    return path


def trusted(path: Path, directory: bool = False) -> None:
    """Raise CacheError unless ``path`` is ours and no one else may write it."""
    try:
        st = path.lstat()
    except OSError as err:
        raise CacheError(f"cannot inspect the cache path {path} ({err.strerror})") from None
    kind = "directory" if directory else "file"
    fix = f"set SNNCC_CACHE to a directory of your own, or remove {path}"
    if directory and not stat.S_ISDIR(st.st_mode):
        raise CacheError(f"the cache path {path} is not a directory ({fix})")
    if not directory and not stat.S_ISREG(st.st_mode):
        raise CacheError(f"the cache file {path} is not a regular file (a link?); {fix}")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CacheError(
            f"the cache {kind} {path} belongs to another user (uid {st.st_uid}); snncc only "
            f"loads code from a cache of its own: {fix}"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(
            f"the cache {kind} {path} is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):o}), so anyone could place code there that snncc would "
            f"run; make it private: chmod go-w {path} (or {fix})"
        )


def trusted_file(path: Path) -> Path:
    """``path`` if it is a trusted file in a trusted directory (see :func:`trusted`)."""
    trusted(path.parent, directory=True)
    trusted(path)
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
    with atomic_file(cached, mode=0o700) as out, open(built, "rb") as src:
        shutil.copyfileobj(src, out)
