"""The streaming merge engine: local folders in, one complete model folder out.

Tensor by tensor, in the order of the output files: read each input's tensor (memory-mapped
safetensors converted to the compute dtype in one pass, LoRA folded on the fly), merge it with
the method's kernel on the chosen device (linear, task_arithmetic, ties and multislerp through
zoo's row-chunked kernels, large tensors a chunk at a time), check it is finite, and write it
at its planned place in the output safetensors file(s). Three threads overlap the work: one reads
and converts the next tensor or chunk (zoo.merge.prefetch), the caller merges, one writes and
hashes the output (zoo.merge.writer); the merge itself runs on `threads` cores (row blocks of
each chunk on a thread pool, zoo.merge.parallel, with torch's intra-op threads at 1; methods
without a chunked kernel get the threads as torch's intra-op threads). Peak memory is
about two sets of K input chunks plus kernel scratch and two queued outputs, never K models or
the whole output. The output is built in a temporary folder beside `out` and renamed last."""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from zoo.errors import UserError
from zoo.lazy import Ref
from zoo.merge import package
from zoo.merge.buffers import Buffers
from zoo.merge.chunking import KeptChunks, RowSchedule, row_bounds, run_chunked
from zoo.merge.io import read_tensor
from zoo.merge.kernels.chunked import Shape
from zoo.merge.kernels.fusing import NotFinite
from zoo.merge.parallel import Pool, torch_threads
from zoo.merge.planning import MergeInput, OutputSlice, TensorTask
from zoo.merge.prefetch import Prefetch
from zoo.merge.prepared import (
    MergeOptions,
    MergePlan,
    MergeReport,
    Prepared,
    SlicePlan,
    package_output,
    plan,  # the dry run's planner, re-exported: zoo.merge.engine.plan
)
from zoo.merge.resources import HeapTrim, PeakRss, reuse_freed_buffers
from zoo.merge.vocab import permute_rows
from zoo.merge.writer import Entry, ModuleWriters, StreamWriter

__all__ = [
    "MergeInput",
    "MergeOptions",
    "MergePlan",
    "MergeReport",
    "OutputSlice",
    "SlicePlan",
    "merge_folders",
    "plan",
]
_SCRATCH = ".zoo-scratch"


def merge_folders(
    inputs: Sequence[MergeInput | Path],
    base: Path | None,
    method: str,
    params: Mapping[str, Any] | None,
    out: Path,
    *,
    progress: bool = True,
    seed: int = 0,
    slices: Sequence[OutputSlice] | None = None,
    **options: Any,
) -> MergeReport:
    """Merge local model folders into a new folder `out` and return a MergeReport.

    inputs: ST folders, plain HF folders or LoRA adapter folders (folded into their base).
    base: the base model (the reference point of task-vector methods; for methods that ignore
    a base it joins the inputs, as in mergekit). params: global method parameters (mergekit
    settings: scalars, gradients, filters); MergeInput.params override them per model.
    options: the fields of MergeOptions (dtypes, device, shard size, chunk budget).
    slices: mergekit's `slices:` (zoo.merge.slices); inputs must then be empty, and base is
    the default base of every slice.
    Deterministic: the same inputs, parameters and seed give byte-identical files on the same
    device type. Raises UserError (one line) on bad input and then leaves nothing at `out`.
    Never modifies inputs.
    """
    started = time.perf_counter()
    prepared = Prepared(inputs, base, method, params, MergeOptions(**options), slices)
    rss = PeakRss()
    try:
        with package.building(Path(out)) as tmp, reuse_freed_buffers():
            counts, hashes = _Run(prepared, tmp, rss, seed, progress).execute()
            package_output(prepared, tmp)
            files = package.finish(tmp, Path(out), known=hashes)
    finally:
        prepared.close()
    return prepared.report(Path(out), counts, files, rss.sample(), started, seed)


# freed heap memory kept for reuse between tensors, at least (a quarter of one model, if more)
_KEPT_FREE = 32 * 2**20


class _Run:
    """One execution of a prepared merge into a temporary folder."""

    def __init__(self, prepared: Prepared, tmp: Path, rss: PeakRss, seed: int, progress: bool):
        self.p = prepared
        self.tmp = tmp
        self.rss = rss
        self.seed = seed
        self.progress = progress
        self._pin = prepared.device.type == "cuda"  # page-locked buffers: async copies to the GPU
        self.counts: Counter = Counter(merged=0, passed=0, copied=0)
        self.buffers = Buffers(pin=self._pin)  # the row chunks' read buffers, reused
        self.trim = HeapTrim(max(prepared.keep_bytes, _KEPT_FREE))  # between tensors and chunks

    def execute(self) -> tuple[Counter, dict[str, str]]:
        """Merge every tensor into tmp; return the counts and {weight file: sha256}."""
        if self.p.method.delta_scale is not None:
            with torch_threads(self.p.threads):
                return self.counts, self._two_pass()
        with (
            torch_threads(1 if self.p.chunks else self.p.threads),  # before the reader copies it
            ModuleWriters(self.tmp, self.p.tasks, self.p.max_shard_bytes) as writers,
            Prefetch(self._read, self._rows_buffer) as ahead,
            Pool(self.p.threads) as self.pool,
        ):
            self.order = writers.order
            for i, task in enumerate(self._tasks("merging", self.order)):
                writer, following = writers[task.module], self._first_read(i + 1)
                if task.key in self.p.chunks:
                    self._write_chunked(i, task, writer, ahead, following)
                else:
                    writer.write(task.name, self._output(task, ahead.get(("whole", i), following)))
        return self.counts, writers.hashes

    def _first_read(self, i: int) -> tuple | None:
        """Return the key of task i's first read (None past the end)."""
        if i >= len(self.order):
            return None
        task = self.order[i]
        if task.key in self.p.chunks:
            return ("rows", i, 0, min(self.p.chunks[task.key], task.shape[0]), None)
        return ("whole", i)

    def _rows_buffer(self, key: tuple) -> torch.Tensor | None:
        """Return the empty (inputs, rows, ...) buffer a ("rows", ...) key's read fills (None for
        a "whole" read): taken by the merging thread, from the pool of reused buffers."""
        if key[0] == "whole":
            return None
        _, i, a, b, which = key
        task = self.order[i]
        picked = len(self.p.sources_of(task).items) if which is None else len(which)
        shape, dtype = (picked, b - a, *task.shape[1:]), self._read_dtype(task)
        return self.buffers.empty(shape, dtype)

    def _read(self, key: tuple, rows: torch.Tensor | None) -> Sequence[torch.Tensor]:
        """Read what a Prefetch key names: ("whole", i), a list of tensors, or ("rows", i, a, b,
        which) into rows (from _rows_buffer), one tensor stacking the rows of every input read:
        kernels take it whole, without stacking the inputs."""
        task = self.order[key[1]]
        if key[0] == "whole":
            return self._load(task)
        _, _, a, b, which = key
        s, dtype = self.p.sources_of(task), rows.dtype
        picked = range(len(s.items)) if which is None else which
        for row, i in enumerate(picked):
            s.items[i].read_rows(task.keys[i], a, b, dtype, out=rows[row])
        return rows.to(self.p.device, non_blocking=self._pin)

    def _read_dtype(self, task: TensorTask) -> torch.dtype:
        """Return the dtype task's row chunks are read in: what its chunked kernel takes
        (ChunkedKernel.read_dtype) when every input stores the tensor in one dtype, else the
        compute dtype."""
        items = self.p.sources_of(task).items
        stored = {src.tensors[k].dtype for src, k in zip(items, task.keys)}
        if len(stored) != 1:
            return self.p.compute_dtype(task)
        kernel = self.p.method.chunked
        kernel = kernel.load() if isinstance(kernel, Ref) else kernel
        return kernel.read_dtype(stored.pop(), self._shape(task))

    def _shape(self, task: TensorTask) -> Shape:
        """What task's chunked kernel knows up front."""
        items, dtype = self.p.sources_of(task).items, self.p.compute_dtype(task)
        numel = math.prod(task.shape)
        return Shape(len(items), numel, dtype, self.p.device, self.pool, self.p.fuse, task.dtype)

    def _tasks(self, desc: str, tasks: Sequence[TensorTask]):
        from tqdm.auto import tqdm

        for task in tqdm(
            tasks,
            desc=f"{desc} ({self.p.method.name})",
            disable=not self.progress,
            unit="tensor",
        ):
            yield task
            self.trim()
            self.rss.sample()

    def _output(self, task: TensorTask, tensors: list[torch.Tensor]) -> torch.Tensor:
        """Return task's output from its loaded inputs (see _load)."""
        if task.kind == "copy":
            self.counts["copied"] += 1
            return tensors[0]
        return _finite(task, self._merge(task, tensors, self._params(task)))

    def _load(self, task: TensorTask) -> list[torch.Tensor]:
        """Return a copy task's source tensor, or a merge task's inputs on the device in the
        compute dtype (rows permuted onto the output vocabulary when needed)."""
        s = self.p.sources_of(task)
        if task.kind == "copy":
            return [s.items[task.copy_from].read(task.keys[task.copy_from])]
        dtype = self.p.compute_dtype(task)
        tensors = [src.read(k, dtype) for src, k in zip(s.items, task.keys)]
        if task.vocab:
            tensors = permute_rows(tensors, self.p.parts[task.part].vocab, s.base_pos)
        return [t.to(self.p.device) for t in tensors]

    def _params(self, task: TensorTask) -> dict[str, Any]:
        return self.p.params_of(task)

    def _merge(self, task: TensorTask, tensors: list[torch.Tensor], params: dict) -> torch.Tensor:
        method, base = self.p.method, self.p.sources_of(task).kernel_base
        if all(torch.equal(tensors[0], t) for t in tensors[1:]) and (
            not torch.any(tensors[0]) or method.identity_on_equal(params, base is not None)
        ):
            self.counts["passed"] += 1
            return tensors[0]
        result = self._guard(
            task,
            lambda: method.merge(
                tensors,
                base,
                params,
                name=task.key,
                seed=self.seed,
                rng_state=self.p.rng_states.get(task.key),
            ),
        )
        self.counts["merged"] += 1
        return result

    def _guard(self, task: TensorTask, run: Callable[[], Any]) -> Any:
        """Run a kernel; turn its errors into one-line UserErrors naming the tensor."""
        try:
            return run()
        except UserError:
            raise
        except NotFinite:
            raise _not_finite(task) from None
        except (ValueError, TypeError, RuntimeError, ArithmeticError) as err:
            raise UserError(
                f"{self.p.method.name} failed on tensor {task.key!r}: {_one_line(err)}"
            ) from None

    def _write_chunked(
        self, i: int, task: TensorTask, writer: StreamWriter, ahead: Prefetch, following
    ) -> None:
        """Merge task i (a large tensor) in row chunks, writing each chunk's rows as they come;
        every chunk's read announces the next one (then `following`, the next task's read)."""
        s, method = self.p.sources_of(task), self.p.method
        params = self._params(task)
        shape = self._shape(task)
        kernel = method.chunked(params, s.kernel_base, shape)
        bounds = row_bounds(task.shape[0], self.p.chunks[task.key])
        raw = len(s.items) * math.prod(task.shape) * self._read_dtype(task).itemsize
        kept = KeptChunks(lambda: kernel.passes, raw <= self.p.keep_bytes and len(bounds) > 1)
        schedule = RowSchedule(bounds, lambda: 0 if kept.keeping else kernel.passes)

        def read(a: int, b: int, which: Sequence[int] | None) -> Sequence[torch.Tensor]:
            which = tuple(which) if which is not None else None
            if which is None and (hit := kept.get(a, b)) is not None:
                return hit
            then = schedule.after(a, b, which)
            then = ("rows", i, *then, which) if then else following
            got = ahead.get(("rows", i, a, b, which), then)
            return kept.put(a, b, got) if which is None else got

        def write(a: int, rows: torch.Tensor, checked: bool) -> None:
            writer.write_rows(task.name, a, rows if checked else _finite(task, rows))
            self.trim()  # a large tensor's chunks free as much as many small tensors

        identity = method.identity_on_equal(params, s.kernel_base is not None)
        passed = self._guard(task, lambda: run_chunked(kernel, read, write, bounds, identity))
        self.counts["passed" if passed else "merged"] += 1

    def _two_pass(self) -> dict[str, str]:
        """Methods with a model-level delta scale: merged deltas go to a scratch file first."""
        scale_of = self.p.method.delta_scale
        merges = [t for t in self.p.tasks if t.kind == "merge"]
        scratch_dir = self.tmp / _SCRATCH
        wide = torch.float64 if self.p.dtype == torch.float64 else torch.float32  # = plan's size
        scratch = StreamWriter(
            scratch_dir,
            [Entry(t.key, wide, t.shape) for t in merges],
            stem="deltas",
            max_shard_bytes=2**62,
        )
        totals: Counter = Counter()
        base = self.p.sources.kernel_base
        try:
            for task in self._tasks("merging, pass 1/2", self.p.tasks):
                if task.kind == "merge":
                    tensors = self._load(task)
                    merged = self._merge(task, tensors, self._params(task))
                    totals.update(scale_of.stats(tensors, base, merged))
                    scratch.write(task.key, merged.double() - tensors[base].double())
        except BaseException:
            scratch.abort()
            raise
        scratch.close()
        hashes = self._apply_scale(scale_of.scale(dict(totals)), scratch_dir / "deltas.safetensors")
        shutil.rmtree(scratch_dir)
        return hashes

    def _apply_scale(self, scale: float, scratch_file: Path) -> dict[str, str]:
        with ModuleWriters(self.tmp, self.p.tasks, self.p.max_shard_bytes) as writers:
            for task in self._tasks("merging, pass 2/2", writers.order):
                if task.kind == "copy":
                    tensor = self._output(task, self._load(task))
                else:
                    base_tensor = self._base_tensor(task)
                    delta = read_tensor(scratch_file, task.key, "scratch")
                    tensor = _finite(task, base_tensor.double() + scale * delta)
                writers[task.module].write(task.name, tensor)
        return writers.hashes

    def _base_tensor(self, task: TensorTask) -> torch.Tensor:
        base = self.p.sources.kernel_base
        if task.vocab:  # the base's rows in output order, as pass 1 saw them
            return self._load(task)[base].cpu()
        return self.p.sources.items[base].read(task.keys[base])


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _finite(task: TensorTask, tensor: torch.Tensor) -> torch.Tensor:
    """Return tensor in task's dtype; raise UserError when it is not finite there."""
    if tensor.is_floating_point() and task.dtype.is_floating_point and tensor.numel():
        # one pass over the wide result: NaN fails both comparisons; within the output dtype's
        # range, the cast cannot overflow to Inf
        low, high = torch.aminmax(tensor)
        limit = torch.finfo(task.dtype).max
        if not (float(low) >= -limit and float(high) <= limit):
            raise _not_finite(task)
    return tensor.to(task.dtype)


def _not_finite(task: TensorTask) -> UserError:
    return UserError(
        f"the merge produced NaN or Inf in {task.key!r} (dtype {task.dtype}); "
        "check the inputs, the parameters and out_dtype"
    )
