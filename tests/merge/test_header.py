"""The torch-free planning path: dtype names (zoo.merge.dtypes) agree with torch's dtypes, and the
safetensors header reader (zoo.merge.header) agrees with the safetensors library, on valid files
and on every kind of broken one."""

from __future__ import annotations

import io
import json
import struct

import pytest
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from zoo.merge import dtypes
from zoo.merge.header import read_header
from zoo.merge.writer import Entry

NAMES = list(dtypes.TORCH_NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_name_is_its_torch_dtype(name):
    dtype = dtypes.to_torch(name)
    assert dtypes.itemsize(name) == dtype.itemsize
    assert dtypes.is_float(name) == dtype.is_floating_point
    assert dtypes.name_of(dtype) == dtypes.name_of(name) == name
    assert Entry("t", dtype, (2,)) == Entry("t", name, (2,))


def test_promotion_is_torchs():
    for a in dtypes.FLOATS:
        for b in dtypes.FLOATS:
            expected = torch.promote_types(dtypes.to_torch(a), dtypes.to_torch(b))
            assert dtypes.to_torch(dtypes.promote(a, b)) == expected, (a, b)


def test_other_dtypes_are_refused():
    for other in (torch.complex64, torch.float8_e4m3fn, "float32", "F8_E4M3"):
        with pytest.raises(ValueError):
            dtypes.name_of(other)


def _file(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _read(raw: bytes):
    return read_header(io.BytesIO(raw), len(raw))


def test_a_saved_files_header_is_the_librarys(tmp_path):
    tensors = {
        "b": torch.zeros(3, 4, dtype=torch.bfloat16),
        "a": torch.arange(5, dtype=torch.int64),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 7),
        "flag": torch.ones(2, dtype=torch.bool),
    }
    raw = save(tensors, metadata={"format": "pt"})
    (tmp_path / "m.safetensors").write_bytes(raw)
    header = _read(raw)
    assert list(header.tensors) == sorted(tensors)
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as f:
        for name, entry in header.tensors.items():
            view = f.get_slice(name)
            assert (entry.dtype, list(entry.shape)) == (view.get_dtype(), view.get_shape())
            data = f.get_tensor(name).reshape(-1).view(torch.uint8).numpy().tobytes()
            assert raw[header.data_start + entry.begin : header.data_start + entry.end] == data


GOOD = {"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
BROKEN = {
    "truncated data": _file(GOOD, b"\0" * 7),
    "trailing bytes": _file(GOOD, b"\0" * 9),
    "not json": struct.pack("<Q", 9) + b"{not json" + b"\0" * 8,
    "not an object": struct.pack("<Q", 2) + b"[]",
    "length beyond the file": struct.pack("<Q", 1000) + b"{}",
    "shorter than 8 bytes": b"\0" * 5,
    "unknown dtype": _file(
        {"x": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8
    ),
    "wrong size": _file({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
    "a gap": _file({"x": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
    "overlap": _file(
        {
            "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "y": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
        },
        b"\0" * 8,
    ),
    "negative shape": _file({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b""),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_is_refused_as_the_library_refuses_it(tmp_path, case):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(BROKEN[case])
    with pytest.raises(ValueError):
        _read(BROKEN[case])
    with pytest.raises((SafetensorError, OSError, ValueError)):
        with safe_open(str(path), "pt") as f:
            [f.get_tensor(k) for k in f.keys()]


def test_the_valid_case_reads():
    header = _read(_file(GOOD, b"\0" * 8))
    assert header.tensors["x"].shape == (2,) and header.data_start == 8 + len(json.dumps(GOOD))
