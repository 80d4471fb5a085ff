"""The registry: explicit entries, unique names, schemas, did-you-mean and parameter checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from zoo.errors import UserError
from zoo.merge.params import check_params, resolve_params
from zoo.merge.registry import REGISTRY, Registry, get_method, list_methods

MERGEKIT = [
    "linear",
    "multislerp",
    "slerp",
    "nuslerp",
    "task_arithmetic",
    "ties",
    "dare_ties",
    "dare_linear",
    "breadcrumbs",
    "breadcrumbs_ties",
    "della",
    "della_linear",
    "model_stock",
    "karcher",
    "sce",
    "passthrough",
    "arcee_fusion",
    "nearswap",
    "ram",
    "ramplus_tl",
]


def test_every_required_method_is_registered():
    assert set(MERGEKIT + ["consensus_ta", "consensus_ties", "opcm"]) == set(list_methods())
    assert list_methods() == sorted(list_methods())


@pytest.mark.parametrize("name", list_methods())
def test_entry_has_pretty_name_reference_and_schema(name):
    method = get_method(name)
    assert method.name == name and method.pretty_name
    assert method.reference_url.startswith("https://")
    assert method.source == ("mergekit" if name in MERGEKIT else "zoo")
    fields = method.params.model_fields
    assert {f.alias or k for k, f in fields.items()} == {p.name for p in method.param_specs}
    defaults = {p.name: p.default for p in method.param_specs if not p.required}
    assert method.params.model_validate(
        defaults | {p.name: 0.5 for p in method.param_specs if p.required}
    )
    with pytest.raises(ValidationError):
        method.params.model_validate({"bogus_key": 1})
    assert method.needs_base == (method.base == "required")


def test_every_mergekit_method_is_registered_with_mergekits_contract():
    import mergekit.merge_methods as mkm

    theirs = {m.spec.name: m.spec for m in mkm.registered_methods()}
    assert set(theirs) == {n for n in list_methods() if get_method(n).source == "mergekit"}
    for name, spec in theirs.items():
        ours = get_method(name)
        assert ours.base == spec.contract.base.value, name
        assert (ours.min_inputs, ours.max_inputs) == (
            spec.contract.min_inputs,
            spec.contract.max_inputs,
        ), name
        assert [(p.name, p.default) for p in ours.param_specs if not p.required] == [
            (p.name, p.default) for p in spec.parameters if not p.required
        ], name


def test_registry_refuses_duplicates():
    registry = Registry([get_method("linear")])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(get_method("linear"))
    assert REGISTRY.names() == list_methods()


@pytest.mark.parametrize(
    "typo, suggestion",
    [
        ("multislerpp", "multislerp"),
        ("lnear", "linear"),
        ("dare-ties", "dare_ties"),
        ("opcn", "opcm"),
    ],
)
def test_lookup_suggests_the_closest_name(typo, suggestion):
    with pytest.raises(UserError, match=f"did you mean '{suggestion}'"):
        get_method(typo)


def test_schema_is_mergekits_own():
    ties = {p.name: p for p in get_method("ties").param_specs}
    assert ties["weight"].scope == "non_base" and ties["weight"].required
    assert ties["density"].default == 1.0 and ties["normalize"].default is True
    assert get_method("linear").param("weight").scope == "input"
    consensus = {p.name: p for p in get_method("consensus_ta").param_specs}
    assert consensus["lambda"].scope == "shared" and consensus["tall_lambda"].scope == "non_base"
    assert get_method("consensus_ta").params(**{"lambda": 0.3}).lambda_ == 0.3


def test_check_params_reports_every_problem_on_one_line():
    with pytest.raises(UserError) as err:
        check_params(get_method("linear"), {"normalise": True}, [{"weight": 1}, {}], None)
    text = str(err.value)
    assert "\n" not in text and "did you mean 'normalize'" in text
    assert "missing required parameter 'weight' for model(s) 2" in text


def test_check_params_refuses_invalid_values():
    with pytest.raises(UserError, match="not a valid"):
        check_params(get_method("ties"), {"weight": "heavy"}, [{}], 1)
    check_params(
        get_method("ties"),
        {"weight": [0.2, 0.8], "density": {"value": 0.5, "filter": "mlp"}},
        [{}, {}],
        1,
    )


def test_gradients_filters_and_precedence_resolve_like_mergekit():
    method = get_method("ties")
    global_params = {
        "weight": 1.0,
        "density": [{"filter": "attention", "value": 0.3}, {"value": 0.9}],
    }
    inputs = [{"weight": [0.0, 1.0]}, {}, {}]
    got = resolve_params(
        method,
        global_params,
        inputs,
        base_index=2,
        name="encoder.layer.1.attention.self.query.weight",
        t=0.25,
    )
    assert got["weight"] == {0: 0.25, 1: 1.0}  # gradient interpolated at t; base gets none
    assert got["density"] == {0: 0.3, 1: 0.3}  # filter matched the tensor name
    other = resolve_params(
        method, global_params, inputs, base_index=2, name="pooler.dense.weight", t=0
    )
    assert other["density"] == {0: 0.9, 1: 0.9} and other["lambda"] == 1.0


def test_every_lazily_named_kernel_resolves():
    from zoo.lazy import Ref

    refs = []
    for method in REGISTRY.methods.values():
        refs += [method.chunked] if isinstance(method.chunked, Ref) else []
        if method.delta_scale is not None:
            refs += [method.delta_scale.stats, method.delta_scale.scale]
        refs += (
            [method.run.function] if isinstance(getattr(method.run, "function", None), Ref) else []
        )
    assert len(refs) >= 4 + 2 + 3
    assert all(callable(ref.load()) for ref in refs)
    with pytest.raises(AttributeError):
        Ref("zoo.merge.kernels.chunked:NoSuchKernel").load()
