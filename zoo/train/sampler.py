"""Batch-level shuffling (BLS): one dataset (and one group) per batch, batches shuffled together.

This is FlagEmbedding's `same_dataset_within_batch` as BOOM trains its bags: in-batch negatives of a
query always come from the query's own dataset, and for classification/clustering-derived pairs
(rows with a `group`) from the query's own group, never from another label's rows.

`plan_batches` is the whole policy as a pure function of (sources, batch size, seed, epoch); the
trainer adapter (zoo.train.trainer.BlsBatchSampler) only replays it for the epoch the
sentence-transformers trainer asks for. Row indices are global: dataset i's rows follow those of
dataset i-1, as in the trainer's ConcatDataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Stream ids mixed into the seed so the batch order and each dataset's row order are independent:
# adding or resizing one dataset never changes another dataset's batches.
_ORDER_STREAM = 0
_ROWS_STREAM = 1


@dataclass(frozen=True, eq=False)
class Source:
    """One training dataset as the sampler sees it: its size and optionally a group id per row."""

    num_rows: int
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.num_rows < 0:
            raise ValueError(f"num_rows must be >= 0, got {self.num_rows}")
        if self.groups is not None and len(self.groups) != self.num_rows:
            raise ValueError(f"groups has {len(self.groups)} entries for {self.num_rows} rows")

    @cached_property
    def units(self) -> tuple[np.ndarray, ...]:
        """Row indices that may share a batch: one unit per group (sorted by id), or all rows."""
        if self.groups is None:
            return (np.arange(self.num_rows, dtype=np.int64),)
        if self.num_rows == 0:
            return ()
        order = np.argsort(self.groups, kind="stable")
        bounds = np.flatnonzero(np.diff(self.groups[order])) + 1
        return tuple(np.split(order.astype(np.int64), bounds))


def num_batches(sources: Sequence[Source], batch_size: int) -> int:
    """How many batches one epoch has (the same for every epoch and seed)."""
    return sum(-(-len(unit) // batch_size) for src in sources for unit in src.units)


def plan_batches(
    sources: Sequence[Source], batch_size: int, seed: int, epoch: int
) -> list[np.ndarray]:
    """One epoch of batches as arrays of global row indices (dataset i's rows follow dataset i-1's).

    Pure and deterministic in (sources, batch_size, seed, epoch). Every row appears exactly once per
    epoch; each batch holds rows of one source and, when it has groups, of one group; a unit's last
    batch may be short (never padded with other rows). The batches of all sources are shuffled
    together uniformly, so each source's batches are spread in proportion to its size.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches: list[np.ndarray] = []
    offset = 0
    for index, src in enumerate(sources):
        rng = np.random.default_rng([seed, epoch, _ROWS_STREAM, index])
        for unit in src.units:
            rows = unit[rng.permutation(len(unit))] + offset
            batches.extend(rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
        offset += src.num_rows
    order = np.random.default_rng([seed, epoch, _ORDER_STREAM]).permutation(len(batches))
    return [batches[i] for i in order]


def examples_in_batches(sources: Sequence[Source], batch_size: int, seed: int, count: int) -> int:
    """Rows contained in the first `count` batches of the run (epochs follow one another)."""
    per_epoch = num_batches(sources, batch_size)
    if per_epoch == 0 or count <= 0:
        return 0
    full, rest = divmod(count, per_epoch)
    total = full * sum(src.num_rows for src in sources)
    if rest:
        total += sum(len(b) for b in plan_batches(sources, batch_size, seed, full)[:rest])
    return int(total)
