"""What the Hub reads out of a model's files: config.json, safetensors parameter counts, tags.

The Hub's model info carries `config` (a few keys of config.json), `safetensors` (parameters per
dtype and in total, summed over the headers of every .safetensors file) and tags derived from
config.json (its `model_type`). Only the first bytes of each file are read (a safetensors header
is an 8-byte length and a JSON object). Pure apart from reading stored objects; cached per blob.
"""

from __future__ import annotations

import json
import struct
from functools import lru_cache
from math import prod
from pathlib import Path

from zoo.hub.server.objects import ObjectStore

_CONFIG_MAX = 1 << 20
_HEADER_MAX = 100 << 20  # the safetensors format's own cap on the header length
_CONFIG_KEYS = ("architectures", "model_type", "auto_map", "task_specific_params")


@lru_cache(maxsize=4096)
def _config_at(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_bytes()[:_CONFIG_MAX])
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@lru_cache(maxsize=1024)
def header_at(path: str) -> dict:
    """The JSON header of a safetensors file ({} when it is not one); cached per blob."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > _HEADER_MAX:
                return {}
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    return header if isinstance(header, dict) else {}


def tensors(header: dict) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, dtype, shape) of every well-formed tensor entry of a header, in file order."""
    out = []
    for name, tensor in header.items():
        if name == "__metadata__" or not isinstance(tensor, dict):
            continue
        shape, dtype = tensor.get("shape"), tensor.get("dtype")
        if isinstance(dtype, str) and isinstance(shape, list):
            if all(isinstance(d, int) and d >= 0 for d in shape):
                out.append((name, dtype, tuple(shape)))
    return out


@lru_cache(maxsize=4096)
def _header_counts(path: str) -> tuple[tuple[str, int], ...]:
    """((dtype, parameters), ...) of one safetensors file; () when it is not one."""
    counts: dict[str, int] = {}
    for _name, dtype, shape in tensors(header_at(path)):
        counts[dtype] = counts.get(dtype, 0) + prod(shape)
    return tuple(sorted(counts.items()))


def config(objects: ObjectStore, tree: dict) -> dict | None:
    """The Hub's `config` of a model: the known keys of its config.json, or None without one."""
    entry = tree.get("config.json")
    if entry is None or entry["size"] > _CONFIG_MAX:
        return None
    data = _config_at(str(objects.path(entry["sha256"])))
    return {k: data[k] for k in _CONFIG_KEYS if k in data}


def safetensors(objects: ObjectStore, tree: dict) -> dict | None:
    """{"parameters": {dtype: n}, "total": n} over every .safetensors file; None without one."""
    files = [e for p, e in sorted(tree.items()) if p.endswith(".safetensors")]
    if not files:
        return None
    counts: dict[str, int] = {}
    for entry in files:
        for dtype, n in _header_counts(str(objects.path(entry["sha256"]))):
            counts[dtype] = counts.get(dtype, 0) + n
    if not counts:
        return None
    return {"parameters": dict(sorted(counts.items())), "total": sum(counts.values())}


def config_tags(objects: ObjectStore, tree: dict) -> list[str]:
    """Tags the Hub derives from config.json: its model_type (e.g. "bert")."""
    found = config(objects, tree) or {}
    model_type = found.get("model_type")
    return [model_type] if isinstance(model_type, str) and model_type else []
