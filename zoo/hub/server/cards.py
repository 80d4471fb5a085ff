"""README.md YAML front matter -> cardData and the tags that list filters match, as the Hub does.

Pure functions: text in, plain data out.
"""

from __future__ import annotations

import re

import yaml

_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_EMPTY_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n---[ \t]*(?:\r?\n|\Z)")


class CardError(ValueError):
    """The front matter is not valid YAML or not a mapping."""


def parse_front_matter(text: str) -> dict:
    """Return the README's YAML front matter as a dict ({} if there is none); CardError if broken."""
    if _EMPTY_FRONT.match(text):
        return {}
    match = _FRONT.match(text)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise CardError(f"invalid YAML in README.md front matter: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardError("README.md front matter must be a YAML mapping (key: value lines)")
    return data


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
