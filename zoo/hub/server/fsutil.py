"""Crash-safe file primitives: atomic replace, exclusive create, cross-process locks, hashing.

Invariant kept by every writer in this package: a file under the store root is either absent or
complete. New content goes to a temporary file in the same directory, is fsync'ed, and is then
renamed into place (os.replace / os.link), after which the directory itself is fsync'ed. A process
killed with SIGKILL at any instant therefore leaves the old or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


def fsync_dir(path: Path) -> None:
    """Flush a directory entry table to disk (makes a preceding rename durable)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _write_tmp(path: Path, data: bytes, mode: int) -> Path:
    tmp = _tmp_sibling(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically and durably (tmp + fsync + os.replace + dir fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_tmp(path, data, mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Create `path` with `data` only if it does not exist; return False if it already existed.

    The file appears complete or not at all (written to a tmp file, then hard-linked into place,
    which fails atomically when the name is taken).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_tmp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def dump_json(obj: Any) -> bytes:
    """Serialise canonically (sorted keys, no whitespace): same object, same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_json(path: Path) -> Any:
    """Load a JSON file written by this package; FileNotFoundError if absent."""
    return json.loads(path.read_bytes())


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl.flock on `path` (created if needed) for the `with` body.

    Safe across processes and across threads of one process (each call opens its own file
    description). The kernel drops the lock when the holder dies, so SIGKILL never wedges a repo.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def git_blob_sha1(data: bytes) -> str:
    """Return git's object id of a blob holding `data` (sha1 of 'blob <size>\\0' + data)."""
    h = hashlib.sha1(f"blob {len(data)}\0".encode())
    h.update(data)
    return h.hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """Return the git-lfs pointer file text that stands for an LFS object in git."""
    return LFS_POINTER.format(oid=oid, size=size).encode()


def sweep_stale_tmp(directories: list[Path], older_than_s: float = 24 * 3600) -> int:
    """Remove `.name.<hex>.tmp` leftovers of writers killed mid-write; return how many went.

    Only files older than `older_than_s` are touched, so a writer in another process that is
    still between its write and its rename is never disturbed.
    """
    cutoff, removed = time.time() - older_than_s, 0
    for directory in directories:
        for path in directory.glob(".*.tmp") if directory.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
    return removed
