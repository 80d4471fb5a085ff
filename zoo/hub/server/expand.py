"""The `expand=` query of repo info and listings: return only the named properties.

The Hub answers `expand=author&expand=sha` with `_id`, `id` and those properties, and refuses a
property it does not know with 400. The names are the client's ExpandModelProperty_T and
ExpandDatasetProperty_T; those zoo has no data for (downloads, likes...) answer the Hub's value
for a repo nobody used: 0, an empty list, or null.
"""

from __future__ import annotations

from zoo.hub.server.errors import bad_request
from zoo.hub.server.http import Call

_COMMON = {
    "author",
    "cardData",
    "createdAt",
    "disabled",
    "downloads",
    "downloadsAllTime",
    "gated",
    "lastModified",
    "likes",
    "private",
    "resourceGroup",
    "sha",
    "siblings",
    "tags",
    "trendingScore",
    "usedStorage",
    "xetEnabled",
}
PROPERTIES = {
    "model": _COMMON
    | {
        "baseModels",
        "childrenModelCount",
        "config",
        "evalResults",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "library_name",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "safetensors",
        "spaces",
        "transformersInfo",
        "widgetData",
    },
    "dataset": _COMMON | {"citation", "description", "paperswithcode_id"},
}
_UNUSED = {
    "downloads": 0,
    "downloadsAllTime": 0,
    "likes": 0,
    "trendingScore": 0,
    "childrenModelCount": 0,
    "spaces": [],
    "evalResults": [],
    "xetEnabled": False,
}


def requested(call: Call, repo_type: str) -> list[str] | None:
    """The properties `expand` (or `expand[]`) names, None when absent; 400 for an unknown one."""
    q = call.request.query_params
    names = [n for key in ("expand", "expand[]") for v in q.getlist(key) for n in v.split(",")]
    if not names:
        return None
    allowed = PROPERTIES[repo_type]
    for name in names:
        if name not in allowed:
            raise bad_request(
                f'"expand" must be one of {sorted(allowed)}; got {name[:100]!r}',
                code="InvalidExpand",
            )
    return list(dict.fromkeys(names))


def only(info: dict, names: list[str]) -> dict:
    """`info` cut down to `_id`, `id` and `names` (a fresh dict; names it lacks get defaults)."""
    out = {k: info[k] for k in ("_id", "id") if k in info}
    for name in names:
        if name in info:
            out[name] = info[name]
        elif name in _UNUSED:
            out[name] = _UNUSED[name]
    return out
