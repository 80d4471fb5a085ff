"""Property tests of the corpus-spec parser: any input either parses or raises a one-line UserError
naming the offending field; no other exception escapes."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.data.spec import load_corpus_spec, parse_corpus_spec
from zoo.errors import UserError

FULL = {
    "ratios": [0.4, 0.6, 1.0],
    "seed": 3,
    "datasets": [
        {
            "name": "Man.Pages_1", "type": "retrieval", "source": {"path": "in-domain/ManPages"},
            "columns": {"query": "summary", "neg": "hard"}, "instruction": "Find it", "cap": 20,
        },
        {"name": "sts", "type": "sts", "source": {"hub": "org/data@0123abc", "path": "a.jsonl"},
         "columns": {"score": "sim"}, "min_score": 0.5},
        {"name": "cls", "type": "classification", "source": {"path": "c.parquet"}, "negatives": 3},
        {"name": "pairs", "type": "pair", "source": {"hub": "org/pairs@main"}},
    ],
}
MINIMAL = {"datasets": [{"name": "c", "type": "clustering", "source": {"path": "c.jsonl"}}]}
VALID = [FULL, MINIMAL]
RAW_YAML = [
    "1" * 5000, "-" + "9" * 4400, "1e99999", ".nan", "-.inf", "0x" + "f" * 64, "0x_", "0b_",
    "2001-13-45", "2001-02-30 25:61:61", "0000-01-01", "!!binary 'not base64'", "!!int 'abc'",
    "!!int ''", "!!float 'x'", "!!bool maybe", "!!timestamp 'x'", "!!python/object:os.system 'ls'",
    "!!set {a, b}", "!!omap [a]", "*nowhere", "&anchor", "[" * 600, "- " * 600, "{a: " * 1500,
    "'unterminated", '"\\q"', "\t", "|\n\tx", "~", "null", "{}", "[]", "yes", "[[[], [[]]], {}]",
]
SCALARS = (
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats()
    | st.text(max_size=12) | st.binary(max_size=4) | st.dates()
)
# YAML keys may be numbers, null, booleans or dates as well as strings
KEYS = (
    st.text(max_size=8) | st.integers(-5, 5) | st.none() | st.booleans() | st.floats() | st.dates()
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _outcome(call, *args) -> str | None:
    """Run call(*args); return None if it parses, else the one-line UserError message.

    Any other exception propagates and fails the test.
    """
    try:
        call(*args)
    except UserError as err:
        message = str(err)
        assert message and len(message.splitlines()) == 1, repr(message)
        return message
    return None


def _from_file(content: str | bytes) -> str | None:
    """Write `content` to a corpus.yaml and return the outcome of loading it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return _outcome(load_corpus_spec, path)


def _names(message: str, key: object) -> bool:
    """Whether `message` names `key`, as written or escaped."""
    text = str(key)
    return text in message or repr(text)[1:-1] in message


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Return the path of every value inside `node`, depth first."""
    if isinstance(node, dict):
        items = node.items()
    else:
        items = enumerate(node) if isinstance(node, list) else ()
    paths = []
    for key, value in items:
        paths += [prefix + (key,), *_paths(value, prefix + (key,))]
    return paths


def _at(doc: object, path: tuple) -> object:
    for key in path:
        doc = doc[key]
    return doc


def _field(path: tuple) -> str:
    return next((str(p) for p in reversed(path) if isinstance(p, str)), "")


def _typo(key: str, draw) -> str:
    """Return `key` misspelt by one dropped, doubled or swapped letter (or an appended one)."""
    if len(key) < 2:
        return key + "x"
    i = draw(st.integers(0, len(key) - 2))
    swapped = key[:i] + key[i + 1] + key[i] + key[i + 2:]
    edits = [key[:i] + key[i + 1:], key[:i] + key[i] + key[i:], swapped]
    return next((k for k in draw(st.permutations(edits)) if k != key), key + "x")


@st.composite
def mutated(draw) -> tuple[dict, str | None, str, tuple[str, ...], bool]:
    """Return (doc, raw YAML token or None, operation, names the error must mention one of,
    whether it must fail). Every mapping of a spec is strict: an added or misspelt key fails."""
    doc = copy.deepcopy(draw(st.sampled_from(VALID)))
    op = draw(st.sampled_from(["drop", "add", "replace", "rename", "raw"]))
    if op == "add":
        maps = [()] + [p for p in _paths(doc) if isinstance(_at(doc, p), dict)]
        path = draw(st.sampled_from(maps))
        key = "zz" + draw(st.text(max_size=6))
        _at(doc, path)[key] = draw(VALUES)
        return doc, None, op, (key,), True
    path = draw(st.sampled_from(_paths(doc)))
    parent, key = _at(doc, path[:-1]), path[-1]
    if op == "drop":
        del parent[key]
        return doc, None, op, (_field(path), _field(path[:-1])), False
    if op == "rename" and isinstance(key, str):
        new = _typo(key, draw)
        parent[new] = parent.pop(key)
        return doc, None, op, (key, new), True
    raw = draw(st.sampled_from(RAW_YAML)) if op == "raw" else None
    parent[key] = "ZZRAWZZ" if raw else draw(VALUES)
    return doc, raw, op, (_field(path),), False


def _dump(doc: dict, raw: str | None = None) -> str:
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    return text.replace("ZZRAWZZ", raw) if raw else text


@settings(FUZZ, max_examples=300)
@given(case=mutated())
def test_a_mutated_valid_spec_parses_or_names_the_field(case):
    doc, raw, op, names, must_fail = case
    messages = [_from_file(_dump(doc, raw))] + ([] if raw else [_outcome(parse_corpus_spec, doc)])
    for message in messages:
        assert message is not None or not must_fail, f"{op} was accepted: {doc}"
        if message is not None and not raw:  # a raw token may break the YAML itself
            assert any(_names(message, n) for n in names if n), (names, message)


def test_every_valid_document_parses():
    for doc in VALID:
        assert _outcome(parse_corpus_spec, doc) is None and _from_file(_dump(doc)) is None


@FUZZ
@given(value=VALUES)
def test_any_value_parses_or_is_one_user_error(value):
    _outcome(parse_corpus_spec, value)
    _outcome(parse_corpus_spec, {"datasets": value, "ratios": value, "seed": value})
    _outcome(parse_corpus_spec, {"datasets": [value, {**MINIMAL["datasets"][0], "source": value}]})
    _outcome(parse_corpus_spec, {"datasets": [{**MINIMAL["datasets"][0], "columns": value}]})
    _from_file(yaml.safe_dump(value, allow_unicode=True))


@FUZZ
@given(text=st.text(max_size=80) | st.sampled_from(RAW_YAML))
def test_any_text_parses_or_is_one_user_error(text):
    _from_file(text)
    _from_file(f"datasets:\n  - name: {text}\n    type: sts\n    source: {{path: a}}\n")
    _from_file(f"ratios: [{text}]\n" + _dump(MINIMAL))


@FUZZ
@given(blob=st.binary(max_size=64) | st.sampled_from([b"\xff\xfe", b"seed: \xe9\n", b"\x00"]))
def test_any_file_parses_or_is_one_user_error(blob):
    _from_file(blob)
    _from_file(_dump(MINIMAL).encode() + blob)


def test_every_raw_token_parses_or_is_one_user_error():
    for token in RAW_YAML:
        _from_file(token + "\n")
        _from_file(f"seed: {token}\n" + _dump(MINIMAL))


def test_unreadable_paths_are_one_user_error(tmp_path):
    for path in [tmp_path / "missing.yaml", tmp_path, tmp_path / ("a" * 300)]:
        assert _names(_outcome(load_corpus_spec, path), path.name)
