"""The Hub's checks of a card's metadata, beyond "the YAML parses": field types and model-index.

`/api/validate-yaml` refuses (400) metadata whose known fields have the wrong shape, naming each,
and warns (200) when a card has no metadata at all. Unknown fields are the card author's own and
pass. Pure.
"""

from __future__ import annotations

EMPTY_WARNING = "empty or missing yaml metadata in repo card"
_STRING = ("library_name", "pipeline_tag", "license_name", "license_link", "model_name")
_STRINGS = ("license", "tags", "datasets", "language", "metrics", "base_model", "task_categories")


def _is_strings(value: object) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _model_index_problems(value: object) -> list[str]:
    if not isinstance(value, list):
        return ['"model-index" must be an array of {name, results} objects']
    problems = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f'"model-index[{i}].name" is required and must be a string')
        elif not isinstance(item.get("results"), list):
            problems.append(f'"model-index[{i}].results" is required and must be an array')
    return problems


def problems(card: dict) -> list[str]:
    """What is wrong with the known fields of parsed metadata `card` ([] when nothing is)."""
    found = []
    for key in _STRING:
        if key in card and not isinstance(card[key], str):
            found.append(f'"{key}" must be a string')
    for key in _STRINGS:
        if key in card and not _is_strings(card[key]):
            found.append(f'"{key}" must be a string or an array of strings')
    if "model-index" in card:
        found += _model_index_problems(card["model-index"])
    return found
