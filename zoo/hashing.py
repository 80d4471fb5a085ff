"""Content hashes shared by every layer: sha256 of files and folders, git blob ids.

A folder is hashed file by file ({relative posix path: sha256}); callers differ only in which
files count, each for a reason recorded with its skip rule below. Every digest here is published
(locks, cards, eval results, cache keys), so none may change: tests/test_hashing.py pins them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

_CHUNK = 8 << 20

Skip = Callable[[PurePosixPath], bool]  # relative path -> leave the file out of the digest


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, streamed (never loads the file)."""
    return _stream(hashlib.sha256(), path)


def git_blob_id(path: Path) -> str:
    """The git blob id (sha1 of 'blob <size>\\0' + bytes) the Hub reports for regular files."""
    return _stream(hashlib.sha1(f"blob {path.stat().st_size}\0".encode()), path)


def _stream(h, path: Path) -> str:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def skip_download_cache(rel: PurePosixPath) -> bool:
    """Leave out `.cache/` (huggingface_hub's local-dir download metadata): every file of the
    repo itself counts, hidden ones (.gitattributes) included. The merge inputs' lock digests."""
    return ".cache" in rel.parts


def skip_hidden(rel: PurePosixPath) -> bool:
    """Leave out every path with a part starting with '.' (.git, .DS_Store, editor and tool
    caches): what a user's folder holds besides its content. Task-folder and model identities."""
    return any(part.startswith(".") for part in rel.parts)


def skip_nothing(rel: PurePosixPath) -> bool:
    """Count every file: for folders zoo wrote itself (merge outputs)."""
    return False


def folder_digest(
    folder: Path, skip: Skip = skip_download_cache, known: Mapping[str, str] | None = None
) -> dict[str, str]:
    """{relative posix path: sha256} for every file under folder that `skip` keeps, sorted.

    `known` hashes (taken while writing the files) are trusted instead of reading those files.
    Reads only; follows the order of sorted paths, so the same folder gives the same dict.
    """
    folder = Path(folder)
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = PurePosixPath(path.relative_to(folder).as_posix())
        if path.is_file() and not skip(rel):
            key = rel.as_posix()
            out[key] = known[key] if known and key in known else sha256_file(path)
    return out


def digest_sha256(digest: Mapping[str, str]) -> str:
    """One sha256 over a folder digest (its JSON, keys sorted): names and bytes of every file."""
    return hashlib.sha256(json.dumps(dict(digest), sort_keys=True).encode()).hexdigest()
