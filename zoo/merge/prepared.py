"""A merge resolved before any tensor is read: its parts, parameters, vocabulary and plan.

A merge has one part (whole models) or one part per output slice (mergekit's `slices:`, see
zoo.merge.slices). Each part is a group of sources merged into its own output tensors, with its
own parameter scopes and base; the tensors of every part go to one set of output files. The
folder layout and config come from the first part's donor. Nothing here reads tensor data, and
planning imports no torch (dtypes are names; the torch dtypes, the device and the thread count
the merge itself uses are made on first use).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from zoo.errors import UserError
from zoo.merge import dtypes, package
from zoo.merge.chunk_plan import fitted_budget, fuses, plan_chunks
from zoo.merge.mergekit_rng import draws_of, mergekit_rng_states
from zoo.merge.params import check_params, resolve_params
from zoo.merge.planning import (
    MergeInput,
    OutputSlice,
    Sources,
    TensorTask,
    check_config,
    check_structure,
    estimate_peak,
    parse_dtype,
    plan_tensors,
    plan_vocabulary,
)
from zoo.merge.registry import get_method
from zoo.merge.resources import device_name
from zoo.merge.slices import LayerSlice, check_slice, check_slice_inputs, sliced_config
from zoo.merge.tokenizer_files import chat_template_text
from zoo.merge.vocab import VocabPlan
from zoo.merge.writer import DEFAULT_SHARD_BYTES, planned_files

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class MergeOptions:
    """How plan() and merge_folders() merge (their keyword arguments, defined once).

    dtype: the compute dtype (default: float32, or float64 when an input is). out_dtype: the
    output dtype (default: dtype if given, else the inputs' own, e.g. bfloat16).
    tokenizer_source, tokenizer: how to build the output vocabulary (mergekit's, models named by
    their folders: zoo.merge.vocab); chat_template: a name, "auto" or Jinja text
    (zoo.merge.tokenizer_files). device: a torch
    device or "auto". allow_pickle: read pickle (.bin) weights too.
    max_shard_bytes: the largest output safetensors file. chunk_bytes: working-set budget in
    bytes ("auto": 64 MiB, shrunk to a quarter of one model for small models, at least 8 MiB);
    methods with a chunked kernel (linear, multislerp, task_arithmetic, ties) run it on every
    tensor, in row chunks that fit half the budget (the other half holds the read ahead and
    queued writes). None: every tensor whole through the method's own (mergekit) kernel. The
    results agree within float rounding (ties: see zoo.merge.kernels.topk for magnitudes tied
    at the density threshold). mergekit_seed: draw DARE/DELLA masks as `mergekit-yaml
    --random-seed N` does, bit for bit (zoo.merge.mergekit_rng); None: zoo's per-tensor seed.
    threads: compute threads (default: every core this process may use); the chunked kernels
    split rows among them and give the same bytes for any count (zoo.merge.parallel), other
    methods get them as torch's intra-op threads.
    """

    dtype: str | torch.dtype | None = None
    out_dtype: str | torch.dtype | None = None
    tokenizer_source: Any = None
    tokenizer: Any = None
    chat_template: str | None = None
    device: str = "cpu"
    allow_pickle: bool = False
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    chunk_bytes: int | Literal["auto"] | None = "auto"
    mergekit_seed: int | None = None
    threads: int | None = None


@dataclass(frozen=True)
class MergePlan:
    """What a merge will do, known from file headers alone (for --dry-run)."""

    method: str
    sources: tuple[str, ...]  # kernel order: inputs, then the base when it is not an input
    base: str | None
    donor: str
    tasks: tuple[TensorTask, ...]
    skipped: tuple[str, ...]
    out_files: tuple[str, ...]
    out_bytes: int
    peak_bytes: int
    scratch_disk_bytes: int  # temporary, beside the output (methods with a model-level scale)
    vocab_rows: int | None
    device: str
    chunked: tuple[str, ...] = ()  # tensors merged in row chunks (see zoo.merge.chunking)
    slices: tuple[SlicePlan, ...] = ()  # for `slices:` merges, what each output slice takes

    @property
    def tensors_to_merge(self) -> int:
        return sum(t.kind == "merge" for t in self.tasks)


@dataclass(frozen=True)
class SlicePlan:
    """One output slice of a plan: its output layers and, per source, the layers it gives."""

    layers: tuple[int, int]
    sources: tuple[tuple[str, int, int], ...]  # (label, start, stop)
    base: str | None


@dataclass(frozen=True)
class MergeReport:
    """What a merge did: counts, resources and the sha256 of every output file."""

    out: Path
    method: str
    sources: tuple[str, ...]
    base: str | None
    tensors_merged: int
    tensors_passed_through: int
    tensors_copied: int
    skipped: tuple[str, ...]
    peak_rss_bytes: int
    seconds: float
    files: Mapping[str, str]
    seed: int
    device: str


@dataclass
class Part:
    """One group of output tensors merged from the same sources: the whole models, or one
    output slice (its sources seen through their layer ranges)."""

    sources: Sources
    scopes: tuple[Mapping[str, Any], ...]  # parameter settings, highest precedence first
    layers: LayerSlice | None = None
    where: str = ""  # how errors name this part ("slices[2]: ")
    vocab: VocabPlan | None = None


class Prepared:
    """Everything resolved before any tensor is read; owns the open sources."""

    keep_bytes = 0  # a chunked tensor whose inputs (as read) fit this is read once (KeptChunks)
    fuse = True  # large enough for compiled loops (FUSE_MIN_BYTES)

    def __init__(self, inputs, base, method, params, options: MergeOptions, slices=None):
        self.method = get_method(method)
        # parameter scopes, highest precedence first: (module's, recipe's) or just the recipe's
        self.scopes = (
            tuple(map(dict, params)) if isinstance(params, (tuple, list)) else (dict(params or {}),)
        )
        self.dtype_name = parse_dtype(options.dtype, "dtype")  # safetensors names, or None
        self.out_dtype_name = parse_dtype(options.out_dtype, "out_dtype")
        self.device_name = device_name(options.device)
        self.max_shard_bytes = options.max_shard_bytes
        self._threads = _checked_threads(options.threads)
        self.sliced = slices is not None
        self.parts: list[Part] = []
        self._cache: dict = {}
        try:
            self._open_parts(inputs, base, slices, options.allow_pickle)
            self._check()
            self.vocab = self._plan_vocab(options.tokenizer_source, options.tokenizer)
            self.chat_template = chat_template_text(
                options.chat_template, self.parts[0].sources.dirs()
            )
            self.tasks, self.skipped = self._plan_tasks()
            self.chunks = self._plan_chunks(options.chunk_bytes)
            self.rng_states = self._rng_states(options.mergekit_seed)
        except BaseException:
            self.close()
            raise

    def _open_parts(self, inputs, base, slices, allow_pickle: bool) -> None:
        if slices is None:
            inputs = [i if isinstance(i, MergeInput) else MergeInput(Path(i)) for i in inputs]
            base = Path(base) if base is not None else None
            sources = Sources(inputs, base, self.method, allow_pickle, cache=self._cache)
            self.parts.append(Part(sources, self.scopes))
            return
        if not slices:
            raise UserError("slices: give at least one output slice")
        if self.method.delta_scale is not None:
            raise UserError(f"merge method {self.method.name!r} merges whole models, not slices")
        offset = 0
        for i, sl in enumerate(slices):
            slice_base = sl.base if sl.base is not None else base
            where = f"slices[{i}]: "
            among = slice_base is not None and _among(slice_base, sl.sources)
            check_slice_inputs(where, sl.ranges, slice_base, among)
            with naming(where):
                views = _views(sl, offset, first=i == 0, last=i == len(slices) - 1)
                sources = Sources(
                    sl.sources,
                    slice_base,
                    self.method,
                    allow_pickle,
                    layers=views,
                    cache=self._cache,
                )
            self.parts.append(Part(sources, (dict(sl.params), *self.scopes), views[0], where))
            offset += views[0].length

    def _check(self) -> None:
        first = self.parts[0].sources
        for part in self.parts:
            s = part.sources
            with naming(part.where):
                self._check_part(part)
            check_config(first.items[first.donor], s.items[s.donor], self.sliced)

    def _check_part(self, part: Part) -> None:
        s = part.sources
        self.method.check_inputs(len(s.items), s.base_pos is not None)
        check_params(self.method, part.scopes, s.params, s.kernel_base)
        check_structure(s, self.sliced)
        if self.sliced:
            check_slice(s)

    def _plan_vocab(self, tokenizer_source, tokenizer) -> VocabPlan | None:
        for part in self.parts:
            with naming(part.where):
                part.vocab = plan_vocabulary(part.sources, tokenizer_source, tokenizer)
        plans = [p.vocab for p in self.parts if p.vocab is not None]
        if any(p.vocab != plans[0].vocab for p in plans[1:]):
            raise UserError(
                "the first and the last slice give different output vocabularies; "
                "use the same models (or tokenizer_source: a model both share)"
            )
        return plans[0] if plans else None

    def _plan_tasks(self) -> tuple[list[TensorTask], list[str]]:
        tasks, skipped = [], []
        for i, part in enumerate(self.parts):
            more, missing = plan_tensors(
                part.sources,
                part.vocab,
                self.dtype_name,
                self.out_dtype_name,
                part=i,
                layers=part.layers,
            )
            tasks += more
            skipped += missing
        return sorted(tasks, key=lambda t: t.key), sorted(set(skipped))

    def _plan_chunks(self, budget: int | str | None) -> dict[str, int]:
        merged = [t for t in self.tasks if t.kind == "merge"]
        one_model = sum(
            math.prod(t.shape) * dtypes.itemsize(self.compute_dtype_name(t)) for t in merged
        )
        budget = fitted_budget(budget, one_model)
        # a tensor whose inputs take at most a quarter of one model is read once for all passes
        self.keep_bytes = 0 if budget is None else one_model // 4
        self.fuse = fuses(one_model)
        chunks: dict[str, int] = {}
        for i, part in enumerate(self.parts):
            mine = [t for t in self.tasks if t.part == i]
            chunks |= plan_chunks(
                mine, part.sources, self.method, self.compute_dtype_name, budget, self.fuse
            )
        return chunks

    def _rng_states(self, seed: int | None) -> dict[str, torch.Tensor]:
        """mergekit's generator state for each tensor's masks (none without mergekit_seed)."""
        if seed is None or not self.method.stochastic or self.method.param("density") is None:
            return {}
        draws = [
            draws_of(t.key, t.shape, self.params_of(t)) for t in self.tasks if t.kind == "merge"
        ]
        return mergekit_rng_states(seed, draws)

    def params_of(self, task: TensorTask) -> dict[str, Any]:
        """The parameter values task's kernel gets (no weights read)."""
        part = self.parts[task.part]
        s = part.sources
        return resolve_params(
            self.method, part.scopes, s.params, base_index=s.kernel_base, name=task.key, t=task.t
        )

    @property
    def sources(self) -> Sources:
        """The first part's sources: they donate the folder layout and the config."""
        return self.parts[0].sources

    def sources_of(self, task: TensorTask) -> Sources:
        return self.parts[task.part].sources

    @property
    def labels(self) -> list[str]:
        """Every source's label, in part order, each once."""
        return list(dict.fromkeys(label for p in self.parts for label in p.sources.labels))

    def close(self) -> None:
        for part in self.parts:
            part.sources.close()
        for checkpoint in self._cache.values():
            checkpoint.close()

    def compute_dtype_name(self, task: TensorTask) -> str:
        """Return the dtype task is merged in (a safetensors name): dtype, else its inputs'
        (at least float32)."""
        items = self.sources_of(task).items
        stored = [src.tensors[k].dtype_name for src, k in zip(items, task.keys)]
        return self.dtype_name or dtypes.promote(_promoted_dtypes(stored), "F32")

    def compute_dtype(self, task: TensorTask) -> torch.dtype:
        """compute_dtype_name's torch dtype (imports torch: for the merge itself)."""
        return dtypes.to_torch(self.compute_dtype_name(task))

    @property
    def dtype(self) -> torch.dtype | None:
        """The compute dtype asked for, as a torch dtype (imports torch), or None."""
        return dtypes.to_torch(self.dtype_name) if self.dtype_name else None

    @property
    def out_dtype(self) -> torch.dtype | None:
        """The output dtype asked for, as a torch dtype (imports torch), or None."""
        return dtypes.to_torch(self.out_dtype_name) if self.out_dtype_name else None

    @cached_property
    def device(self) -> torch.device:
        """The torch device to merge on (imports torch)."""
        import torch

        return torch.device(self.device_name)

    @cached_property
    def threads(self) -> int:
        """Compute threads: as given, else every core this process may use."""
        from zoo.merge.parallel import usable_cores  # parallel imports torch: the merge's

        return self._threads or usable_cores()

    @property
    def base_label(self) -> str | None:
        s = self.sources
        return s.labels[s.base_pos] if s.base_pos is not None else None

    def plan(self) -> MergePlan:
        s = self.sources
        return MergePlan(
            method=self.method.name,
            sources=tuple(self.labels),
            base=self.base_label,
            donor=s.labels[s.donor],
            tasks=tuple(self.tasks),
            skipped=tuple(self.skipped),
            out_files=tuple(planned_files(self.tasks, self.max_shard_bytes)),
            out_bytes=sum(t.entry.nbytes for t in self.tasks),
            peak_bytes=estimate_peak(
                self.tasks,
                max(len(p.sources.items) for p in self.parts),
                self.dtype_name,
                self.method.scratch,
                self.chunks,
                self.method.chunk_working_set(self.fuse),
            ),
            scratch_disk_bytes=self._scratch_bytes(),
            vocab_rows=self.vocab.rows if self.vocab else None,
            device=self.device_name,
            chunked=tuple(sorted(k for k, rows in self.chunks.items() if rows < self._rows(k))),
            slices=tuple(_slice_plan(p) for p in self.parts) if self.sliced else (),
        )

    def report(self, out: Path, counts: Counter, files, rss: int, started: float, seed: int):
        """Return the MergeReport of a finished merge into `out` (started: perf_counter)."""
        return MergeReport(
            out=out,
            method=self.method.name,
            sources=tuple(self.labels),
            base=self.base_label,
            tensors_merged=counts["merged"],
            tensors_passed_through=counts["passed"],
            tensors_copied=counts["copied"],
            skipped=tuple(self.skipped),
            peak_rss_bytes=rss,
            seconds=time.perf_counter() - started,
            files=files,
            seed=seed,
            device=self.device_name,
        )

    def _rows(self, key: str) -> int:
        return next(t.shape[0] for t in self.tasks if t.key == key)

    def _scratch_bytes(self) -> int:
        if self.method.delta_scale is None:
            return 0
        wide = 8 if self.dtype_name == "F64" else 4
        return sum(math.prod(t.shape) * wide for t in self.tasks if t.kind == "merge")


def _promoted_dtypes(names: Sequence[str]) -> str:
    dtype = names[0]
    for other in names[1:]:
        dtype = dtypes.promote(dtype, other)
    return dtype


def plan(
    inputs: Sequence[MergeInput | Path],
    base: Path | None,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    slices: Sequence[OutputSlice] | None = None,
    **options: Any,
) -> MergePlan:
    """Check a merge and describe it (tensors, output files, memory estimate) without reading
    any weights or importing torch (with the default device, "cpu"), for `zoo merge --dry-run`
    (zoo.merge.engine re-exports it). options: the fields of MergeOptions. Raises
    the same UserErrors merge_folders would raise before merging."""
    prepared = Prepared(inputs, base, method, params, MergeOptions(**options), slices)
    try:
        return prepared.plan()
    finally:
        prepared.close()


def package_output(p: Prepared, tmp: Path) -> None:
    """Copy the donor's non-weight files (tokenizer from the tokenizer source) into tmp."""
    floats = {t.dtype_name for t in p.tasks if t.kind == "merge"}
    changed = (p.out_dtype_name or p.dtype_name) if len(floats) == 1 else None
    donor = p.sources.items[p.sources.donor]
    package.assemble(tmp, getattr(donor, "inner", donor), p.vocab, changed, p.chat_template)
    if p.sliced:
        picks = [
            (view.inner.config, view.layers.start + k)
            for view in (part.sources.items[0] for part in p.parts)
            for k in range(view.layers.length)
        ]
        package.rewrite_config(tmp, lambda config: sliced_config(config, picks))


def _views(sl: OutputSlice, offset: int, *, first: bool, last: bool) -> list[LayerSlice]:
    """Return how each source of output slice sl is seen (its layers at offset onwards)."""
    return [LayerSlice(a, b, offset, pre=first, post=last) for a, b in sl.ranges]


def _among(path: Path, inputs: Sequence[MergeInput]) -> bool:
    return Path(path).resolve() in [Path(i.path).resolve() for i in inputs]


@contextmanager
def naming(where: str) -> Iterator[None]:
    """Prefix a one-line UserError raised inside with where (e.g. "slices[2]: ")."""
    try:
        yield
    except UserError as err:
        if not where:
            raise
        raise UserError(where + str(err)) from None


def _slice_plan(part: Part) -> SlicePlan:
    s, layers = part.sources, part.layers
    sources = tuple((view.inner.label, view.layers.start, view.layers.stop) for view in s.items)
    base = s.items[s.base_pos].inner.label if s.base_pos is not None else None
    return SlicePlan((layers.offset, layers.offset + layers.length), sources, base)


def _checked_threads(threads: int | None) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserError(f"threads must be a whole number of at least 1, got {threads!r}")
    return threads
