"""zoo's written-down mergekit method facts equal what mergekit 0.1.5 reports (a drift check)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from zoo.merge.kernels.mergekit_specs import MERGEKIT_METHODS
from zoo.merge.registry import get_method


def _theirs():
    import mergekit.merge_methods as mkm

    return {m.spec.name: m.spec for m in mkm.registered_methods()}


def test_the_table_lists_every_mergekit_method_and_no_other():
    assert sorted(MERGEKIT_METHODS) == sorted(_theirs())


def _facts(facts) -> dict:
    """The comparable facts of one of our entries."""
    return {
        "names": (facts.pretty_name, facts.reference_url),
        "contract": (facts.base, facts.min_inputs, facts.max_inputs),
        "non_base": (facts.min_non_base, facts.max_non_base),
        "params": [
            (p.name, p.type, p.scope, p.required, None if p.required else p.default)
            for p in facts.params
        ],
        "descriptions": [p.description or None for p in facts.params],
    }


def _spec_facts(spec) -> dict:
    """The same facts, from mergekit's MergeMethodSpec."""
    c = spec.contract
    return {
        "names": (spec.pretty_name, spec.reference_url),
        "contract": (c.base.value, c.min_inputs, c.max_inputs),
        "non_base": (c.min_non_base, c.max_non_base),
        "params": [
            (p.name, p.value_type, p.scope.value, p.required, None if p.required else p.default)
            for p in spec.parameters
        ],
        "descriptions": [p.description for p in spec.parameters],
    }


@pytest.mark.parametrize("name", sorted(MERGEKIT_METHODS))
def test_each_entry_is_mergekits_spec(name):
    assert _facts(MERGEKIT_METHODS[name]) == _spec_facts(_theirs()[name])


def test_the_drift_check_sees_a_changed_entry():
    ties = MERGEKIT_METHODS["ties"]
    params = tuple(p if p.name != "density" else replace(p, default=0.5) for p in ties.params)
    assert _facts(ties._replace(params=params)) != _spec_facts(_theirs()["ties"])
    assert _facts(ties._replace(base="optional")) != _spec_facts(_theirs()["ties"])


def test_a_mergekit_method_merges_through_mergekit_on_first_use():
    import torch

    linear = get_method("linear")
    a, b = torch.ones(3), torch.full((3,), 3.0)
    merged = linear.merge([a, b], None, {"weight": {0: 1.0, 1: 1.0}, "normalize": True})
    assert torch.equal(merged, torch.full((3,), 2.0))
