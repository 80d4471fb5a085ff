"""A merge's output as a skeleton: its files without a weight byte, for planning what uses it.

`zoo merge --dry-run` on a multi-merge plans a later merge against an earlier one's output
before anything is merged. The skeleton is packaged as the merge would package it (the donor's
small files, config.json rewritten for slices, dtype and vocabulary) and holds one safetensors
file per module folder with the planned tensors' header, at full size as a sparse file: no
weight is read or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.merge.planning import MergeInput, OutputSlice
from zoo.merge.prepared import MergeOptions, Prepared, package_output
from zoo.merge.writer import StreamWriter, by_module

_ONE_FILE = 1 << 62  # one file per module folder: headers only, so shards would not save a byte


def write_skeleton(
    to: Path,
    inputs: Sequence[MergeInput | Path],
    base: Path | None,
    method: str,
    params: Any = None,
    *,
    slices: Sequence[OutputSlice] | None = None,
    **options: Any,
) -> Path:
    """Write into `to` (created) the skeleton of what merge_folders would write for these
    arguments (the same as engine.plan's); return `to`."""
    prepared = Prepared(inputs, base, method, params, MergeOptions(**options), slices)
    try:
        Path(to).mkdir(parents=True)
        package_output(prepared, Path(to))
        for module, group in by_module(prepared.tasks).items():
            entries = [t.entry for t in group]
            # the files exist at full size with their header; abort writes no tensor
            StreamWriter(Path(to) / module, entries, max_shard_bytes=_ONE_FILE).abort()
    finally:
        prepared.close()
    return Path(to)
