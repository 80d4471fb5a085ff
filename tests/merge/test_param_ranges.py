"""Parameter values checked against their meaning (zoo.merge.constraints), and mergekit's
scoping of global parameters set per model (accepted, ignored, one warning line)."""

from __future__ import annotations

import typing

import pytest
import torch

from tests import tiny as tm
from zoo.errors import UserError
from zoo.merge import constraints, params
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.params import check_params, resolve_params
from zoo.merge.registry import get_method, list_methods

LAYER = "model.layers.{}.mlp.down_proj.weight"
W3 = [{"weight": 0.5}, {"weight": 0.3}, {}]  # two models and the base (index 2)

# (method, global params, per-input params, base index, the exact problem reported)
REFUSED = [
    ("ties", {"density": 1.5}, W3, 2, "ties: parameters.density: 1.5 is not a fraction in (0, 1]"),
    ("ties", {"density": 0}, W3, 2, "parameters.density: 0.0 is not a fraction in (0, 1]"),
    ("dare_ties", {}, [{"weight": 1, "density": -0.2}, {}], 1, "model 1 parameters.density: -0.2"),
    ("dare_linear", {"density": [0.5, 1.2]}, W3, 2, "parameters.density: 1.2 is not a fraction"),
    (
        "ties",
        {"density": [{"filter": "mlp", "value": 2}, {"value": 0.5}]},
        W3,
        2,
        "parameters.density: 2.0 is not a fraction in (0, 1]",
    ),
    ("slerp", {"t": 1.5}, [{}, {}], 0, "slerp: parameters.t: 1.5 is not an interpolation factor"),
    ("slerp", {"t": [0, 0.5, -0.1]}, [{}, {}], 0, "parameters.t: -0.1 is not an interpolation"),
    ("nearswap", {"t": -1}, [{}, {}], 0, "parameters.t: -1.0 is not a distance in [0, inf)"),
    ("breadcrumbs", {"gamma": 1.0}, W3, 2, "parameters.gamma: 1.0 is not a fraction in [0, 1)"),
    ("sce", {"select_topk": 0}, [{}, {}], 1, "parameters.select_topk: 0.0 is not a fraction"),
    ("della", {"epsilon": 0.6}, W3, 2, "parameters.epsilon: 0.6 is not a fraction in [0, 0.5)"),
    (
        "della",
        {"density": 0.9},
        W3,
        2,
        "model 1 epsilon: density 0.9 +/- epsilon 0.15 leaves (0, 1)",
    ),
    (
        "linear",
        {},
        [{"weight": 1}, {"weight": -1}],
        None,
        "weight: the weights sum to 0 (model 1: 1.0, model 2: -1.0)",
    ),
    ("ties", {}, [{"weight": 0.5}, {"weight": -0.5}, {}], 2, "weight: the weights sum to 0"),
    ("multislerp", {}, [{"weight": 1}, {"weight": -1}], None, "weight: the weights sum to 0"),
    ("nuslerp", {}, [{"weight": 1}, {"weight": -1}], None, "weight: the weights sum to 0"),
    ("karcher", {"max_iter": 0}, [{}, {}], None, "parameters.max_iter: 0 is not an iteration"),
    ("consensus_ta", {"k": 3}, W3, 2, "k: 3 models must agree but only 2 are merged"),
    ("consensus_ta", {"k": 0}, W3, 2, "parameters.k: 0 is not a model count in [1, inf)"),
    ("ramplus_tl", {"epsilon": 0}, [{}, {}], 1, "parameters.epsilon: 0.0 is not a positive"),
    ("opcm", {"alpha": 1.5}, [{}, {}, {}], 0, "parameters.alpha: 1.5 is not a fraction in [0, 1]"),
]


@pytest.mark.parametrize("method, glob, per, base, needle", REFUSED, ids=lambda v: str(v)[:20])
def test_values_outside_their_meaning_are_one_line_errors(method, glob, per, base, needle):
    with pytest.raises(UserError) as err:
        check_params(get_method(method), glob, per, base)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{method}: ")


ACCEPTED = [
    ("task_arithmetic", {"lambda": -0.5}, [{"weight": 1}, {"weight": -1}, {}], 2),  # negation
    ("ties", {"density": 1.0}, W3, 2),
    ("ties", {"normalize": False}, [{"weight": 0.5}, {"weight": -0.5}, {}], 2),
    ("linear", {"normalize": False}, [{"weight": 1}, {"weight": -1}], None),
    ("della", {"density": 0.5, "epsilon": 0.4}, W3, 2),
    ("della", {"density": 1.0}, W3, 2),  # density 1 keeps everything: epsilon plays no part
    ("nearswap", {"t": 5}, [{}, {}], 0),
    ("slerp", {"t": [0, 1]}, [{}, {}], 0),
    ("breadcrumbs", {"density": 0.9, "gamma": 0.5}, W3, 2),  # mergekit trims fewer outliers
    ("passthrough", {}, [{}], None),
]


@pytest.mark.parametrize("method, glob, per, base", ACCEPTED, ids=lambda v: str(v)[:20])
def test_values_within_their_meaning_are_accepted(method, glob, per, base):
    check_params(get_method(method), glob, per, base)


def test_every_problem_is_reported_together():
    with pytest.raises(UserError) as err:
        check_params(
            get_method("ties"),
            {"density": 1.5, "lambda": "x"},
            [{"weight": 1, "density": -1}, {"weight": 1}, {}],
            2,
        )
    text = str(err.value)
    assert text.count(";") == 2 and "\n" not in text
    assert "parameters.density: 1.5" in text and "model 1 parameters.density: -1.0" in text
    assert "parameters.lambda: 'x' is not a valid float" in text


def test_rules_over_gradients_are_checked_on_each_tensor():
    """density [0.5, 0.9] with della's epsilon 0.15 is fine at layer 0 and out at the last."""
    method = get_method("della")
    glob = {"density": [0.5, 0.9]}
    check_params(method, glob, W3, 2)  # not decidable before the tensors: accepted at load
    resolve_params(method, glob, W3, base_index=2, name=LAYER.format(0), t=0.0)
    with pytest.raises(UserError) as err:
        resolve_params(method, glob, W3, base_index=2, name=LAYER.format(3), t=1.0)
    assert str(err.value) == (
        f"della: tensor {LAYER.format(3)!r}: model 1 epsilon: density 0.9 +/- epsilon 0.15"
        " leaves (0, 1); model 2 epsilon: density 0.9 +/- epsilon 0.15 leaves (0, 1)"
    )


def _numeric(annotation) -> bool:
    args = typing.get_args(annotation) or (annotation,)
    return any(a in (int, float) for a in args) and bool not in args


@pytest.mark.parametrize("name", list_methods())
def test_every_numeric_parameter_has_a_meaning(name):
    for spec in get_method(name).param_specs:
        if _numeric(spec.type):
            assert constraints.value_range(name, spec.name) is not None, (name, spec.name)
            if not spec.required and spec.default is not None:  # the defaults are meaningful
                assert spec.default in constraints.value_range(name, spec.name), spec.name


@pytest.fixture
def warned(monkeypatch, capsys):
    """Return a function giving the warning lines printed so far (each warning once)."""
    monkeypatch.setattr(params, "_WARNED", set())
    return lambda: capsys.readouterr().err.splitlines()


def test_a_global_parameter_per_model_is_ignored_with_one_warning(warned):
    method = get_method("della")
    per = [{"weight": 0.5, "lambda": 3.0}, {"weight": 0.5}, {}]
    check_params(method, {"lambda": 0.7, "density": 0.5}, per, 2)
    check_params(method, {"lambda": 0.7, "density": 0.5}, per, 2)  # checked again: no repeat
    assert warned() == [
        "zoo: warning: della: model 1 parameters.lambda is a global parameter: ignored per model"
        " (as mergekit does); set it under parameters:"
    ]
    got = resolve_params(method, {"lambda": 0.7}, per, base_index=2, name="w", t=0)
    assert got["lambda"] == 0.7


def test_a_base_models_non_base_parameter_is_ignored_with_one_warning(warned):
    check_params(get_method("ties"), {}, [{"weight": 1}, {"weight": 1, "density": 0.4}], 1)
    assert warned() == [
        "zoo: warning: ties: model 2 parameters.weight is ignored: the base model takes no"
        " 'weight'",
        "zoo: warning: ties: model 2 parameters.density is ignored: the base model takes no"
        " 'density'",
    ]


def test_per_model_lambda_merges_as_mergekit_merges_it(families, tmp_path, warned):
    """mergekit 0.1.5 reads global parameters with model=None: a per-model lambda (and
    normalize) changes nothing. zoo's output equals mergekit's run_merge on the same recipe."""
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    family = families("qwen3")
    per = [{"weight": w, "lambda": lam, "normalize": False} for w, lam in ((0.6, 5.0), (0.4, -2))]
    config = {
        "merge_method": "ties",
        "base_model": str(family["base"]),
        "dtype": "float32",
        "parameters": {"density": 0.5, "lambda": 0.8},
        "models": [{"model": str(p), "parameters": q} for p, q in zip(family["variants"], per)],
    }
    options = MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True, device="cpu")
    run_merge(MergeConfiguration.model_validate(yaml.safe_load(yaml.safe_dump(config))),
              str(tmp_path / "mk"), options=options)  # fmt: skip
    inputs = [MergeInput(p, q) for p, q in zip(family["variants"], per)]
    merge_folders(inputs, family["base"], "ties", config["parameters"], tmp_path / "zoo",
                  progress=False)  # fmt: skip
    plain = [MergeInput(p, {"weight": q["weight"]}) for p, q in zip(family["variants"], per)]
    merge_folders(plain, family["base"], "ties", config["parameters"], tmp_path / "plain",
                  progress=False)  # fmt: skip
    ours, ref = tm.load_all(tmp_path / "zoo"), tm.load_all(tmp_path / "mk")
    assert sorted(ours) == sorted(ref)
    assert all((ours[k] - ref[k]).abs().max() <= 1e-6 for k in ref)
    plain_out = tm.load_all(tmp_path / "plain")
    assert all(torch.equal(ours[k], plain_out[k]) for k in ref)
    assert any("model 1 parameters.lambda is a global parameter" in line for line in warned())
