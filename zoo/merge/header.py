"""Read and check a safetensors file's header, without torch or the safetensors library.

The file is an 8-byte little-endian header length, that many bytes of JSON ({name: {"dtype",
"shape", "data_offsets"}, optional "__metadata__": {str: str}}), then the tensors' bytes. The
checks are the safetensors library's own (its read_metadata and validate): the header fits the
file and is a JSON object, every dtype is one safetensors knows, each tensor's byte range is
exactly its size, and the ranges tile the data from byte 0 to the end of the file, with no gap or
overlap. Only the header is read.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from zoo.merge.dtypes import BITS

MAX_HEADER_BYTES = 100_000_000  # the safetensors library refuses larger headers


@dataclass(frozen=True)
class HeaderEntry:
    """One tensor of a header: dtype (safetensors name), shape, byte range within the data."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """A checked header: where the data starts in the file, and the tensors sorted by name."""

    data_start: int
    tensors: Mapping[str, HeaderEntry]


def read_header(f: BinaryIO, file_size: int) -> Header:
    """Return the checked header of the safetensors file open in f (read from its start);
    raise ValueError saying what is wrong. Deterministic; reads only the header's bytes."""
    f.seek(0)
    if file_size < 8:
        raise ValueError("shorter than its 8-byte header length")
    (length,) = struct.unpack("<Q", f.read(8))
    if length > MAX_HEADER_BYTES or 8 + length > file_size:
        raise ValueError(f"header length {length} does not fit a file of {file_size} bytes")
    raw = f.read(length)
    if not raw.startswith(b"{"):
        raise ValueError("header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError alike
        raise ValueError(f"header is not JSON: {err}") from None
    header.pop("__metadata__", None)  # free-form strings; nothing to check for a merge
    tensors = {name: _entry(name, info) for name, info in sorted(header.items())}
    end = _check_tiling(tensors)
    if 8 + length + end != file_size:
        raise ValueError(f"tensor data ends at byte {8 + length + end}, the file at {file_size}")
    return Header(8 + length, tensors)


def _entry(name: str, info: Any) -> HeaderEntry:
    if not isinstance(info, dict) or info.get("dtype") not in BITS:
        raise ValueError(f"{name!r}: no dtype safetensors knows")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not _naturals(shape) or not _naturals(offsets) or len(offsets) != 2:
        raise ValueError(f"{name!r}: shape or data_offsets is not a list of whole numbers")
    return HeaderEntry(info["dtype"], tuple(shape), offsets[0], offsets[1])


def _naturals(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


def _check_tiling(tensors: Mapping[str, HeaderEntry]) -> int:
    """Check the byte ranges tile the data from 0 with each tensor's exact size; return the end."""
    end = 0
    for name, e in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        bits = math.prod(e.shape) * BITS[e.dtype]
        if e.begin != end or e.end < e.begin:
            raise ValueError(f"{name!r}: its data does not start where the previous one ends")
        if bits % 8 or e.end - e.begin != bits // 8:
            raise ValueError(f"{name!r}: {e.end - e.begin} bytes for {bits / 8:g} of data")
        end = e.end
    return end
