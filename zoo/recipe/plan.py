"""From a recipe (and, for `zoo.select`, the members the Hub returned) to a merge spec.

Pure: no network, no weights. The spec names every input as written or selected; pinning to
commits and hashing files is the lock's job (zoo.recipe.lock).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import UserError
from zoo.merge.params import check_params
from zoo.merge.registry import get_method
from zoo.merge.slices import check_slice_inputs
from zoo.recipe.schema import Recipe, Select, split_model_ref


@dataclass(frozen=True)
class Source:
    """One merge input as the recipe names it: 'org/name[@rev]' or a local path; with adapter,
    a peft LoRA adapter (same forms) folded into that model (mergekit's 'model+adapter')."""

    ref: str
    params: dict[str, Any] = field(default_factory=dict)
    adapter: str | None = None

    @property
    def key(self) -> str:
        """The input as one string: 'ref' or 'ref+adapter'."""
        return f"{self.ref}+{self.adapter}" if self.adapter else self.ref


def parse_source(text: str, params: dict[str, Any] | None = None, where: str = "model") -> Source:
    """'MODEL' or mergekit's 'MODEL+ADAPTER'; a local folder whose name holds '+' is a MODEL."""
    try:
        ref, adapter = split_model_ref(text)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None
    return Source(ref, dict(params or {}), adapter)


@dataclass(frozen=True)
class SliceSource:
    """One source of an output slice: a model and the layers [start, stop) it gives."""

    ref: str
    layer_range: tuple[int, int]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SliceSpec:
    """One output slice (mergekit's `slices:` entry), inputs not yet pinned."""

    sources: tuple[SliceSource, ...]
    base: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeSpec:
    """Everything the merge engine needs, with inputs not yet pinned.

    A sliced merge (slices non-empty) lists every distinct slice source once in models (no
    parameters there: they are per slice source); module_params is the `modules:` form's one
    module's parameters, between a slice's and the recipe's.
    """

    method: str
    models: tuple[Source, ...]
    base: str | None
    params: dict[str, Any]
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    seed: int = 0
    random_seed: int | None = None  # mergekit-yaml --random-seed's masks (zoo.merge.mergekit_rng)
    slices: tuple[SliceSpec, ...] = ()
    module_params: dict[str, Any] = field(default_factory=dict)
    tokenizer: dict[str, Any] | None = None  # mergekit's tokenizer: block, as written
    chat_template: str | None = None

    def refs(self) -> list[str]:
        """Every distinct input reference, base first, in a stable order."""
        refs = ([self.base] if self.base else []) + [m.ref for m in self.models]
        refs += [m.adapter for m in self.models if m.adapter]
        refs += [s.base for s in self.slices if s.base]
        return list(dict.fromkeys(refs))

    @property
    def scopes(self) -> tuple[dict[str, Any], ...]:
        """The parameter scopes above the per-model ones, highest precedence first."""
        return (self.module_params, self.params) if self.module_params else (self.params,)


@dataclass(frozen=True)
class Candidate:
    """A Hub member offered to `zoo.select`: its pinned ref and flattened metadata."""

    ref: str
    repo_id: str
    flat: dict[str, Any]


def select(sel: Select, candidates: Sequence[Candidate]) -> list[str]:
    """Order and limit the members the Hub query returned; raise UserError when none remain."""

    def key(c: Candidate) -> tuple:
        value = c.flat.get(sel.order_by, c.repo_id if sel.order_by == "repo_id" else None)
        return (value is None, value if value is not None else 0, c.repo_id)

    chosen = sorted(candidates, key=key, reverse=sel.descending)
    chosen = chosen[: sel.limit] if sel.limit else chosen
    if not chosen:
        raise UserError(f"zoo.select matched no member on the hub ({_describe(sel)})")
    return [c.ref for c in chosen]


def _describe(sel: Select) -> str:
    parts = [
        f"{k}={v}"
        for k, v in (
            ("kind", sel.kind),
            ("experiment", sel.experiment),
            ("base_model", sel.base_model),
        )
        if v
    ]
    parts += [f"tag={t}" for t in sel.tags] + [f"{k}={v}" for k, v in sel.meta.items()]
    return ", ".join(parts) or "no filters"


def merge_spec(recipe: Recipe, selected: Sequence[str] | None = None) -> MergeSpec:
    """Expand the recipe into a MergeSpec and check the method's parameters for these inputs."""
    data, module_params = _one_module(recipe)
    slices = tuple(_slice(sl) for sl in data.get("slices") or ())
    if slices:
        models = tuple(
            Source(ref) for ref in dict.fromkeys(s.ref for sl in slices for s in sl.sources)
        )
    elif recipe.zoo.select is not None:
        if selected is None:
            raise UserError(f"{recipe.source}: zoo.select needs the hub to expand it")
        models = tuple(Source(ref, dict(recipe.zoo.select.parameters)) for ref in selected)
    else:
        models = tuple(
            parse_source(str(m["model"]), m.get("parameters"), f"models[{i}].model")
            for i, m in enumerate(data["models"])
        )
    spec = MergeSpec(
        method=data["merge_method"],
        models=models,
        base=_base(data),
        params=dict(data.get("parameters") or {}),
        dtype=data.get("dtype"),
        out_dtype=data.get("out_dtype"),
        tokenizer_source=_tokenizer_source(data),
        seed=recipe.zoo.seed,
        random_seed=recipe.zoo.random_seed,
        slices=slices,
        module_params=module_params,
        tokenizer=_tokenizer(data),
        chat_template=data.get("chat_template"),
    )
    check_spec(spec)
    tokenizer_refs(spec, str)  # every model the tokenizer settings name is an input
    return spec


def _base(data: dict) -> str | None:
    if not data.get("base_model"):
        return None
    base = parse_source(str(data["base_model"]), where="base_model")
    if base.adapter:
        raise UserError(
            f"base_model: {data['base_model']!r}: a base with a LoRA adapter is not supported; "
            "fold it in a merge of its own first (a multi-merge: name it, use the name)"
        )
    return base.ref


def _one_module(recipe: Recipe) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the recipe's merge data with a `modules:` form's one module lifted to the top
    (its slices or models), and that module's parameters ({} without modules)."""
    data = recipe.merge
    modules = data.get("modules")
    if not modules:
        return data, {}
    if len(modules) != 1:
        raise UserError(
            f"{recipe.source}: modules: zoo merges models with one module (a text model); "
            f"got {len(modules)} ({', '.join(map(str, modules))})"
        )
    (module,) = modules.values()
    lifted = {k: v for k, v in data.items() if k != "modules"}
    lifted.update({k: module[k] for k in ("slices", "models") if module.get(k)})
    return lifted, dict(module.get("parameters") or {})


def _slice(sl: dict[str, Any]) -> SliceSpec:
    for src in sl["sources"]:
        if split_model_ref(str(src["model"]))[1]:
            raise UserError(
                f"slices: {src['model']!r}: a LoRA adapter ('+') in a slice source is not "
                "supported; fold it in an earlier merge of a multi-merge and slice that"
            )
    sources = tuple(
        SliceSource(
            str(src["model"]),
            tuple(src["layer_range"]),
            dict(src.get("parameters") or {}),
        )
        for src in sl["sources"]
    )
    base = str(sl["base_model"]) if sl.get("base_model") else None
    return SliceSpec(sources, base, dict(sl.get("parameters") or {}))


def _tokenizer_source(data: dict) -> str | None:
    value = data.get("tokenizer_source")
    if value is not None and data.get("tokenizer") is not None:
        raise UserError("give either tokenizer_source or tokenizer:, not both")
    return None if value is None else str(value)


def _tokenizer(data: dict) -> dict[str, Any] | None:
    value = data.get("tokenizer")
    return None if value is None else json.loads(json.dumps(value))  # a plain, private copy


def tokenizer_refs(
    spec: MergeSpec, to: Callable[[str], Any], known: Mapping[str, Any] | None = None
) -> tuple[Any, Any]:
    """Return (tokenizer_source, tokenizer) with every model named in them mapped through `to`
    (a ref -> a folder or a pinned ref); raise UserError naming the field for a model that is
    not one of the merge's inputs (spec.refs(), or the keys of `known`)."""
    refs = set(known if known is not None else spec.refs())

    def model(ref: Any, field: str) -> Any:
        if str(ref) not in refs:
            raise UserError(f"{field}: {ref!r} is not a model of this merge")
        return to(str(ref))

    source = spec.tokenizer_source
    if source is not None and source not in ("base", "union"):
        source = model(source, "tokenizer_source")
    if spec.tokenizer is None:
        return source, None
    block = dict(spec.tokenizer)
    if block.get("source") not in (None, "base", "union"):
        block["source"] = model(block["source"], "tokenizer.source")
    tokens = block.get("tokens")
    if isinstance(tokens, dict):
        block["tokens"] = {t: _token_refs(t, cfg, model) for t, cfg in tokens.items()}
    return source, block


def _token_refs(token: str, cfg: Any, model: Callable) -> Any:
    where = f"tokenizer.tokens.{token}.source"
    source = cfg.get("source") if isinstance(cfg, dict) else None
    if isinstance(source, str):
        return {**cfg, "source": model(source, where)}
    if isinstance(source, dict) and source.get("kind") == "model_token" and "model" in source:
        return {**cfg, "source": {**source, "model": model(source["model"], f"{where}.model")}}
    return cfg


def check_spec(spec: MergeSpec) -> None:
    """Raise UserError if the method's parameters or input count do not fit the inputs."""
    if spec.slices:
        return _check_slices(spec)
    method = get_method(spec.method)
    refs = [m.key for m in spec.models]
    per_model = [m.params for m in spec.models]
    base_index = refs.index(spec.base) if spec.base in refs else None
    if spec.base and base_index is None:
        # As in mergekit (and zoo's engine): a base that is not among the models joins the inputs.
        per_model, base_index = per_model + [{}], len(per_model)
    method.check_inputs(len(per_model), bool(spec.base))
    check_params(method, spec.scopes, per_model, base_index if method.uses_base else None)


def _check_slices(spec: MergeSpec) -> None:
    """Check each slice as the engine will: its sources, its base among them, its parameters."""
    method = get_method(spec.method)
    for i, sl in enumerate(spec.slices):
        refs = [s.ref for s in sl.sources]
        base = sl.base or spec.base
        ranges = [s.layer_range for s in sl.sources]
        check_slice_inputs(f"slices[{i}]: ", ranges, base or None, base in refs)
        base_index = refs.index(base) if base else None
        try:
            method.check_inputs(len(refs), base is not None)
            scopes = (sl.params, *spec.scopes)
            per_model = [s.params for s in sl.sources]
            check_params(method, scopes, per_model, base_index if method.uses_base else None)
        except UserError as err:
            raise UserError(f"slices[{i}]: {err}") from None
