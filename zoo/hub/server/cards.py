"""README.md YAML front matter -> cardData and the tags that list filters match, as the Hub does.

Pure functions: text in, plain data out.
"""

from __future__ import annotations

import math
import re

import yaml

# Leading blank lines before the first `---` are allowed, as by the client's REGEX_YAML_BLOCK.
_FRONT = re.compile(r"\A\ufeff?\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_EMPTY_FRONT = re.compile(r"\A\ufeff?\s*---[ \t]*\r?\n---[ \t]*(?:\r?\n|\Z)")
_MAX_CARD_NODES = 100_000


class CardError(ValueError):
    """The front matter is not valid YAML or not a mapping."""


def parse_front_matter(text: str) -> dict:
    """Return the README's YAML front matter as a dict ({} if there is none); CardError if bad."""
    if _EMPTY_FRONT.match(text):
        return {}
    match = _FRONT.match(text)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise CardError(f"invalid YAML in README.md front matter: {exc}") from None
    except RecursionError:
        raise CardError("README.md front matter is nested too deeply") from None
    except Exception as exc:
        # SafeLoader's constructors fail untidily on tagged garbage: `!!int x` is a ValueError,
        # `!!bool x` a KeyError, `!!timestamp x` an AttributeError. All mean "invalid YAML".
        raise CardError(f"invalid YAML in README.md front matter: {exc!r}"[:500]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardError("README.md front matter must be a YAML mapping (key: value lines)")
    return data


def card_body(text: str) -> str:
    """The README's markdown without its YAML front matter (what a card page renders)."""
    match = _EMPTY_FRONT.match(text) or _FRONT.match(text)
    return text[match.end() :] if match else text


def plain_card(card: dict) -> dict:
    """Return `card` as JSON data: keys become strings, dates, bytes and inf/nan their str().

    YAML yields what a JSON response cannot carry (date keys, `.inf`, lone surrogates from
    escapes) and aliases that repeat one subtree many times: CardError past _MAX_CARD_NODES
    expanded values. Pure; does not mutate `card`.
    """
    budget = [_MAX_CARD_NODES]

    def plain(value: object) -> object:
        budget[0] -= 1
        if budget[0] < 0:
            raise CardError(f"README.md front matter expands to over {_MAX_CARD_NODES} values")
        if isinstance(value, dict):
            return {_plain_key(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, str):
            return _utf8(value)
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        return str(value)

    return plain(card)  # type: ignore[return-value]


def _utf8(text: str) -> str:
    # A YAML escape can make a lone surrogate ("\\ud800"), which no UTF-8 response can carry.
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _plain_key(key: object) -> str:
    if isinstance(key, str):
        return _utf8(key)
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key]
    return str(key)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    if isinstance(value, dict):
        return []
    return [str(value)]


def card_tags(card: dict, repo_type: str, files: list[str]) -> list[str]:
    """Return the repo's tags: card `tags`, library, pipeline, prefixed license/dataset/base_model…

    Deterministic order (first occurrence), no duplicates. Models also get `safetensors` when a
    .safetensors file is present, like on the Hub.
    """
    tags: list[str] = []
    tags += _as_list(card.get("tags"))
    tags += _as_list(card.get("library_name"))
    tags += _as_list(card.get("pipeline_tag"))
    if repo_type == "model" and any(f.endswith(".safetensors") for f in files):
        tags.append("safetensors")
    for key, prefix in (
        ("license", "license:"),
        ("datasets", "dataset:"),
        ("base_model", "base_model:"),
        ("task_categories", "task_categories:"),
        ("size_categories", "size_categories:"),
    ):
        tags += [prefix + v for v in _as_list(card.get(key))]
    languages = _as_list(card.get("language"))
    tags += languages if repo_type == "model" else ["language:" + v for v in languages]
    return list(dict.fromkeys(tags))
