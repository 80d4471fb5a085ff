"""The Hub's checks of a card's metadata, beyond "the YAML parses": field types and model-index.

`/api/validate-yaml` refuses (400) metadata whose known fields have the wrong shape, naming each,
and warns (200) when a card has no metadata at all. Unknown fields are the card author's own and
pass. Pure.
"""

from __future__ import annotations

EMPTY_WARNING = "empty or missing yaml metadata in repo card"
# The Hub's license identifiers: hub-docs docs/hub/repositories-licenses.md (the "licenses" region),
# plus the Llama 3 family the Hub lists since.
LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear
    c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0
    cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0
    cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl
    ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1
    lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa
    unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 llama3 llama3.1 llama3.2 llama3.3 gemma
    unknown other""".split()
)
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
    licenses = card.get("license")
    licenses = [licenses] if isinstance(licenses, str) else licenses
    if isinstance(licenses, list) and any(v not in LICENSES for v in licenses):
        found.append(f'"license" must be one of [{", ".join(sorted(LICENSES))}]')
    return found


def as_text(found: list[str]) -> str:
    """The plain-text answer (`Accept: text/plain`, as RepoCard.validate asks): one line each."""
    return "\n".join(f"- Error: {message}" for message in found)
