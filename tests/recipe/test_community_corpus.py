"""The community recipe corpus (recipes/community/): every file loads, plans with --dry-run,
and merges on tiny random models of its architecture to what mergekit gives (within 1e-6 in
float32; DARE/DELLA by kept density and mean change), loading with AutoModelForCausalLM /
SentenceTransformer. Invalid recipes (`expect=refuse:FIELD`) are refused in one line naming the
field. Where mergekit itself fails, zoo's output must load (and, for a passthrough, equal the
layer map). tests/recipe/corpus.py does the building, substituting and comparing."""

from __future__ import annotations

import pytest

from tests.recipe import corpus
from zoo.errors import UserError
from zoo.recipe.multi import load_multi

IDS = [p.name for p in corpus.RECIPES]
EXAMPLES = {
    "arcee_fusion",
    "bio-merge",
    "gradient-slerp",
    "linear",
    "orcamini-platy-44layer",
    "ties",
}
FEATURES = {  # what the corpus must exercise (issue 16's "Must show")
    "slices",
    "modules",
    "multi-doc",
    "model+lora",
    "gradient",
    "filter",
    "tokenizer_source: union",
    "tokenizer block",
    "chat_template",
    "passthrough",
    "slerp",
    "task_arithmetic",
    "ties",
    "dare_ties",
    "della",
    "della_linear",
    "breadcrumbs_ties",
    "karcher",
    "model_stock",
    "nearswap",
    "ram",
    "ramplus_tl",
    "arcee_fusion",
}


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    """Where the tiny stand-ins are built, once per session (corpus caches them per root)."""
    return tmp_path_factory.mktemp("corpus-models")


def test_corpus_holds_mergekits_examples_and_every_feature():
    names = {p.stem.removeprefix("mergekit-") for p in corpus.RECIPES if p.suffix == ".yml"}
    assert names == EXAMPLES
    used = {f for p in corpus.RECIPES for f in corpus.features(corpus.documents(p))}
    assert FEATURES <= used, sorted(FEATURES - used)
    archs = {corpus.front(p).arch for p in corpus.RECIPES}
    assert {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"} <= archs
    assert {"bert", "roberta", "xlm-roberta"} <= archs
    assert len(corpus.RECIPES) - len(EXAMPLES) >= 15


@pytest.mark.parametrize("path", corpus.RECIPES, ids=IDS)
def test_corpus_recipe_loads(path):
    expect = corpus.front(path).expect
    if expect is None:
        recipe = load_multi(path).final  # one merge, or a multi-merge's final one
        assert recipe.merge["merge_method"] == corpus.documents(path)[-1]["merge_method"]
        return
    try:  # an invalid recipe: refused at load or at planning, naming its field
        load_multi(path)
    except UserError as exc:
        assert expect.removeprefix("refuse:") in str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("path", corpus.RECIPES, ids=IDS)
def test_corpus_recipe_dry_run_prints_the_plan(path, models_root, tmp_path):
    case = corpus.substitute(path, models_root, tmp_path)
    rc, out, err = corpus.run_zoo(case.recipe, None, dry_run=True)
    if case.front.expect:
        assert rc == 2 and case.front.expect.removeprefix("refuse:") in err, err
        assert len(err.splitlines()) == 1
        return
    errors = [line for line in err.splitlines() if not line.startswith("zoo: warning: ")]
    assert (rc, errors) == (0, []), err  # warnings: accepted as mergekit accepts it (one line)
    assert case.docs[-1]["merge_method"] in out
    assert not any(tmp_path.glob("**/*.safetensors")), "a dry run wrote weights"


@pytest.mark.parametrize("path", corpus.RECIPES, ids=IDS)
def test_corpus_recipe_merges_like_mergekit(path, models_root, tmp_path):
    row = corpus.run_case(path, models_root, tmp_path)
    passed = row["result"] in corpus.PASSING or row["result"] == "mergekit-failed"
    assert passed, f"{row['result']}: {row['detail']}"
