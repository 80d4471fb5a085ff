"""Stream tensors into safetensors files whose layout is fixed before any tensor is computed.

Names, dtypes and shapes are known from the plan, so the header (and the shard split) is written
first and each tensor's bytes go straight to their offset: the output model is never held in
memory. The layout is a pure function of the entries, so equal inputs give byte-identical files.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from zoo.errors import ZooError

DEFAULT_SHARD_BYTES = 5_000_000_000
SAFE_NAMES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


@dataclass(frozen=True)
class Entry:
    """One output tensor: its name in the file, dtype and shape."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        numel = 1
        for dim in self.shape:
            numel *= dim
        return numel * self.dtype.itemsize


@dataclass(frozen=True)
class _Slot:
    file: Path
    offset: int  # absolute offset in the file
    entry: Entry


def layout(entries: Sequence[Entry], stem: str, max_shard_bytes: int) -> list[list[Entry]]:
    """Split entries into shards: widest dtypes first, then by name (keeps every tensor aligned)."""
    ordered = sorted(entries, key=lambda e: (-e.dtype.itemsize, e.name))
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

    Files are created (at full size) on construction; `close()` checks that every tensor was
    written and, when sharded, writes the index json. Not thread-safe.
    """

    def __init__(
        self,
        folder: Path,
        entries: Sequence[Entry],
        *,
        stem: str = "model",
        max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        shards = layout(entries, stem, max_shard_bytes)
        names = shard_names(stem, len(shards))
        self.files = [self.folder / n for n in names]
        self._slots: dict[str, _Slot] = {}
        for path, shard in zip(self.files, shards):
            self._create(path, shard)
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

    def _create(self, path: Path, shard: list[Entry]) -> None:
        header: dict = {"__metadata__": {"format": "pt"}}
        offset = 0
        for e in shard:
            header[e.name] = {
                "dtype": SAFE_NAMES[e.dtype],
                "shape": list(e.shape),
                "data_offsets": [offset, offset + e.nbytes],
            }
            offset += e.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        start = 8 + len(raw)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(start + offset)
        for e in shard:
            begin = header[e.name]["data_offsets"][0]
            self._slots[e.name] = _Slot(path, start + begin, e)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Write tensor `name` (cast to its planned dtype) at its place; each name once."""
        slot = self._slots.get(name)
        if slot is None or name not in self._pending:
            raise ZooError(f"tensor {name!r} is not expected (or already written)")
        if tuple(tensor.shape) != slot.entry.shape:
            raise ZooError(
                f"tensor {name!r} has shape {tuple(tensor.shape)}, planned {slot.entry.shape}"
            )
        data = tensor.detach().to("cpu", slot.entry.dtype).contiguous().reshape(-1)
        with open(slot.file, "r+b") as f:
            f.seek(slot.offset)
            f.write(data.view(torch.uint8).numpy().data)
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
        data = rows.detach().to("cpu", slot.entry.dtype).contiguous().reshape(-1)
        with open(slot.file, "r+b") as f:
            f.seek(slot.offset + start * (slot.entry.nbytes // max(shape[0], 1)))
            f.write(data.view(torch.uint8).numpy().data)
        self._rows_done[name] = start + len(rows)
        if self._rows_done[name] == shape[0]:
            self._pending.discard(name)

    def close(self) -> list[Path]:
        """Check completeness, write the shard index if any, and return the files written."""
        if self._pending:
            raise ZooError(
                f"{len(self._pending)} planned tensors were never written, "
                f"e.g. {sorted(self._pending)[0]!r}"
            )
        if self._index is not None:
            self.files[-1].write_text(json.dumps(self._index, indent=2) + "\n")
        return list(self.files)
