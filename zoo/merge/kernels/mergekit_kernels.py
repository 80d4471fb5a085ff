"""mergekit 0.1.5's merge methods, called through its public per-tensor API.

Each entry wraps `mergekit.merge_methods.merge_tensors(tensors, method, parameters=...,
base_index=..., name=...)`: mergekit validates the input contract, binds parameters (per-input
values are passed as {input index: value} mappings) and runs its own kernel on plain tensors. The
schema comes from mergekit's own `MergeMethodSpec`. mergekit is LGPL-3.0: we call it, never copy it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import mergekit.merge_methods as mkm
import torch

from zoo.merge.kernels.spec import REQUIRED, ParamSpec
from zoo.merge.method import MergeMethod, sums_to_one

_SCOPES = {"shared": "shared", "input": "input", "non_base": "non_base"}
_DOCS = "https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md"


def method(
    name: str,
    *,
    identity_on_equal: Callable[[Mapping[str, Any], bool], bool] | None = None,
    stochastic: bool = False,
    reference_url: str | None = None,
    scratch: tuple[float, float] = (3.5, 2.0),
    chunked: Callable[..., Any] | None = None,
    chunk_scratch: tuple[float, float] = (2.0, 4.0),
) -> MergeMethod:
    """Return the zoo MergeMethod for mergekit's registered method `name`; `chunked` is an
    optional zoo row-chunked kernel equal to mergekit's (zoo.merge.kernels.chunked)."""
    spec = mkm.get(name).spec
    contract = spec.contract
    options = {"identity_on_equal": identity_on_equal} if identity_on_equal else {}
    return MergeMethod(
        name=spec.name,
        pretty_name=spec.pretty_name or name,
        reference_url=reference_url or spec.reference_url or f"{_DOCS}#{name}",
        param_specs=tuple(_param_spec(p) for p in spec.parameters),
        run=partial(run_mergekit, name),
        base=contract.base.value,
        min_inputs=contract.min_inputs,
        max_inputs=contract.max_inputs,
        min_non_base=contract.min_non_base,
        max_non_base=contract.max_non_base,
        stochastic=stochastic,
        source="mergekit",
        scratch=scratch,
        chunked=chunked,
        chunk_scratch=chunk_scratch,
        **options,
    )


def run_mergekit(
    method_name: str,
    tensors: Sequence[torch.Tensor],
    base_index: int | None,
    name: str,
    params: Mapping[str, Any],
) -> torch.Tensor:
    """Merge one tensor with mergekit's kernel; inputs are borrowed, never modified."""
    return mkm.merge_tensors(
        list(tensors),
        mkm.get(method_name),
        parameters=dict(params),
        base_index=base_index,
        name=name,
    )


def _param_spec(p: Any) -> ParamSpec:
    default = REQUIRED if p.required else p.default
    return ParamSpec(p.name, p.value_type, _SCOPES[p.scope.value], default, p.description or "")


def normalized_weights(weight: str, flag: str, *, base_counts: bool = False) -> Callable:
    """Identity rule for weighted means: equal inputs come back when weights are normalised."""

    def rule(params: Mapping[str, Any], has_base: bool) -> bool:
        return (has_base and base_counts) or bool(params[flag]) or sums_to_one(params[weight])

    return rule


def unit_scale(params: Mapping[str, Any], has_base: bool) -> bool:
    """Identity rule for passthrough: the single input comes back unless it is scaled."""
    return all(v is None or v == 1 for v in params["scale"].values())
