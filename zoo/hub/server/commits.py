"""Commit objects and tree edits, as pure functions over plain dicts (no I/O).

A tree is a flat map `path -> entry`, entry = {"sha256", "size", "lfs", "oid"} where `oid` is
the git blob id the Hub reports (git-sha1 of the bytes, or of the LFS pointer for LFS files).
A commit is {"id", "repo", "parents", "tree", "title", "message", "author", "date"}; its id is the
sha1 of its canonical JSON without the id, so it is 40-hex like a git commit id and changes with
any byte of its content. Commits are immutable once written.
"""

from __future__ import annotations

import fnmatch
import hashlib
from datetime import datetime, timezone

from zoo.hub.server.errors import HubError, bad_request
from zoo.hub.server.fsutil import dump_json, git_blob_sha1, lfs_pointer

LFS_THRESHOLD = 10 * 1024 * 1024

# The Hub's default .gitattributes for new repos (the LFS patterns, as on huggingface.co).
_LFS_PATTERNS = [
    *("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib"),
    *("*.lfs.*", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot"),
    *("*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors"),
    *("saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip"),
    *("*.zst", "*tfevents*", "*.gguf", "*.mds", "*.jsonl.gz", "*.lz4", "*.llamafile", "*.mp3"),
    *("*.wav", "*.flac", "*.ogg", "*.webm", "*.jpg", "*.jpeg", "*.png", "*.webp", "*.tiff"),
    *("*.db", "*.sqlite"),
]
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in _LFS_PATTERNS
).encode()
LFS_SUFFIXES = tuple(p[1:] for p in _LFS_PATTERNS if p.startswith("*.") and "*" not in p[2:])


def now_iso() -> str:
    """Current UTC time as the Hub writes it (ISO 8601, milliseconds, 'Z')."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def regular_entry(sha256: str, data: bytes) -> dict:
    """Tree entry for a file stored inline in git (ETag = git blob sha1)."""
    return {"sha256": sha256, "size": len(data), "lfs": False, "oid": git_blob_sha1(data)}


def lfs_entry(sha256: str, size: int) -> dict:
    """Tree entry for an LFS file (ETag = sha256; `oid` = git sha1 of its pointer)."""
    return {
        "sha256": sha256,
        "size": size,
        "lfs": True,
        "oid": git_blob_sha1(lfs_pointer(sha256, size)),
    }


def pointer_size(entry: dict) -> int:
    """Size in bytes of the LFS pointer file that stands for this entry in git."""
    return len(lfs_pointer(entry["sha256"], entry["size"]))


def upload_mode(path: str, size: int, sample: bytes) -> str:
    """Decide 'lfs' or 'regular' for a file to upload: large, binary-looking, or a binary suffix."""
    if size >= LFS_THRESHOLD or b"\0" in sample or path.lower().endswith(LFS_SUFFIXES):
        return "lfs"
    return "regular"


def make_commit(
    repo_uid: str, parents: list[str], tree: dict, title: str, message: str, author: str
) -> dict:
    """Build a new immutable commit object and give it its 40-hex content id."""
    body = {
        "repo": repo_uid,
        "parents": list(parents),
        "tree": tree,
        "title": title,
        "message": message,
        "author": author,
        "date": now_iso(),
    }
    return {"id": hashlib.sha1(dump_json(body)).hexdigest(), **body}


def apply_operations(tree: dict, operations: list[tuple[str, str, dict | None]]) -> dict:
    """Return a new tree with the operations applied: ('add', path, entry), ('delete', path,
    None), ('delete_folder', ...).

    Operations apply in order. Deleting a missing file or an empty folder is a 404 EntryNotFound
    (the client recognises the message). Does not mutate `tree`.
    """
    new = dict(tree)
    for kind, path, entry in operations:
        if kind == "add":
            new[path] = entry
        elif kind == "delete" and (path in new or not _is_folder(new, path)):
            if new.pop(path, None) is None:
                raise HubError(404, "EntryNotFound", f"A file with this name doesn't exist: {path}")
        else:
            doomed = [p for p in new if p.startswith(path + "/")]
            if not doomed:
                raise HubError(
                    404, "EntryNotFound", f"A folder with this name doesn't exist: {path}"
                )
            for p in doomed:
                del new[p]
    _check_file_dir_clash(new)
    return new


def _is_folder(tree: dict, path: str) -> bool:
    """True when `path` names a folder of `tree` (a deleted "dir" means "dir/", as on the Hub)."""
    return any(p.startswith(path + "/") for p in tree)


def _check_file_dir_clash(tree: dict) -> None:
    """Refuse a tree where a path is both a file and a folder ('a' and 'a/b')."""
    for path in tree:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in tree:
                raise bad_request(
                    f"path {path!r} needs {'/'.join(parts[:i])!r} to be a folder, but it is a file",
                    code="InvalidPath",
                )


def directories(tree: dict) -> set[str]:
    """Return every folder that holds at least one file of the tree."""
    dirs: set[str] = set()
    for path in tree:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return dirs


def folder_oid(tree: dict, folder: str) -> str:
    """A stable 40-hex id for a folder's content (changes when anything below it changes)."""
    prefix = folder + "/" if folder else ""
    listing = sorted((p, e["oid"]) for p, e in tree.items() if p.startswith(prefix))
    return hashlib.sha1(dump_json(listing)).hexdigest()


def gitignored(path: str, gitignore: str | None) -> bool:
    """True when `path` is ignored by the .gitignore text `gitignore` (as the Hub's preupload says).

    Supports the common rules: comments, `!` negation (last match wins), trailing `/` for
    folders, a `/` inside the pattern anchoring it at the repo root, and fnmatch globs.
    """
    ignored = False
    for raw in (gitignore or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        if line and _gitignore_match(path, line.lstrip("/"), anchored, dir_only):
            ignored = not negate
    return ignored


def _gitignore_match(path: str, pattern: str, anchored: bool, dir_only: bool) -> bool:
    parts = path.split("/")
    if anchored:
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        candidates = prefixes[:-1] if dir_only else prefixes
    else:
        candidates = parts[:-1] if dir_only else parts
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


def changes(old: dict, new: dict) -> dict[str, dict | None]:
    """Map each path that differs from `old` to `new` to its new entry (None: deleted)."""
    return {p: new.get(p) for p in sorted(old.keys() | new.keys()) if old.get(p) != new.get(p)}
