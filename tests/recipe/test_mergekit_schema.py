"""zoo's copy of mergekit's recipe language equals mergekit 0.1.5's: the same keys, the same
recipes accepted and refused, the same value for every setting. mergekit is imported inside the
tests only (zoo itself reads recipes without it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from zoo.errors import UserError
from zoo.merge import settings
from zoo.recipe import mergekit_schema as ours
from zoo.recipe.schema import load_recipe

ROOT = Path(__file__).resolve().parents[2]
MODELS = [
    "ModelPath",
    "ModelReference",
    "ModelTokenEmbedding",
    "ZeroEmbedding",
    "TokenEmbeddingConfig",
    "TokenizerConfig",
    "InputSliceDefinition",
    "InputModelDefinition",
    "OutputSliceDefinition",
    "OutputModuleDefinition",
    "MergeConfiguration",
]


def _mergekit_class(name: str) -> type[BaseModel]:
    import mergekit.common
    import mergekit.config
    import mergekit.tokenizer.config

    for module in (mergekit.config, mergekit.common, mergekit.tokenizer.config):
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(name)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_has_mergekits_keys_and_defaults(name):
    theirs = _mergekit_class(name).model_fields
    mine = getattr(ours, name).model_fields
    assert list(mine) == list(theirs)
    assert {k: f.is_required() for k, f in mine.items()} == {
        k: f.is_required() for k, f in theirs.items()
    }
    assert {k: f.default for k, f in mine.items() if not f.is_required()} == {
        k: f.default for k, f in theirs.items() if not f.is_required()
    }


def _accepts(model: type[BaseModel], data) -> bool:
    try:
        model.model_validate(data)
    except (ValidationError, RuntimeError, ValueError):
        return False
    return True


M = [{"model": "org/a"}]
CONFIGS = [
    {"merge_method": "linear", "models": M},
    {"merge_method": "linear"},  # no inputs
    {"merge_method": "linear", "models": M, "slices": [{"sources": []}]},  # two forms
    {"models": M},  # no method
    {"merge_method": "linear", "models": [{"model": "a@b@c"}]},
    {"merge_method": "linear", "models": [{"model": "a+b+c"}]},
    {"merge_method": "linear", "models": [{"model": "base+lora@rev"}]},
    {"merge_method": "linear", "models": [{"model": {"model": {"path": "a"}, "lora": None}}]},
    {"merge_method": "linear", "models": [{"model": 3}]},
    {"merge_method": "linear", "models": [{}]},
    {"merge_method": "linear", "models": "org/a"},
    {"merge_method": "linear", "models": M, "base_model": "x@y@z"},
    {"merge_method": "linear", "models": M, "dtype": 16},
    {"merge_method": "linear", "models": M, "tokenizer_source": "union"},
    {"merge_method": "linear", "models": M, "tokenizer_source": "org/x@v1"},
    {"merge_method": "linear", "models": M, "tokenizer_source": ["union"]},
    {"merge_method": "linear", "models": M, "tokenizer_source": "base", "tokenizer": {}},
    {"merge_method": "linear", "models": M, "tokenizer": {"source": "base", "tokens": {}}},
    {"merge_method": "linear", "models": M, "tokenizer": {"pad_to_multiple_of": "x"}},
    {
        "merge_method": "linear",
        "models": M,
        "tokenizer": {"tokens": {"<x>": {"source": {"kind": "zero"}, "force": True}}},
    },
    {
        "merge_method": "linear",
        "models": M,
        "tokenizer": {"tokens": {"<x>": {"source": {"kind": "model_token", "model": "a"}}}},
    },
    {
        "merge_method": "linear",
        "models": M,
        "tokenizer": {
            "tokens": {"<x>": {"source": {"kind": "model_token", "model": "a", "token_id": 1}}}
        },
    },
    {
        "merge_method": "linear",
        "models": M,
        "tokenizer": {
            "tokens": {
                "<x>": {
                    "source": {"kind": "model_token", "model": "a", "token_id": 1, "token": "t"}
                }
            }
        },
    },
    {"merge_method": "linear", "models": M, "tokenizer": {"tokens": {"<x>": {"source": "org/m"}}}},
    {"merge_method": "linear", "models": M, "parameters": {"weight": {"value": 1}}},
    {"merge_method": "linear", "models": M, "parameters": {"weight": [{"value": [1, 2]}]}},
    {"merge_method": "linear", "models": M, "parameters": {"weight": {"filter": "x"}}},
    {"merge_method": "linear", "models": M, "parameters": {"weight": [1, {"value": 2}]}},
    {"merge_method": "linear", "models": M, "parameters": {"weight": None}},
    {"merge_method": "linear", "models": M, "parameters": {"weight": {"a": 1}}},
    {"merge_method": "linear", "models": M, "parameters": {"weight": [[1, 2]]}},
    {"merge_method": "linear", "models": M, "parameters": [1]},
    {"merge_method": "linear", "slices": [{"sources": [{"model": "a", "layer_range": [0, 2]}]}]},
    {"merge_method": "linear", "slices": [{"sources": [{"model": "a", "layer_range": [0]}]}]},
    {"merge_method": "linear", "slices": [{"sources": [{"model": "a"}]}]},
    {"merge_method": "linear", "slices": [{"sources": [{"model": "a", "layer_range": "0-2"}]}]},
    {
        "merge_method": "linear",
        "slices": [{"sources": [{"model": "a", "layer_range": [0, 2]}], "residual_weight": "lots"}],
    },
    {"merge_method": "linear", "slices": [{"base_model": "a"}]},
    {"merge_method": "linear", "modules": {"text": {"models": M}}},
    {"merge_method": "linear", "modules": {"text": {}}},
    {"merge_method": "linear", "modules": {"text": {"models": M, "slices": [{"sources": []}]}}},
    {"merge_method": "linear", "modules": {"text": {"models": []}}},
    {"merge_method": "linear", "modules": ["text"]},
    {"merge_method": "linear", "models": M, "chat_template": 3},
    {"merge_method": "linear", "models": M, "out_dtype": "bfloat16", "name": "extra keys pass"},
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_zoo_accepts_a_config_exactly_when_mergekit_does(config):
    theirs = _mergekit_class("MergeConfiguration")
    assert _accepts(ours.MergeConfiguration, config) == _accepts(theirs, config)


def _shipped_documents():
    paths = sorted([*ROOT.glob("recipes/**/*.yaml"), *ROOT.glob("recipes/**/*.yml")])
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "merge_method" in doc:
                yield path.name, {k: v for k, v in doc.items() if k != "zoo"}


SHIPPED = list(_shipped_documents())


def test_every_shipped_recipe_document_is_judged_as_mergekit_judges_it():
    theirs = _mergekit_class("MergeConfiguration")
    assert len(SHIPPED) > 30
    differ = [
        name
        for name, doc in SHIPPED
        if _accepts(ours.MergeConfiguration, doc) != _accepts(theirs, doc)
    ]
    assert differ == []


@pytest.mark.parametrize(
    "text, needle",
    [
        (
            "merge_method: linear\nmodels:\n  - model: a@b@c\n",
            "models.0.model.model: invalid model path, more than one",
        ),
        ("merge_method: linear\nmodels:\n  - model: org/a\nbase_model: x+y+z\n", "base_model:"),
        ("merge_method: linear\nmodels:\n  - model: org/a\ndtype: [1]\n", "dtype: Input should"),
        (
            "merge_method: linear\nmodels:\n  - model: org/a\ntokenizer_source: base\n"
            "tokenizer: {source: base}\n",
            "not a valid mergekit configuration: cannot give both tokenizer_source and tokenizer",
        ),
        (
            "merge_method: linear\nmodels:\n  - model: org/a\n    parameters: {weight: {a: 1}}\n",
            "models.0.parameters.weight",
        ),
        (
            "merge_method: ties\nbase_model: b\nmodels:\n  - model: org/a\n"
            "    parameters: {weight: 1, density: [0.2, {value: 0.7}]}\n",
            "<recipe>: models.0.parameters.density: expected a number, flag or string, a list of "
            "them (a gradient) or {value, filter} conditions",
        ),
        (
            "merge_method: linear\nmodules:\n  text: {}\n",
            "modules.text: a module gives either slices or models",
        ),
        (
            "merge_method: passthrough\nslices:\n"
            "  - sources:\n      - {model: a, layer_range: [0]}\n",
            "slices.0.sources.0.layer_range",
        ),
    ],
)
def test_a_mergekit_problem_is_one_line_naming_its_field(text, needle):
    with pytest.raises(UserError) as err:
        load_recipe(text)
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert str(err.value).count(";") <= str(needle).count(";")  # one problem, said once


TYPES = [float, int, bool, str, float | None]
SETTINGS = [
    0.5,
    3,
    True,
    "x",
    "1e-3",
    [],
    [0.0, 1.0],
    [0, 1],
    [1, 2, 3],
    [0.1, 0.5, 0.9, 0.2],
    [True, False, True],
    ["a", "b", "c"],
    [1, "b"],
    [0.2, True],
    ["1e-3", "2e-3"],
    {"value": 0.3},
    {"value": 0.3, "filter": "self_attn"},
    {"value": [0.0, 1.0], "filter": "*"},
    [{"value": 0.1, "filter": "mlp"}, {"value": 0.9}],
    [{"value": [0, 1], "filter": "layers.1."}, {"value": 0.5, "filter": "attn"}],
    [{"value": 1, "filter": "nowhere"}],
    [{"value": 1, "filter": ""}],
]
NAMES = ["", "model.layers.1.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight"]
TS = [0.0, 0.25, 1 / 3, 0.5, 0.7, 1.0]


def _evaluated(evaluate, adapter_of, setting, type_, name, t):
    """One evaluation as (value, its type), or ("refused",) when the value fails its type."""
    validate = TypeAdapter(type_).validate_python
    try:
        value = evaluate(name, adapter_of(setting), t, validate=validate)
    except ValidationError:
        return ("refused",)
    return (value, type(value))


@pytest.mark.parametrize("setting", SETTINGS, ids=[repr(s) for s in SETTINGS])
def test_a_setting_evaluates_as_mergekits_evaluate_setting(setting):
    from mergekit.config import ParameterSetting, evaluate_setting

    theirs_adapter = TypeAdapter(ParameterSetting)
    ours_adapter = settings.SETTING.validate_python
    for type_ in TYPES:
        for name in NAMES:
            for t in TS:
                mine = _evaluated(settings.evaluate_setting, ours_adapter, setting, type_, name, t)
                theirs = _evaluated(
                    evaluate_setting, theirs_adapter.validate_python, setting, type_, name, t
                )
                assert mine == theirs, (setting, type_, name, t)


def test_a_gradient_interpolates_between_its_two_neighbours():
    validate = TypeAdapter(float).validate_python
    gradient = settings.SETTING.validate_python([0.0, 1.0, 0.0])
    assert settings.evaluate_setting("w", gradient, 0.25, validate=validate) == 0.5
    assert settings.evaluate_setting("w", gradient, 1.0, validate=validate) == 0.0
    picks = settings.SETTING.validate_python(["a", "b"])
    assert settings.evaluate_setting("w", picks, 0.99, validate=str) == "a"


def test_leaves_unpack_conditions_and_gradients():
    setting = settings.SETTING.validate_python([{"value": [1, 2], "filter": "a"}, {"value": 3}])
    assert settings.leaves(setting) == [1, 2, 3]
