"""A merge's output as a skeleton: its headers without a weight byte, for planning what uses it.

`zoo merge --dry-run` on a multi-merge plans a later merge against an earlier one's output
before anything is merged: the skeleton holds the donor's small files (config, tokenizer,
sentence-transformers modules) and one safetensors file per module folder with the planned
tensors' header, at full size as a sparse file (no weight byte is written).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from zoo.merge.engine import MergePlan
from zoo.merge.writer import StreamWriter, by_module

_WEIGHTS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json", "*.pt")
_ONE_FILE = 1 << 62  # one file per module folder: headers only, so shards would not save a byte


def write_skeleton(plan: MergePlan, donor: Path, to: Path) -> Path:
    """Write the skeleton of plan's output into `to` (created), the small files from donor."""
    shutil.copytree(donor, to, ignore=shutil.ignore_patterns(*_WEIGHTS))
    for module, group in by_module(plan.tasks).items():
        writer = StreamWriter(to / module, [t.entry for t in group], max_shard_bytes=_ONE_FILE)
        writer.abort()  # the files exist at full size with their header; no tensor is written
    return to
