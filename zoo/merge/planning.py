"""Open the merge inputs and plan every output tensor from file headers alone.

Pure bookkeeping: which sources feed the kernel (inputs in order, then the base), which one
donates the folder layout, how tensor names line up, what each output tensor's shape and dtype
are, and which checks fail. Nothing is written; no tensor data is read, and torch is not
imported: dtypes are safetensors names (zoo.merge.dtypes), a torch dtype is made from one only
where a tensor is read (`TensorTask.dtype`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from zoo.errors import UserError
from zoo.merge import dtypes
from zoo.merge.chunk_plan import working_set
from zoo.merge.io import Checkpoint, align_names, read_json
from zoo.merge.lora import ADAPTER_CONFIG, LoraCheckpoint, is_adapter
from zoo.merge.method import MergeMethod
from zoo.merge.slices import LayerSlice, LayerView, layer_lists, num_layers
from zoo.merge.vocab import VocabPlan, is_vocab_tensor, plan_vocab, read_vocab
from zoo.merge.writer import Entry

if TYPE_CHECKING:
    import torch

# The names a recipe's dtype / out_dtype may take, with the safetensors dtype each means.
DTYPES = {
    "float16": "F16",
    "fp16": "F16",
    "bfloat16": "BF16",
    "bf16": "BF16",
    "float32": "F32",
    "fp32": "F32",
    "float64": "F64",
}
# config.json keys that may differ between checkpoints of one architecture.
_CONFIG_FREE = {
    "architectures",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "_name_or_path",
    "name_or_path",
    "vocab_size",
    "use_cache",
    "id2label",
    "label2id",
    "_attn_implementation",
    "attn_implementation",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
    "gradient_checkpointing",
    "problem_type",
    "pad_token_id",
    "bos_token_id",
    # training-time settings that do not change the network's function at inference
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "attention_dropout",
    "dropout",
    "hidden_dropout",
    "activation_dropout",
    "seq_classif_dropout",
    "qa_dropout",
    "initializer_range",
    "use_return_dict",
    "eos_token_id",
    "sep_token_id",
    "auto_map",
}


@dataclass(frozen=True)
class MergeInput:
    """One model to merge: a local folder, its per-model parameters and, for a LoRA adapter
    folder, the base to fold it into (default: the merge base, else adapter_config's base path)."""

    path: Path
    params: Mapping[str, Any] = field(default_factory=dict)
    adapter_base: Path | None = None


@dataclass(frozen=True)
class OutputSlice:
    """One output slice (mergekit's `slices:` entry): ranges[i] = (start, stop), the layers
    sources[i] gives; every range has the same length. base: the slice's base model (one of
    its sources); params: the slice's parameters, above the global ones."""

    sources: tuple[MergeInput, ...]
    ranges: tuple[tuple[int, int], ...]
    base: Path | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorTask:
    """One output tensor: where it comes from in each source and what it becomes."""

    key: str
    keys: tuple[str | None, ...]  # per source, in kernel order
    shape: tuple[int, ...]
    dtype_name: str  # the output's, a safetensors name ("BF16")
    kind: Literal["merge", "copy"]
    t: float = 0.0
    vocab: bool = False
    copy_from: int | None = None
    part: int = 0  # the slice (the group of sources) this tensor is merged from

    @property
    def module(self) -> str:
        return self.key.rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2]

    @property
    def dtype(self) -> torch.dtype:
        """The output's torch dtype (imports torch: for the merge itself)."""
        return dtypes.to_torch(self.dtype_name)

    @property
    def entry(self) -> Entry:
        """The tensor as the output file holds it (its name within its module folder)."""
        return Entry(self.name, self.dtype_name, self.shape)


def parse_dtype(value: str | torch.dtype | None, what: str) -> str | None:
    """Return the safetensors name of a floating dtype given as a name like "bfloat16" (or a
    torch.dtype); raise UserError otherwise."""
    if value is None:
        return None
    dtype = DTYPES.get(str(value).removeprefix("torch."))
    if dtype is None:
        raise UserError(f"{what} must be one of {', '.join(sorted(DTYPES))}, not {value!r}")
    return dtype


class Sources:
    """The opened merge sources, in kernel order, with the base and donor positions.

    layers: one LayerSlice per input, to see each input through a slice (zoo.merge.slices);
    the base must then be one of the inputs. cache: checkpoints shared with other Sources
    (closed by its owner, not here).
    """

    def __init__(
        self,
        inputs: Sequence[MergeInput],
        base: Path | None,
        method: MergeMethod,
        allow_pickle: bool,
        *,
        layers: Sequence[LayerSlice] | None = None,
        cache: dict[Path, Checkpoint] | None = None,
    ):
        self._owns_cache = cache is None
        self._cache: dict[Path, Checkpoint] = {} if cache is None else cache
        self._allow_pickle = allow_pickle
        self._layers = layers
        self.items: list[Any] = []
        self.params: list[Mapping[str, Any]] = []
        try:
            self._open_all(inputs, base)
        except BaseException:
            self.close()
            raise
        self.base_pos = self._base_pos(inputs, base)
        self.kernel_base = self.base_pos if method.uses_base else None
        self.donor = self._donor()

    def _open_all(self, inputs: Sequence[MergeInput], base: Path | None) -> None:
        if not inputs:
            raise UserError("nothing to merge: give at least one model")
        base_path = Path(base).resolve() if base is not None else None
        if base_path is not None and base_path.is_dir() and not is_adapter(base_path):
            self._checkpoint(base_path, f"base model ({base})")  # its label, even when shared
        for i, item in enumerate(inputs):
            opened = self._open(item.path, item.adapter_base, base, f"model {i + 1}")
            self.items.append(LayerView(opened, self._layers[i]) if self._layers else opened)
            self.params.append(dict(item.params))
        if base_path is not None and base_path not in [Path(i.path).resolve() for i in inputs]:
            self.items.append(self._open(base_path, None, None, "base model"))
            self.params.append({})

    def _base_pos(self, inputs, base) -> int | None:
        if base is None:
            return None
        paths = [Path(i.path).resolve() for i in inputs]
        resolved = Path(base).resolve()
        return paths.index(resolved) if resolved in paths else len(paths)

    def _open(self, path: Path, adapter_base: Path | None, base: Path | None, label: str):
        path = Path(path)
        label = f"{label} ({path})"
        if not path.is_dir():
            raise UserError(f"{label}: no such folder")
        if not is_adapter(path):
            return self._checkpoint(path, label)
        under = adapter_base or base or _adapter_config_base(path)
        if under is None or Path(under).resolve() == path.resolve():
            raise UserError(f"{label}: LoRA adapter without a local base model; pass its base")
        return LoraCheckpoint(
            path,
            self._checkpoint(Path(under), f"base of {label}"),
            label,
            allow_pickle=self._allow_pickle,
        )

    def _checkpoint(self, path: Path, label: str) -> Checkpoint:
        key = path.resolve()
        if key not in self._cache:
            self._cache[key] = Checkpoint(path, label, allow_pickle=self._allow_pickle)
        return self._cache[key]

    def _donor(self) -> int:
        order = ([self.base_pos] if self.base_pos is not None else []) + list(
            range(len(self.items))
        )
        return next((i for i in order if self.items[i].is_st), order[0])

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.items]

    def dirs(self) -> list[Path]:
        """The sources' tokenizer folders, the donor's first."""
        order = [self.donor] + [i for i in range(len(self.items)) if i != self.donor]
        return [self.items[i].tokenizer_dir for i in order]

    def close(self) -> None:
        for item in self.items:
            item.close()
        if self._owns_cache:
            for checkpoint in self._cache.values():
                checkpoint.close()


def _adapter_config_base(path: Path) -> Path | None:
    name = read_json(path / ADAPTER_CONFIG).get("base_model_name_or_path")
    return Path(name) if name and Path(name).is_dir() else None


def check_structure(sources: Sources, sliced: bool = False) -> None:
    """Raise UserError when module layouts, module configs or architectures disagree
    (sliced: sources of different depths are fine, so their layer counts may differ)."""
    donor = sources.items[sources.donor]
    for item in sources.items:
        check_config(donor, item, sliced)
        if item.is_st and donor.is_st:
            _check_modules(donor, item)


def _check_modules(donor, item) -> None:
    def kinds(source):
        return [
            (m.get("path", "").strip("/"), str(m.get("type", "")).rsplit(".", 1)[-1])
            for m in source.modules
        ]

    if kinds(item) != kinds(donor):
        raise UserError(f"{item.label} has modules {kinds(item)}, {donor.label} has {kinds(donor)}")
    for path, _ in kinds(donor):
        if (
            path
            and (donor.path / path / "config.json").is_file()
            and (item.path / path / "config.json").is_file()
        ):
            if module_config(donor.path / path / "config.json") != module_config(
                item.path / path / "config.json"
            ):
                raise UserError(f"{item.label}: {path}/config.json differs from {donor.label}'s")


_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def module_config(path: Path) -> dict[str, Any]:
    """A module's config.json, with sentence-transformers' legacy Pooling keys in today's form.

    sentence-transformers 6 saves Pooling as {embedding_dimension, pooling_mode, include_prompt};
    older folders (the packaged all-MiniLM-L6-v2) use word_embedding_dimension + one boolean per
    mode. Both describe the same module, so a fine-tune saved by ST 6 still matches its base.
    """
    config = dict(read_json(path))
    if "word_embedding_dimension" in config:
        config["embedding_dimension"] = config.pop("word_embedding_dimension")
        modes = [mode for key, mode in _LEGACY_POOLING.items() if config.pop(key, False)]
        config["pooling_mode"] = modes[0] if len(modes) == 1 else modes
    if "pooling_mode" in config:
        config.setdefault("include_prompt", True)
    return config


def check_config(donor: Any, item: Any, sliced: bool = False) -> None:
    """Raise UserError when item's config.json describes another architecture than donor's."""
    a, b = donor.config, item.config
    if not a or not b:
        return
    if a.get("model_type") != b.get("model_type"):
        raise UserError(
            f"architecture mismatch: {item.label} is {b.get('model_type')!r}, "
            f"{donor.label} is {a.get('model_type')!r}"
        )
    free = _CONFIG_FREE | (layer_lists(a) | layer_lists(b) if sliced else set())
    for key in sorted(set(a) & set(b) - free):
        if a[key] != b[key]:
            raise UserError(
                f"architecture mismatch: config {key!r} is {b[key]!r} in {item.label}, "
                f"{a[key]!r} in {donor.label}"
            )


def plan_vocabulary(
    sources: Sources, tokenizer_source: Any, tokenizer: Mapping[str, Any] | None = None
) -> VocabPlan | None:
    """Return the output vocabulary for the sources (None when no tokenizer setting is given
    and their vocabularies agree)."""
    dirs = [s.tokenizer_dir for s in sources.items]
    return plan_vocab(
        _read_vocabs(dirs),
        sources.labels,
        dirs,
        donor=sources.donor,
        tokenizer_source=tokenizer_source,
        tokenizer=tokenizer,
        sizes=[_vocab_size(s) for s in sources.items],
        paths=[s.path for s in sources.items],
    )


def _vocab_size(item: Any) -> int | None:
    """The rows a source's vocabulary tensors use: its config's vocab_size (None without)."""
    size = item.config.get("vocab_size") if isinstance(item.config, dict) else None
    return size if isinstance(size, int) else None


def _read_vocabs(dirs: Sequence[Path]) -> list[dict[str, int] | None]:
    """Read each distinct vocabulary once: folders whose tokenizer files are byte-identical
    share one parsed dict (K parsed copies of a large vocabulary cost memory and time)."""
    cache: dict[bytes, dict[str, int] | None] = {}
    vocabs = []
    for folder in dirs:
        digest = hashlib.sha256()
        for name in ("tokenizer.json", "vocab.txt"):
            path = Path(folder) / name
            digest.update(path.read_bytes() if path.is_file() else b"\0")
        key = digest.digest()
        if key not in cache:
            cache[key] = read_vocab(Path(folder))
        vocabs.append(cache[key])
    return vocabs


def plan_tensors(
    sources: Sources,
    vocab: VocabPlan | None,
    dtype: str | None,
    out_dtype: str | None,
    *,
    part: int = 0,
    layers: LayerSlice | None = None,
) -> tuple[list[TensorTask], list[str]]:
    """Return (one task per output tensor, sorted; names present only in non-donor sources).

    dtype, out_dtype: safetensors names (parse_dtype). layers: the slice the sources are seen
    through (gradient positions run over it), else the whole models'. part: recorded on every
    task.
    """
    donor = sources.items[sources.donor]
    reference = sorted(donor.tensors)
    maps = [_name_map(s, reference) for s in sources.items]
    skipped = sorted(
        {
            f"{s.label}: {k}"
            for s, m in zip(sources.items, maps)
            for k in set(s.tensors) - set(m.values())
        }
    )
    if layers is None:
        depth = num_layers(None, reference)
        layers = LayerSlice(0, depth, 0)
    tasks = [_task(key, sources, maps, vocab, dtype, out_dtype, layers) for key in reference]
    return [replace(t, part=part) for t in tasks] if part else tasks, skipped


def _name_map(source, reference: list[str]) -> dict[str, str]:
    roots = [k for k in reference if "/" not in k]
    mapping = align_names([k for k in source.tensors if "/" not in k], roots, source.label)
    mapping.update({k: k for k in reference if "/" in k and k in source.tensors})
    return mapping


def _task(key, sources, maps, vocab, dtype, out_dtype, layers) -> TensorTask:
    donor = sources.items[sources.donor].tensors[key]
    keys = tuple(m.get(key) for m in maps)
    if not dtypes.is_float(donor.dtype_name):
        src = sources.donor
        pos = sources.base_pos
        if pos is not None and keys[pos] is not None:
            theirs = sources.items[pos].tensors[keys[pos]]
            same = (theirs.shape, theirs.dtype_name) == (donor.shape, donor.dtype_name)
            src = pos if same else src
        return TensorTask(key, keys, donor.shape, donor.dtype_name, "copy", copy_from=src)
    infos = []
    for source, k in zip(sources.items, keys):
        if k is None:
            raise UserError(f"missing tensor: {source.label} has no {key!r}")
        infos.append(source.tensors[k])
    aligned = vocab is not None and is_vocab_tensor(key)
    _check_shapes(key, sources.labels, infos, aligned)
    if not all(dtypes.is_float(i.dtype_name) for i in infos):
        raise UserError(f"tensor {key!r} is floating point in some models and not in others")
    shape = (vocab.rows, *donor.shape[1:]) if aligned else donor.shape
    promoted = infos[0].dtype_name
    for info in infos[1:]:
        promoted = dtypes.promote(promoted, info.dtype_name)
    t = layers.position(key)
    return TensorTask(key, keys, shape, out_dtype or dtype or promoted, "merge", t, aligned)


def _check_shapes(key: str, labels: Sequence[str], infos: Sequence[Any], aligned: bool) -> None:
    first = infos[0].shape
    for label, info in zip(labels, infos):
        same = info.shape[1:] == first[1:] if aligned else info.shape == first
        if not same:
            raise UserError(
                f"shape mismatch for {key!r}: {label} has {list(info.shape)}, "
                f"{labels[0]} has {list(first)}"
            )


def estimate_peak(
    tasks: Sequence[TensorTask],
    n_sources: int,
    dtype: str | None,
    scratch: tuple[float, float],
    chunks: Mapping[str, int] | None = None,
    chunk_scratch: tuple[float, float] = (0.0, 0.0),
) -> int:
    """Return an estimate of the merge's peak working set in bytes (the interpreter excluded).

    The largest working set dominates: for a tensor merged whole, its K inputs in the compute
    dtype (at least float32), the kernel's measured scratch (a*K + b tensor-sizes) and one more
    for the output copy; for a tensor merged in chunks (chunks: key -> rows per chunk), the same
    for one chunk with the chunked kernel's scratch. The read ahead (the next tensor's or chunk's
    inputs) and the queued writes (two outputs) come on top.
    """
    worst = 0
    for task in tasks:
        numel = math.prod(task.shape)
        if task.kind == "copy":
            worst = max(worst, numel * dtypes.itemsize(task.dtype_name))
            continue
        itemsize = dtypes.itemsize(compute_dtype(dtype, task.dtype_name))
        rows = (chunks or {}).get(task.key)
        if rows:
            numel = rows * (numel // task.shape[0])
            work = working_set(numel, itemsize, n_sources, chunk_scratch)
        else:
            work = working_set(numel, itemsize, n_sources, scratch)
        out_bytes = 2 * numel * dtypes.itemsize(task.dtype_name)
        worst = max(worst, work + numel * itemsize * n_sources + out_bytes)
    return worst


def compute_dtype(dtype: str | None, stored: str) -> str:
    """Return the dtype a tensor is merged in (safetensors names): dtype if given, else at
    least float32."""
    return dtype or dtypes.promote(stored, "F32")
