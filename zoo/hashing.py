"""Content hashes shared by every layer: sha256 of files and folders, git blob ids."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, streamed (never loads the file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id(path: Path) -> str:
    """The git blob id (sha1 of 'blob <size>\\0' + bytes) the Hub reports for regular files."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(folder: Path, skip: tuple[str, ...] = (".cache",)) -> dict[str, str]:
    """{relative posix path: sha256} for every file under folder, sorted, hidden caches skipped."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not set(rel.split("/")) & set(skip):
            out[rel] = sha256_file(path)
    return out
