"""mergekit 0.1.5's merge methods, called through its public per-tensor API.

`describe(name)` gives one method's fields as plain data (zoo.merge.method.mergekit_method
builds the MergeMethod from them); its runner calls `mergekit.merge_methods.merge_tensors(
tensors, method, parameters=..., base_index=..., name=...)`: mergekit validates the input
contract, binds parameters (per-input values are passed as {input index: value} mappings) and
runs its own kernel on plain tensors. The schema is mergekit's own `MergeMethodSpec`, written
down in zoo.merge.kernels.mergekit_specs, so describing a method imports neither mergekit nor
torch; mergekit is imported on the first tensor merged with one of its methods.
mergekit is LGPL-3.0: we call it, never copy it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from zoo.merge.kernels.mergekit_specs import MERGEKIT_METHODS

if TYPE_CHECKING:
    import torch

_DOCS = "https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md"


def describe(name: str) -> dict[str, Any]:
    """Return mergekit's own description of its registered method `name`, as MergeMethod fields:
    names, paper link, parameter schema, input contract and the per-tensor runner."""
    facts = MERGEKIT_METHODS[name]
    return {
        "name": name,
        "pretty_name": facts.pretty_name or name,
        "reference_url": facts.reference_url or f"{_DOCS}#{name}",
        "schema": facts.params,
        "run": partial(run_mergekit, name),
        "base": facts.base,
        "min_inputs": facts.min_inputs,
        "max_inputs": facts.max_inputs,
        "min_non_base": facts.min_non_base,
        "max_non_base": facts.max_non_base,
        "source": "mergekit",
    }


def run_mergekit(
    method_name: str,
    tensors: Sequence[torch.Tensor],
    base_index: int | None,
    name: str,
    params: Mapping[str, Any],
) -> torch.Tensor:
    """Merge one tensor with mergekit's kernel; inputs are borrowed, never modified."""
    import mergekit.merge_methods as mkm  # here: mergekit costs seconds to import

    return mkm.merge_tensors(
        list(tensors),
        mkm.get(method_name),
        parameters=dict(params),
        base_index=base_index,
        name=name,
    )


def normalized_weights(weight: str, flag: str, *, base_counts: bool = False) -> Callable:
    """Identity rule for weighted means: equal inputs come back when weights are normalised."""

    def rule(params: Mapping[str, Any], has_base: bool) -> bool:
        return (has_base and base_counts) or bool(params[flag]) or sums_to_one(params[weight])

    return rule


def unit_scale(params: Mapping[str, Any], has_base: bool) -> bool:
    """Identity rule for passthrough: the single input comes back unless it is scaled."""
    return all(v is None or v == 1 for v in params["scale"].values())


def sums_to_one(values: Mapping[Any, float]) -> bool:
    """True when the weights sum to 1 (so a weighted sum of equal tensors is that tensor)."""
    return math.isclose(sum(values.values()), 1.0, rel_tol=0, abs_tol=1e-12)
