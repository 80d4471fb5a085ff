"""The engine's bookkeeping around the streams: one writer per module folder with the tasks in
file order, and the order in which run_chunked reads one tensor's row chunks (for read-ahead)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from zoo.merge.planning import TensorTask
from zoo.merge.writer import Entry, StreamWriter, layout, shard_names


class ModuleWriters:
    """One StreamWriter per module folder, the tasks in the order of their bytes in the files,
    and, after a clean exit, {weight file relative to tmp: sha256}. A failure aborts them all."""

    def __init__(self, tmp: Path, tasks: Sequence[TensorTask], max_shard_bytes: int):
        self.writers: dict[str, StreamWriter] = {}
        groups = by_module(tasks)
        try:
            for module, group in groups.items():
                entries = [Entry(t.name, t.dtype, t.shape) for t in group]
                self.writers[module] = StreamWriter(
                    tmp / module, entries, max_shard_bytes=max_shard_bytes
                )
        except BaseException:
            self._abort()
            raise
        self.order = [
            task
            for module, group in groups.items()
            for task in _in_order(group, self.writers[module].order())
        ]
        self.hashes: dict[str, str] = {}

    def __getitem__(self, module: str) -> StreamWriter:
        return self.writers[module]

    def __enter__(self) -> ModuleWriters:
        return self

    def __exit__(self, kind, *exc: object) -> None:
        if kind is not None:
            self._abort()
            return
        try:
            for module, writer in self.writers.items():
                writer.close()
                prefix = f"{module}/" if module else ""
                self.hashes.update({prefix + n: h for n, h in writer.hashes().items()})
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def _in_order(tasks: Sequence[TensorTask], names: Sequence[str]) -> list[TensorTask]:
    position = {name: i for i, name in enumerate(names)}
    return sorted(tasks, key=lambda t: position[t.name])


class RowSchedule:
    """The order in which run_chunked reads one tensor's row chunks: all chunks once per
    statistics pass and once more for the output (or once, for the pass-through reads)."""

    def __init__(self, bounds: Sequence[tuple[int, int]], passes: int):
        self.bounds = list(bounds)
        self.rounds = passes + 1 if len(self.bounds) > 1 else 1  # one chunk is read once
        self.seen: Counter = Counter()

    def after(self, a: int, b: int, which: tuple | None) -> tuple[int, int] | None:
        """Record the read of rows a:b of `which`; return the rows read next, if any."""
        n = self.seen[which]
        self.seen[which] += 1
        index, round_ = n % len(self.bounds), n // len(self.bounds)
        if index + 1 < len(self.bounds):
            return self.bounds[index + 1]
        rounds = self.rounds if which is None else 1
        return self.bounds[0] if round_ + 1 < rounds else None


def by_module(tasks: Sequence[TensorTask]) -> dict[str, list[TensorTask]]:
    groups: dict[str, list[TensorTask]] = {}
    for task in tasks:
        groups.setdefault(task.module, []).append(task)
    return groups


def file_names(tasks: Sequence[TensorTask], max_shard_bytes: int) -> list[str]:
    shards = layout([Entry(t.name, t.dtype, t.shape) for t in tasks], "model", max_shard_bytes)
    names = shard_names("model", len(shards))
    return names + (["model.safetensors.index.json"] if len(shards) > 1 else [])


def task_nbytes(task: TensorTask) -> int:
    return Entry(task.name, task.dtype, task.shape).nbytes
