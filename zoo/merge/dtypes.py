"""Tensor dtypes by their safetensors names ("BF16", "F32"), without importing torch.

A merge is planned from file headers alone, so plans carry dtype names; a torch dtype is made
from a name (`to_torch`, which imports torch) only where a tensor is read or built.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# Bits per element of every dtype a safetensors header may name (the safetensors library's).
BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
# The dtypes zoo merges or copies: safetensors name -> torch's name (also config.json's).
TORCH_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}
FLOATS = ("F64", "F32", "F16", "BF16")
_BY_TORCH_NAME = {torch: safe for safe, torch in TORCH_NAMES.items()}


def name_of(dtype: Any) -> str:
    """Return the safetensors name of a dtype zoo handles, given that name or a torch.dtype
    (read without importing torch); raise ValueError for any other."""
    if isinstance(dtype, str) and dtype in TORCH_NAMES:
        return dtype
    name = _BY_TORCH_NAME.get(str(dtype).removeprefix("torch."))
    if name is None or isinstance(dtype, str):
        raise ValueError(f"not a dtype zoo handles: {dtype!r}")
    return name


def itemsize(name: str) -> int:
    """Bytes per element of a dtype zoo handles (by safetensors name)."""
    return BITS[name] // 8


def is_float(name: str) -> bool:
    return name in FLOATS


def promote(a: str, b: str) -> str:
    """The floating dtype two floating dtypes combine into, as torch.promote_types says."""
    if not (is_float(a) and is_float(b)):
        raise ValueError(f"promote() takes floating dtypes, not {a} and {b}")
    if a == b:
        return a
    return "F64" if "F64" in (a, b) else "F32"  # F16 with BF16 (or either with F32): F32


@cache
def to_torch(name: str) -> Any:
    """The torch.dtype of a safetensors name (imports torch: for reading or building tensors)."""
    import torch

    return getattr(torch, TORCH_NAMES[name])
