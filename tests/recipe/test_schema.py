"""Recipe loading: community mergekit YAML unchanged; strict zoo checks with did-you-mean."""

import pytest

from zoo.errors import UserError
from zoo.recipe.plan import Candidate, merge_spec, select
from zoo.recipe.schema import Select, load_recipe

COMMUNITY = """\
models:
  - model: org/a
    parameters: {weight: 0.5, density: 0.5}
  - model: org/b
    parameters: {weight: 0.5, density: [1.0, 0.7, 0.1]}
merge_method: ties
base_model: org/base
parameters: {normalize: true, int8_mask: true}
dtype: bfloat16
"""


def test_community_mergekit_yaml_loads_unchanged():
    recipe = load_recipe(COMMUNITY)
    assert recipe.text == COMMUNITY and recipe.zoo.select is None
    spec = merge_spec(recipe)
    assert [m.ref for m in spec.models] == ["org/a", "org/b"] and spec.base == "org/base"
    assert spec.models[1].params["density"] == [1.0, 0.7, 0.1]
    assert spec.dtype == "bfloat16" and spec.params == {"normalize": True, "int8_mask": True}


BAD = [
    ("unknown top-level key", "bogus_key: 1\n" + COMMUNITY, "unknown key 'bogus_key'"),
    ("misspelt method", COMMUNITY.replace("ties", "tiess"), "did you mean 'ties'"),
    ("method typo lnear", COMMUNITY.replace("ties", "lnear"), "did you mean 'linear'"),
    (
        "misspelt global parameter",
        COMMUNITY.replace("normalize", "normalise"),
        "did you mean 'normalize'",
    ),
    ("misspelt model parameter", COMMUNITY.replace("density: 0.5", "densty: 0.5"), "densty"),
    (
        "missing weight",
        COMMUNITY.replace("weight: 0.5, density: 0.5", "density: 0.5"),
        "missing required parameter 'weight'",
    ),
    (
        "unknown key in a model entry",
        COMMUNITY.replace("    parameters: {weight: 0.5, density: 0.5}", "    weight: 0.5"),
        "unknown key in models[0]",
    ),
    ("bad parameter type", COMMUNITY.replace("density: 0.5", "density: lots"), "density"),
    ("no merge method", COMMUNITY.replace("merge_method: ties\n", ""), "merge_method is required"),
    ("no inputs", "merge_method: linear\n", "no inputs"),
    ("both models and select", COMMUNITY + "zoo:\n  select: {experiment: x}\n", "either models"),
    ("unknown zoo key", COMMUNITY + "zoo:\n  publsh: {repo_id: a/b}\n", "did you mean 'publish'"),
    (
        "unknown select key",
        "merge_method: linear\nzoo:\n  select: {kindd: bag}\n",
        "did you mean 'kind'",
    ),
    ("bad select limit", "merge_method: linear\nzoo:\n  select: {limit: 0}\n", "zoo.select.limit"),
    (
        "unknown select kind",
        "merge_method: linear\nzoo:\n  select: {kind: bagg}\n",
        "zoo.select.kind: unknown member kind 'bagg' (did you mean 'bag'?)",
    ),
    ("not yaml", "merge_method: [linear\n", "not valid YAML"),
    ("not a mapping", "- a\n- b\n", "YAML mapping"),
    (
        "slice base not among its sources",
        "merge_method: slerp\nslices:\n  - sources:\n      - {model: a/b, layer_range: [0, 2]}\n"
        "      - {model: c/d, layer_range: [0, 2]}\nparameters: {t: 0.5}\nbase_model: e/f\n",
        "slices[0]: the base model e/f is not one of the slice's sources",
    ),
    (
        "slice ranges of different lengths",
        "merge_method: linear\nslices:\n  - sources:\n      - {model: a/b, layer_range: [0, 2]}\n"
        "      - {model: c/d, layer_range: [0, 3]}\n",
        "slices[0]: every source of a slice gives the same number of layers",
    ),
    (
        "two sources in a passthrough slice",
        "merge_method: passthrough\nslices:\n  - sources:\n"
        "      - {model: a/b, layer_range: [0, 2]}\n      - {model: c/d, layer_range: [0, 2]}\n",
        "slices[0]: merge method 'passthrough' takes",
    ),
    (
        "a misspelt slice source key",
        "merge_method: passthrough\nslices:\n  - sources:\n"
        "      - {model: a/b, layer_rang: [0, 2]}\n",
        "did you mean 'layer_range'",
    ),
    (
        "two modules",
        "merge_method: linear\nmodules:\n  text: {models: [{model: a/b}]}\n"
        "  vision: {models: [{model: a/b}]}\n",
        "modules: zoo merges models with one module",
    ),
    (
        "embed_slerp, removed from mergekit",
        "merge_method: slerp\nbase_model: a/b\nmodels:\n  - model: a/b\n  - model: c/d\n"
        "parameters: {t: 0.5, embed_slerp: true}\n",
        "parameters.embed_slerp: removed from mergekit before 0.1.5",
    ),
    (
        "a slice without sources",
        "merge_method: passthrough\nslices:\n  - sources: []\n",
        "slices[0].sources: give at least one source",
    ),
    (
        "a misspelt key in a module's models",
        "merge_method: linear\nmodules:\n  text:\n    models:\n"
        "      - {model: a/b, parameter: {weight: 1}}\n",
        "key in modules.text.models[0]: 'parameter' (did you mean 'parameters'?)",
    ),
    (
        "search with slices",
        "merge_method: linear\nslices:\n  - sources:\n"
        "      - {model: a/b, layer_range: [0, 2], parameters: {weight: 1}}\n"
        "zoo:\n  search: {task_dirs: [t], greedy: true}\n",
        "zoo.search searches the per-model weights of models:, not slices:",
    ),
    (
        "select with slices",
        "merge_method: passthrough\nslices:\n  - sources:\n"
        "      - {model: a/b, layer_range: [0, 2]}\nzoo:\n  select: {kind: bag}\n",
        "zoo.select expands into models:",
    ),
    (
        "tokenizer block with an outside model",
        COMMUNITY + "tokenizer: {source: x/outside}\n",
        "tokenizer.source: 'x/outside' is not a model of this merge",
    ),
    ("missing file", "/nonexistent/recipe.yaml", "recipe not found"),
]


@pytest.mark.parametrize("case, text, needle", BAD, ids=[b[0] for b in BAD])
def test_bad_recipes_name_the_problem(case, text, needle):
    with pytest.raises(UserError, match=None) as err:
        merge_spec(load_recipe(text))
    assert needle in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_all_problems_are_reported_together():
    text = (
        "bogus: 1\nmerge_method: lnear\nmodels:\n  - model: a/b\n    weigth: 1\n"
        "zoo:\n  publsh: {}\n"
    )
    with pytest.raises(UserError) as err:
        load_recipe(text)
    message = str(err.value)
    for needle in ("'bogus'", "'lnear'", "'weigth'", "'publsh'"):
        assert needle in message


def test_select_orders_limits_and_refuses_empty():
    cands = [
        Candidate(f"o/b{i}@{'0' * 40}", f"o/b{i}", {"training.ratio": r})
        for i, r in enumerate([0.8, 0.4, 0.6])
    ]
    sel = Select(order_by="training.ratio", limit=2)
    assert select(sel, cands) == [cands[1].ref, cands[2].ref]
    assert select(Select(order_by="training.ratio", descending=True), cands)[0] == cands[0].ref
    with pytest.raises(UserError, match="matched no member"):
        select(Select(experiment="x"), [])


RECIPES = sorted(
    (__import__("pathlib").Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml")
)


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    if recipe.zoo.select is None:
        spec = merge_spec(recipe)
        assert spec.models and spec.method == recipe.method
    else:
        spec = merge_spec(recipe, [f"org/bag-{i}@{'0' * 40}" for i in range(3)])
        assert len(spec.models) == 3
