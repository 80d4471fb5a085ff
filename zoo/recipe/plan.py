"""From a recipe (and, for `zoo.select`, the members the Hub returned) to a merge spec.

Pure: no network, no weights. The spec names every input as written or selected; pinning to
commits and hashing files is the lock's job (zoo.recipe.lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import UserError
from zoo.merge.params import check_params
from zoo.merge.registry import get_method
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
class MergeSpec:
    """Everything the merge engine needs, with inputs not yet pinned."""

    method: str
    models: tuple[Source, ...]
    base: str | None
    params: dict[str, Any]
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    seed: int = 0

    def refs(self) -> list[str]:
        """Every distinct input reference, base first, in a stable order."""
        refs = ([self.base] if self.base else []) + [m.ref for m in self.models]
        refs += [m.adapter for m in self.models if m.adapter]
        return list(dict.fromkeys(refs))


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
    data = recipe.merge
    if data.get("slices") or data.get("modules"):
        raise UserError(
            f"{recipe.source}: slices/modules are not supported by zoo's engine; "
            "merge whole models with models: (or use mergekit-yaml for layer slices)"
        )
    if recipe.zoo.select is not None:
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
    )
    check_spec(spec)
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


def _tokenizer_source(data: dict) -> str | None:
    value = data.get("tokenizer_source")
    if data.get("tokenizer"):
        raise UserError(
            "tokenizer: (mergekit's tokenizer block) is not supported; use tokenizer_source"
        )
    return None if value is None else str(value)


def check_spec(spec: MergeSpec) -> None:
    """Raise UserError if the method's parameters or input count do not fit the inputs."""
    method = get_method(spec.method)
    refs = [m.key for m in spec.models]
    per_model = [m.params for m in spec.models]
    base_index = refs.index(spec.base) if spec.base in refs else None
    if spec.base and base_index is None:
        # As in mergekit (and zoo's engine): a base that is not among the models joins the inputs.
        per_model, base_index = per_model + [{}], len(per_model)
    method.check_inputs(len(per_model), bool(spec.base))
    check_params(method, spec.params, per_model, base_index if method.uses_base else None)
