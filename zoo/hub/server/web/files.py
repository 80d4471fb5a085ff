"""What the file pages show: a folder's entries, a file as text, as a tensor table or as bytes.

Pure apart from reading stored objects: a text file up to TEXT_MAX, the header of a safetensors
file, nothing of any other file.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from zoo.hub.server import model_meta
from zoo.hub.server.objects import ObjectStore

TEXT_MAX = 512 << 10  # larger files are shown as bytes, with a link to the raw file


@dataclass(frozen=True)
class Entry:
    """One row of a folder listing: a file or a sub-folder."""

    name: str
    path: str
    folder: bool
    size: int | None = None
    lfs: bool = False


def listing(tree: dict, folder: str) -> list[Entry] | None:
    """The entries directly inside `folder` ('' = root), folders first; None if no such folder."""
    prefix = f"{folder}/" if folder else ""
    files, folders = [], {}
    for path, entry in tree.items():
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        head, sep, _ = rest.partition("/")
        if sep:
            folders.setdefault(head, Entry(head, prefix + head, True))
        else:
            files.append(Entry(rest, path, False, entry["size"], bool(entry["lfs"])))
    if folder and not files and not folders:
        return None
    return sorted(folders.values(), key=lambda e: e.name) + sorted(files, key=lambda e: e.name)


def crumbs(path: str) -> list[tuple[str, str]]:
    """(name, path) for each folder on the way to `path`, for the breadcrumb links."""
    parts = [p for p in path.split("/") if p]
    return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]


@dataclass(frozen=True)
class TensorRow:
    name: str
    dtype: str
    shape: str
    parameters: int


def tensor_table(objects: ObjectStore, entry: dict) -> list[TensorRow]:
    """The tensors a safetensors file's header lists (name, dtype, shape, parameters)."""
    header = model_meta.header_at(str(objects.path(entry["sha256"])))
    return [
        TensorRow(name, dtype, "×".join(map(str, shape)) or "scalar", prod(shape))
        for name, dtype, shape in model_meta.tensors(header)
    ]


def text_of(objects: ObjectStore, entry: dict) -> str | None:
    """The file as text when it is small UTF-8 without NUL bytes, else None."""
    if entry["size"] > TEXT_MAX:
        return None
    data = objects.path(entry["sha256"]).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
