"""Every core on one tensor: row blocks of a chunk merged on a fixed pool of threads.

A chunk's rows are cut into blocks of about BLOCK_ELEMENTS elements per input. The cut depends
only on the chunk's shape, never on the number of threads, and blocks' results are combined in
block order, so a merge gives the same bytes on 1 thread or 16. torch's own intra-op threads are
held at 1 meanwhile (`torch_threads`: its parallel reductions split work by thread count and
round differently); the pool's threads run torch operations side by side, which release the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")
BLOCK_ELEMENTS = 1 << 18  # per input: 1 MiB of float32, large enough to amortise dispatch


def usable_cores() -> int:
    """Return the number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def block_bounds(rows: int, row_elements: int) -> list[tuple[int, int]]:
    """Return [(a, b), ...] covering rows 0..rows in blocks of about BLOCK_ELEMENTS elements."""
    step = max(1, BLOCK_ELEMENTS // max(1, row_elements))
    return [(a, min(a + step, rows)) for a in range(0, rows, step)]


def row_blocks(tensors: Sequence[torch.Tensor]) -> list[tuple[int, int]]:
    """Return the row blocks of same-shaped tensors (one block for a 0-d or empty tensor)."""
    first = tensors[0]
    if first.dim() == 0 or first.shape[0] == 0:
        return [(0, 1 if first.dim() == 0 else 0)]
    return block_bounds(first.shape[0], first[0].numel())


def block_of(tensors: Sequence[torch.Tensor], a: int, b: int) -> Sequence[torch.Tensor]:
    """Return rows a:b of every tensor (a 0-d tensor is its own only block); of a stacked
    (inputs, rows, ...) tensor, its rows a:b, still stacked."""
    if torch.is_tensor(tensors):
        return tensors if tensors.dim() < 2 else tensors[:, a:b]
    return [t if t.dim() == 0 else t[a:b] for t in tensors]


def stacked(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Return same-shaped tensors as one (inputs, ...) tensor (itself if already one)."""
    return tensors if torch.is_tensor(tensors) else torch.stack(list(tensors))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op thread count (process-wide) for the block; restore it after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Pool:
    """A fixed set of compute threads; map() returns results in input order. Close when done."""

    def __init__(self, threads: int | None = None):
        self.threads = max(1, threads or usable_cores())
        self._executor = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="zoo-merge")
            if self.threads > 1
            else None
        )

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Return [fn(item) for item in items], computed on the pool's threads."""
        items = list(items)
        if self._executor is None or len(items) < 2:
            return [fn(item) for item in items]
        return list(self._executor.map(fn, items))

    def blocks(
        self, fn: Callable[[Sequence[torch.Tensor]], R], tensors: Sequence[torch.Tensor]
    ) -> list[R]:
        """Return [fn(one row block of tensors) for each row block], in block order."""
        return self.map(lambda ab: fn(block_of(tensors, *ab)), row_blocks(tensors))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SERIAL = Pool(1)  # for callers outside a merge (tests, in-memory helpers)
