"""Shared pieces of the property-based parser tests: settings, the one-line-error check, and
helpers that walk and mutate nested documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from zoo.errors import UserError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Raw YAML that no Python value dumps to: huge numbers, impossible dates, bad tags, deep nesting.
RAW_YAML = [
    "1" * 5000,
    "-" + "9" * 4400,
    "1e99999",
    ".nan",
    "-.inf",
    "0x" + "f" * 64,
    "0x_",
    "0b_",
    "2001-13-45",
    "2001-02-30 25:61:61",
    "0000-01-01",
    "!!binary 'not base64'",
    "!!int 'abc'",
    "!!int ''",
    "!!float 'x'",
    "!!bool maybe",
    "!!timestamp 'x'",
    "!!python/object:os.system 'ls'",
    "!!set {a, b}",
    "!!omap [a]",
    "*nowhere",
    "&anchor",
    "[" * 600,
    "- " * 600,
    "{a: " * 1500,
    "'unterminated",
    '"\\q"',
    "\t",
    "|\n\tx",
    "~",
    "null",
    "{}",
    "[]",
    "yes",
    "[[[], [[]]], {}]",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=4)
    | st.dates()
)

# PyYAML's allow_unicode dump puts NEL / LS / PS raw into a single-quoted key, and its loader folds
# them to a space: the document would no longer hold the key the test expects to see named.
_KEY_CHARS = st.characters(blacklist_characters="\x85\u2028\u2029", codec="utf-8")


def one_line_error(call: Callable[..., Any], *args: Any) -> str | None:
    """Run call(*args); None if it succeeds, else its UserError message, asserted to be one line.

    Any other exception propagates and fails the test.
    """
    try:
        call(*args)
    except UserError as err:
        message = str(err)
        assert message and len(message.splitlines()) == 1, repr(message)
        return message
    return None


def names(message: str, key: object) -> bool:
    """Whether `message` names `key`, as written or escaped."""
    text = str(key)
    return text in message or repr(text)[1:-1] in message


def paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Return the path of every value inside `node`, depth first."""
    if isinstance(node, dict):
        items = node.items()
    else:
        items = enumerate(node) if isinstance(node, list) else ()
    found = []
    for key, value in items:
        found += [prefix + (key,), *paths(value, prefix + (key,))]
    return found


def at(doc: object, path: tuple) -> object:
    for key in path:
        doc = doc[key]
    return doc


def field(path: tuple) -> str:
    """The last string key of a path (the field an error should name)."""
    return next((str(p) for p in reversed(path) if isinstance(p, str)), "")


def typo(key: str, draw) -> str:
    """Return `key` misspelt by one dropped, doubled or swapped letter (or an appended one)."""
    if len(key) < 2:
        return key + "x"
    i = draw(st.integers(0, len(key) - 2))
    swapped = key[:i] + key[i + 1] + key[i] + key[i + 2 :]
    edits = [key[:i] + key[i + 1 :], key[:i] + key[i] + key[i:], swapped]
    return next((k for k in draw(st.permutations(edits)) if k != key), key + "x")


def add_key(draw, doc: object, values) -> tuple[tuple, str]:
    """Add an unknown key, with a drawn value, to a drawn mapping of doc; return (its path, key)."""
    maps = [()] + [p for p in paths(doc) if isinstance(at(doc, p), dict)]
    path = draw(st.sampled_from(maps))
    key = "zz" + draw(st.text(_KEY_CHARS, max_size=6))
    at(doc, path)[key] = draw(values)
    return path, key
