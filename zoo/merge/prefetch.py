"""Read ahead: the next tensor (or row chunk) is read and converted in a background thread
while the current one is merged.

The engine knows the order of its reads, so each `get` names the read it needs now and the one
that will follow. Reading from the page cache and widening bf16 to float32 cost about as much as
the merge itself; overlapping them with it takes that time off the critical path. One read is in
flight at a time, so memory grows by one read's tensors (the chunk planner budgets for it).

A read's buffer comes from `allocate(key)`, called in the caller's thread and only filled in the
background: the engine takes its row buffers from a pool of reused ones (zoo.merge.buffers),
which is never touched by two threads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import torch

T = TypeVar("T")


class Prefetch(Generic[T]):
    """Serve read(key, allocate(key)) calls, running the announced next read ahead of time (its
    buffer allocated here, filled in the background); close() when done."""

    def __init__(
        self,
        read: Callable[[Hashable, Any], T],
        allocate: Callable[[Hashable], Any] = lambda key: None,
    ):
        self._read = read
        self._allocate = allocate
        self._pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="zoo-reader",
            initializer=torch.set_num_threads,  # OpenMP's count is per thread: use the caller's
            initargs=(torch.get_num_threads(),),
        )
        self._ahead: tuple[Hashable, Future] | None = None

    def get(self, key: Hashable, then: Hashable | None = None) -> T:
        """Return read(key) (taken from the read ahead when it was for key), then start reading
        `then` in the background. A read's error is raised here, by the get that needs it."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == key:
            result = ahead[1].result()
        else:
            _settle(ahead)
            result = self._read(key, self._allocate(key))
        if then is not None:
            buffer = self._allocate(then)
            self._ahead = (then, self._pool.submit(self._read, then, buffer))
        return result

    def close(self) -> None:
        """Drop any read ahead (waiting for a running one) and stop the thread."""
        _settle(self._ahead)
        self._ahead = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _settle(ahead: tuple[Hashable, Future] | None) -> None:
    """Wait for an unwanted read ahead and drop its result or error."""
    if ahead is not None and not ahead[1].cancel():
        ahead[1].exception()
