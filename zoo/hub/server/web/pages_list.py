"""The home page and the model/dataset lists: search, filters (tag, zoo kind, experiment), sort,
paging; private repos only for visitors who may read them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse

from zoo.hub.server.http import Call
from zoo.hub.server.store import HubStore
from zoo.hub.server.web.render import page, page_number
from zoo.hub.server.web.repo_view import member_facts, visible_heads

PER_PAGE = 30
_SORTS = {
    "modified": (lambda r: r.modified, True),
    "created": (lambda r: r.created, True),
    "alphabetical": (lambda r: r.id.lower(), False),
}


@dataclass(frozen=True)
class Row:
    """One repo in a list."""

    id: str
    type: str
    private: bool
    modified: str
    created: str
    tags: tuple[str, ...]
    kind: str | None
    experiment: str | None


def visible_rows(store: HubStore, user, repo_type: str) -> list[Row]:
    """Every repo of `repo_type` with a main branch that `user` may see."""
    rows = []
    for state, commit, card, tags in visible_heads(store, user, repo_type):
        kind, experiment = member_facts(store, commit, card)
        rows.append(
            Row(state["id"], repo_type, state["private"], commit["date"], state["createdAt"],
                tuple(tags), kind, experiment)
        )  # fmt: skip
    return rows


# huggingface.co's list filters, each a tag of the repo: ?library=sentence-transformers,
# ?pipeline_tag=..., ?language=en, ?license=license:mit (or mit), ?other=<any tag>.
_TAG_PARAMS = ("other", "library", "pipeline_tag", "language", "license")


def _tags(q) -> tuple[str, ...]:
    tags = []
    for name in _TAG_PARAMS:
        for value in q.getlist(name):
            if value and name == "license" and not value.startswith("license:"):
                value = f"license:{value}"
            if value:
                tags.append(value)
    return tuple(tags)[:10]


@dataclass(frozen=True)
class Query:
    search: str
    tags: tuple[str, ...]
    kind: str
    experiment: str
    author: str
    sort: str
    page_no: int

    @classmethod
    def of(cls, call: Call) -> Query:
        q = call.request.query_params
        return cls(
            q.get("search", "").strip()[:200],
            _tags(q),
            q.get("kind", ""),
            q.get("experiment", ""),
            q.get("author", ""),
            q.get("sort", "modified") if q.get("sort") in _SORTS else "modified",
            page_number(call),
        )

    def keep(self, row: Row) -> bool:
        return (
            self.search.lower() in row.id.lower()
            and all(t in row.tags for t in self.tags)
            and (not self.kind or row.kind == self.kind)
            and (not self.experiment or row.experiment == self.experiment)
            and (not self.author or row.id.split("/")[0].lower() == self.author.lower())
        )

    def link(self, **change) -> str:
        """This query's URL parameters with `change` applied (for facet and paging links)."""
        data = {
            "search": self.search,
            "kind": self.kind,
            "experiment": self.experiment,
            "author": self.author,
            "sort": self.sort,
            "p": self.page_no,
            "other": list(self.tags),
            **change,
        }
        kept = {k: v for k, v in data.items() if v not in ("", 0, [])}
        return "?" + urlencode(kept, doseq=True)


def _facets(rows: list[Row]) -> dict[str, list[tuple[str, int]]]:
    return {
        "tags": Counter(t for r in rows for t in r.tags).most_common(20),
        "kinds": sorted(Counter(r.kind for r in rows if r.kind).items()),
        "experiments": sorted(Counter(r.experiment for r in rows if r.experiment).items()),
    }


def listing(call: Call, repo_type: str) -> dict:
    """The template context of a list page."""
    query = Query.of(call)
    rows = visible_rows(call.store, call.user, repo_type)
    found = [r for r in rows if query.keep(r)]
    key, reverse = _SORTS[query.sort]
    found.sort(key=key, reverse=reverse)
    start = query.page_no * PER_PAGE
    return {
        "repo_type": repo_type,
        "query": query,
        "rows": found[start : start + PER_PAGE],
        "total": len(found),
        "more": start + PER_PAGE < len(found),
        "facets": _facets(rows),
        "sorts": list(_SORTS),
    }


async def models_page(call: Call):
    """GET / and /models: the model list."""
    return page(call, "list.html", **await run_in_threadpool(listing, call, "model"))


async def datasets_page(call: Call):
    """GET /datasets: the dataset list."""
    return page(call, "list.html", **await run_in_threadpool(listing, call, "dataset"))


async def namespace_page(call: Call):
    """GET /{namespace}: its models (huggingface.co shows the profile of the user or org)."""
    return RedirectResponse(f"/models?{urlencode({'author': call.groups[0]})}", status_code=302)
