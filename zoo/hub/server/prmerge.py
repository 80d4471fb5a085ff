"""Pull-request maths over trees, as pure functions: three-way merge, merge commit, text diff.

Trees are the flat `path -> entry` maps of commits.py. Nothing here reads the disk except
through the `read` callable that diff_text is given.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from zoo.hub.server import commits as C
from zoo.hub.server.fsutil import lfs_pointer

_DIFF_MAX_BYTES = 256 << 10  # files larger than this show as "Binary files ... differ"
_DIFF_MAX_FILES = 200


def merge_trees(base: dict, ours: dict, theirs: dict) -> tuple[dict, list[str]]:
    """Apply theirs' changes since `base` onto `ours`; (tree, sorted conflicting paths).

    A path both sides changed, to different results, is a conflict; so is a merged tree where a
    path is both a file and a folder (the paths involved are named). Deterministic.
    """
    mine, theirs_changes = C.changes(base, ours), C.changes(base, theirs)
    conflicts = [p for p, e in theirs_changes.items() if p in mine and mine[p] != e]
    merged = dict(ours)
    for path, entry in theirs_changes.items():
        if entry is None:
            merged.pop(path, None)
        else:
            merged[path] = entry
    if not conflicts:  # files of one side that the other side made folders
        dirs = C.directories(merged)
        conflicts = [p for p in merged if p in dirs]
    return merged, sorted(conflicts)


def merge_commit(repo_uid: str, parents: list[str], tree: dict, item: dict, author: str) -> dict:
    """The merge commit of pull request `item` (title 'Merge pull request #N: title')."""
    title = f"Merge pull request #{item['num']}: {item['title']}"
    return C.make_commit(repo_uid, parents, tree, title, "", author)


def diff_text(base: dict, head: dict, read: Callable[[dict], bytes | None]) -> str:
    """A git-style unified diff from tree `base` to tree `head` (LFS files as their pointers).

    `read(entry)` returns a regular file's bytes, or None if they cannot be read. Files over
    256 KiB or not UTF-8 show as binary; at most 200 files are listed.
    """
    parts = []
    for path, entry in list(C.changes(base, head).items())[:_DIFF_MAX_FILES]:
        old = base.get(path)
        parts.append(_file_diff(path, _text(old, read), _text(entry, read), old, entry))
    return "".join(parts)


def _text(entry: dict | None, read: Callable[[dict], bytes | None]) -> str | None:
    if entry is None:
        return ""
    if entry["lfs"]:
        return lfs_pointer(entry["sha256"], entry["size"]).decode()
    if entry["size"] > _DIFF_MAX_BYTES:
        return None
    data = read(entry)
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _file_diff(path: str, old: str | None, new: str | None, was, now) -> str:
    head = f"diff --git a/{path} b/{path}\n"
    if was is None:
        head += "new file mode 100644\n"
    elif now is None:
        head += "deleted file mode 100644\n"
    a = "/dev/null" if was is None else f"a/{path}"
    b = "/dev/null" if now is None else f"b/{path}"
    if old is None or new is None:
        return head + f"Binary files {a} and {b} differ\n"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), a, b, lineterm="\n"
    )
    return head + "".join(line if line.endswith("\n") else line + "\n" for line in lines)
