"""Property tests of load_recipe: any input either loads or raises a one-line UserError naming the
offending key; no other exception escapes."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import (
    FUZZ,
    RAW_YAML,
    SCALARS,
    add_key,
    at,
    field,
    names,
    one_line_error,
    paths,
    typo,
)
from zoo.recipe.schema import load_recipe

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "recipes").glob("*.yaml"))]
FULL = {
    "models": [
        {"model": "org/a", "parameters": {"weight": 0.5, "density": [1.0, 0.5]}},
        {"model": "org/b", "parameters": {"weight": 0.5, "density": 0.5}},
    ],
    "merge_method": "ties",
    "base_model": "org/base",
    "parameters": {"normalize": True, "int8_mask": True},
    "dtype": "bfloat16",
    "tokenizer_source": "base",
    "zoo": {
        "publish": {"repo_id": "demo/merged", "private": True, "tag": "v2"},
        "eval": {"tasks": ["STS12"], "task_dirs": ["dev/sts"]},
        "search": {
            "task_dirs": ["dev/sts"],
            "parameter": "weight",
            "grid": [[0.5, 0.5], [0.3, 0.7]],
        },
        "card": {"template": "merged"},
        "seed": 3,
    },
}
SELECT = {
    "merge_method": "multislerp",
    "base_model": "org/base",
    "zoo": {
        "select": {
            "kind": "bag",
            "experiment": "exp",
            "tags": ["boom"],
            "base_model": "org/base",
            "meta": {"training.seed": "0"},
            "order_by": "training.ratio",
            "descending": True,
            "limit": 3,
            "parameters": {"weight": 1.0},
        },
        "search": {"task_dirs": ["dev/sts"], "greedy": True},
    },
}
VALID = [*SHIPPED, FULL, SELECT]
# Mappings whose keys are the user's own (merge parameters, metadata queries): any key loads here.
FREE = ("parameters", "meta")
KEYS = st.text(max_size=8) | st.integers(-5, 5) | st.none() | st.booleans()
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)


def _outcome(source: str | Path) -> str | None:
    """Load `source`: None if it loads, else its one-line UserError message."""
    return one_line_error(load_recipe, source)


@st.composite
def mutated(draw) -> tuple[str, str, tuple[str, ...], bool]:
    """Return (YAML text, operation, names the error must mention one of, whether it must fail).

    An added or misspelt key must fail unless it sits in a mapping of the user's own keys.
    """
    doc = copy.deepcopy(draw(st.sampled_from(VALID)))
    op = draw(st.sampled_from(["drop", "add", "replace", "rename", "raw"]))
    if op == "add":
        path, key = add_key(draw, doc, VALUES)
        return _dump(doc), op, (key,), not set(path) & set(FREE)
    path = draw(st.sampled_from(paths(doc)))
    parent, key = at(doc, path[:-1]), path[-1]
    if op == "drop":
        del parent[key]
        return _dump(doc), op, (field(path), field(path[:-1])), False
    if op == "rename" and isinstance(key, str):
        new = typo(key, draw)
        parent[new] = parent.pop(key)
        return _dump(doc), op, (key, new), not set(path[:-1]) & set(FREE)
    parent[key] = "ZZRAWZZ" if op == "raw" else draw(VALUES)
    text = _dump(doc).replace("ZZRAWZZ", draw(st.sampled_from(RAW_YAML)))
    return text, op, (field(path),), False


def _dump(doc: dict) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@settings(FUZZ, max_examples=300)
@given(case=mutated())
def test_a_mutated_valid_recipe_loads_or_names_the_key(case):
    text, op, expected, must_fail = case
    message = _outcome(text)
    assert message is not None or not must_fail, f"{op} was accepted:\n{text}"
    if message is not None and op != "raw":  # a raw token may break the YAML itself
        assert any(names(message, n) for n in expected if n), (expected, message)


def test_every_valid_document_loads():
    for doc in VALID:
        assert _outcome(_dump(doc)) is None


@FUZZ
@given(value=VALUES)
def test_any_yaml_value_loads_or_is_one_user_error(value):
    _outcome(yaml.safe_dump(value, allow_unicode=True))
    _outcome(yaml.safe_dump({"merge_method": "linear", "models": value}))
    _outcome(yaml.safe_dump({"merge_method": "linear", "models": [value], "zoo": value}))


@FUZZ
@given(text=st.text(max_size=80) | st.sampled_from(RAW_YAML))
def test_any_text_loads_or_is_one_user_error(text):
    _outcome(text + "\n")
    _outcome(f"merge_method: {text}\nmodels: [{{model: a/b}}]\n")
    _outcome(f"merge_method: linear\nmodels:\n  - model: a/b\n    parameters: {text}\n")
    _outcome("".join(text.splitlines()) or "x")  # no line break: read as a path


@FUZZ
@given(blob=st.binary(max_size=64) | st.sampled_from([b"\xff\xfe", b"merge_method: \xe9\n"]))
def test_any_file_loads_or_is_one_user_error(blob):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(blob)
        _outcome(path)
        _outcome(str(path))
        _outcome(Path(tmp))


def test_every_raw_token_loads_or_is_one_user_error():
    for token in RAW_YAML:
        _outcome(token + "\n")
        _outcome(f"merge_method: {token}\nmodels: [{{model: a/b}}]\n")


def test_odd_paths_are_one_user_error():
    for path in ["a" * 300, "x/" * 3000, "nul\x00byte", "", ".", "recipes"]:
        message = _outcome(path)
        assert "recipe not found" in message or message.startswith(str(Path(path))), message
