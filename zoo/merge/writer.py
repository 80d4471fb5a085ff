"""Stream tensors into safetensors files whose layout is fixed before any tensor is computed.

Names, dtypes and shapes are known from the plan, so the header (and the shard split) is written
first and each tensor's bytes go straight to their offset: the output model is never held in
memory. The layout is a pure function of the entries, so equal inputs give byte-identical files.
Laying files out (and writing their headers) needs no torch; it is imported to write a tensor.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from zoo.errors import ZooError
from zoo.merge.dtypes import itemsize, name_of, to_torch

if TYPE_CHECKING:
    import torch

DEFAULT_SHARD_BYTES = 5_000_000_000
QUEUE_BYTES = 64 * 2**20  # output bytes queued for the writer thread before the caller waits


@dataclass(frozen=True)
class Entry:
    """One output tensor: its name in the file, dtype and shape. dtype: a safetensors name
    ("BF16") or a torch.dtype, kept as the name (zoo.merge.dtypes)."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", name_of(self.dtype))

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * itemsize(self.dtype)


@dataclass(frozen=True)
class _Slot:
    file: Path
    offset: int  # absolute offset in the file
    entry: Entry


class _File:
    """One output file: an open handle and the sha256 of its bytes, kept while writes arrive in
    file order (the engine writes in that order); out of order, the hash is taken at close.
    The hash is taken on `hasher`'s thread, beside the next write."""

    def __init__(self, path: Path, header: bytes, size: int, hasher: ThreadPoolExecutor):
        self.path = path
        self.size = size
        self.handle = open(path, "wb+")
        self.handle.write(header)
        self.handle.truncate(size)
        self.digest = hashlib.sha256(header)
        self.hashed_to: int | None = len(header)  # None: out of order, hash at close
        self.hasher = hasher

    def write(self, offset: int, data: memoryview) -> Future | None:
        """Write data at offset; return the future of its hash update (None: not hashed)."""
        self.handle.seek(offset)
        self.handle.write(data)
        if self.hashed_to == offset:
            self.hashed_to = offset + len(data)
            return self.hasher.submit(self.digest.update, data)  # one thread: in file order
        self.hashed_to = None
        return None

    def finish(self) -> str:
        self.handle.close()
        if self.hashed_to == self.size:
            return self.digest.hexdigest()
        return _sha256_of(self.path)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def layout(entries: Sequence[Entry], stem: str, max_shard_bytes: int) -> list[list[Entry]]:
    """Split entries into shards: widest dtypes first, then by name (keeps every tensor aligned)."""
    ordered = sorted(entries, key=lambda e: (-itemsize(e.dtype), e.name))
    shards: list[list[Entry]] = [[]]
    size = 0
    for entry in ordered:
        if shards[-1] and size + entry.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += entry.nbytes
    return shards


def shard_names(stem: str, count: int) -> list[str]:
    """Return Hugging Face shard names: model.safetensors or model-0000i-of-0000n.safetensors."""
    if count == 1:
        return [f"{stem}.safetensors"]
    return [f"{stem}-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


class StreamWriter:
    """Write a planned set of tensors into one folder, in any order, each exactly once.

    Files are created (at full size) on construction. Writes go to a background thread (up to
    `queue_bytes` queued, and at least two tensors of any size), which overlaps the disk with the
    next tensor's merge, and the hashes to another; a write error surfaces on a later call.
    Writing tensors in `order()` lets the sha256 of each file be taken on the way (`hashes`).
    `close()` waits for the writes, checks that every tensor was written and, when sharded,
    writes the index json; `abort()` stops without checking.
    Call from one thread.
    """

    def __init__(
        self,
        folder: Path,
        entries: Sequence[Entry],
        *,
        stem: str = "model",
        max_shard_bytes: int = DEFAULT_SHARD_BYTES,
        queue_bytes: int = QUEUE_BYTES,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        shards = layout(entries, stem, max_shard_bytes)
        names = shard_names(stem, len(shards))
        self.files = [self.folder / n for n in names]
        self._slots: dict[str, _Slot] = {}
        self._open: dict[Path, _File] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-writer")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-hasher")
        self._queued: deque[tuple[Future, int]] = deque()  # (write, its bytes)
        self._queue_bytes = queue_bytes
        self._hashes: dict[str, str] = {}
        try:
            for path, shard in zip(self.files, shards):
                self._create(path, shard)
        except BaseException:
            self.abort()
            raise
        self._pending = set(self._slots)
        self._rows_done: dict[str, int] = {}
        self._index = None
        if len(shards) > 1:
            total = sum(e.nbytes for e in entries)
            weight_map = {e.name: n for n, shard in zip(names, shards) for e in shard}
            self._index = {
                "metadata": {"total_size": total},
                "weight_map": dict(sorted(weight_map.items())),
            }
            self.files.append(self.folder / f"{stem}.safetensors.index.json")

    def order(self) -> list[str]:
        """Return the tensor names in file order (writing in this order keeps hashes on the way)."""
        return sorted(self._slots, key=lambda n: (self._slots[n].file, self._slots[n].offset))

    def _create(self, path: Path, shard: list[Entry]) -> None:
        header: dict = {"__metadata__": {"format": "pt"}}
        offset = 0
        for e in shard:
            header[e.name] = {
                "dtype": e.dtype,
                "shape": list(e.shape),
                "data_offsets": [offset, offset + e.nbytes],
            }
            offset += e.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        start = 8 + len(raw)
        header_bytes = struct.pack("<Q", len(raw)) + raw
        self._open[path] = _File(path, header_bytes, start + offset, self._hasher)
        for e in shard:
            begin = header[e.name]["data_offsets"][0]
            self._slots[e.name] = _Slot(path, start + begin, e)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Write tensor `name` (cast to its planned dtype) at its place; each name once. The
        tensor must not be modified afterwards (it may still be queued)."""
        slot = self._slots.get(name)
        if slot is None or name not in self._pending:
            raise ZooError(f"tensor {name!r} is not expected (or already written)")
        if tuple(tensor.shape) != slot.entry.shape:
            raise ZooError(
                f"tensor {name!r} has shape {tuple(tensor.shape)}, planned {slot.entry.shape}"
            )
        self._submit(slot.file, slot.offset, tensor, slot.entry.dtype)
        self._pending.discard(name)

    def write_rows(self, name: str, start: int, rows: torch.Tensor) -> None:
        """Write rows start:start+len(rows) of tensor `name`; rows arrive in order, each once,
        and the tensor counts as written when its last row is."""
        slot = self._slots.get(name)
        if slot is None or name not in self._pending:
            raise ZooError(f"tensor {name!r} is not expected (or already written)")
        shape = slot.entry.shape
        done = self._rows_done.get(name, 0)
        if start != done or tuple(rows.shape[1:]) != shape[1:] or start + len(rows) > shape[0]:
            raise ZooError(
                f"rows {start}:{start + len(rows)} of {name!r} (shape {tuple(rows.shape)}) do not "
                f"continue its {done} rows written of {shape}"
            )
        row_bytes = slot.entry.nbytes // max(shape[0], 1)
        self._submit(slot.file, slot.offset + start * row_bytes, rows, slot.entry.dtype)
        self._rows_done[name] = start + len(rows)
        if self._rows_done[name] == shape[0]:
            self._pending.discard(name)

    def _submit(self, path: Path, offset: int, tensor: torch.Tensor, dtype: str) -> None:
        import torch  # tensors are torch's: torch is loaded already

        data = tensor.detach().to("cpu", to_torch(dtype)).contiguous().reshape(-1)
        view = memoryview(data.view(torch.uint8).numpy())  # keeps data alive until written
        queued = sum(n for _, n in self._queued)
        while len(self._queued) >= 2 and queued + view.nbytes > self._queue_bytes:
            queued -= self._wait_oldest()
        self._queued.append((self._pool.submit(self._open[path].write, offset, view), view.nbytes))

    def _wait_oldest(self) -> int:
        """Wait for the oldest queued write (and its hash); return its bytes."""
        write, nbytes = self._queued.popleft()
        hashed = write.result()
        if hashed is not None:
            hashed.result()
        return nbytes

    def _drain(self) -> None:
        while self._queued:
            self._wait_oldest()

    def close(self) -> list[Path]:
        """Wait for the writes, check completeness, write the shard index if any, and return the
        files written."""
        try:
            self._drain()
        except BaseException:
            self.abort()
            raise
        if self._pending:  # the writer stays usable: the missing tensors may still come
            raise ZooError(
                f"{len(self._pending)} planned tensors were never written, "
                f"e.g. {sorted(self._pending)[0]!r}"
            )
        self._pool.shutdown()
        self._hasher.shutdown()
        for path, file in self._open.items():
            self._hashes[path.name] = file.finish()
        self._open.clear()
        if self._index is not None:
            self.files[-1].write_text(json.dumps(self._index, indent=2) + "\n")
        return list(self.files)

    def abort(self) -> None:
        """Stop: cancel queued writes, wait for the running one, close the files (left as they
        are, for the caller to remove)."""
        for future, _ in self._queued:
            future.cancel()
        self._queued.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._hasher.shutdown(wait=True, cancel_futures=True)
        for file in self._open.values():
            file.handle.close()
        self._open.clear()

    def hashes(self) -> dict[str, str]:
        """After close: {file name: sha256} of the safetensors files (not the index json)."""
        return dict(self._hashes)


class Planned(Protocol):
    """A planned output tensor (zoo.merge.planning.TensorTask): its module folder and entry."""

    @property
    def module(self) -> str: ...

    @property
    def entry(self) -> Entry: ...


P = TypeVar("P", bound=Planned)


def by_module(tasks: Sequence[P]) -> dict[str, list[P]]:
    """Return the tasks grouped by module folder ("" for the top level), in first-seen order."""
    groups: dict[str, list[P]] = {}
    for task in tasks:
        groups.setdefault(task.module, []).append(task)
    return groups


def planned_files(tasks: Sequence[Planned], max_shard_bytes: int) -> list[str]:
    """Return the files StreamWriters (one per module folder) will write for `tasks`, relative
    to the output folder: the shards, and the index json where a module is sharded."""
    files = []
    for module, group in by_module(tasks).items():
        shards = layout([t.entry for t in group], "model", max_shard_bytes)
        names = shard_names("model", len(shards))
        names += ["model.safetensors.index.json"] if len(shards) > 1 else []
        files += [f"{module}/{name}" if module else name for name in names]
    return files


class ModuleWriters:
    """One StreamWriter per module folder, the tasks in the order of their bytes in the files,
    and, after a clean exit, {weight file relative to tmp: sha256}. A failure aborts them all."""

    def __init__(self, tmp: Path, tasks: Sequence[P], max_shard_bytes: int):
        self.writers: dict[str, StreamWriter] = {}
        groups = by_module(tasks)
        try:
            for module, group in groups.items():
                entries = [t.entry for t in group]
                self.writers[module] = StreamWriter(
                    tmp / module, entries, max_shard_bytes=max_shard_bytes
                )
        except BaseException:
            self._abort()
            raise
        self.order: list[P] = [
            task
            for module, group in groups.items()
            for task in _in_order(group, self.writers[module].order())
        ]
        self.hashes: dict[str, str] = {}

    def __getitem__(self, module: str) -> StreamWriter:
        return self.writers[module]

    def __enter__(self) -> ModuleWriters:
        return self

    def __exit__(self, kind, *exc: object) -> None:
        if kind is not None:
            self._abort()
            return
        try:
            for module, writer in self.writers.items():
                writer.close()
                prefix = f"{module}/" if module else ""
                self.hashes.update({prefix + n: h for n, h in writer.hashes().items()})
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def _in_order(tasks: Sequence[P], names: Sequence[str]) -> list[P]:
    position = {name: i for i, name in enumerate(names)}
    return sorted(tasks, key=lambda t: position[t.entry.name])
