"""The facts every repo page shows in its header: id, visibility, tags, the card's metadata."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from zoo.hub.server.access import can_read
from zoo.hub.server.cards import card_body
from zoo.hub.server.store import HubStore
from zoo.hub.server.web.markdown import render_markdown
from zoo.hub.server.web.render import repo_url

_META_KEYS = ("base_model", "library_name", "pipeline_tag", "license", "datasets", "language")
_ZOO_MAX = 1 << 20
_CACHE_SIZE = 256


class LruCache:
    """A small LRU of values computed from immutable blobs (keyed by their sha256)."""

    def __init__(self, size: int = _CACHE_SIZE):
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key, compute):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


_cards, _zoo = LruCache(), LruCache()


@dataclass
class RepoView:
    """One repo at one commit, as its pages' header shows it."""

    state: dict
    commit: dict
    rev: str
    card: dict
    tags: list[str]
    zoo: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.state["id"]

    @property
    def type(self) -> str:
        return self.state["type"]

    @property
    def url(self) -> str:
        return repo_url(self.type, self.id)

    @property
    def kind(self) -> str | None:
        return zoo_facts(self.zoo)[0] or zoo_facts(self.card.get("zoo"))[0]

    @property
    def experiment(self) -> str | None:
        return zoo_facts(self.zoo)[1] or zoo_facts(self.card.get("zoo"))[1]

    @property
    def zoo_base(self) -> str | None:
        base = self.zoo.get("base_model")
        return base if isinstance(base, str) else None

    @property
    def zoo_parents(self) -> int:
        parents = self.zoo.get("parents")
        return len(parents) if isinstance(parents, list) else 0

    @property
    def meta(self) -> list[tuple[str, list[str]]]:
        """(key, values) of the card metadata the Hub shows beside a card."""
        out = []
        for key in _META_KEYS:
            value = self.card.get(key)
            values = value if isinstance(value, list) else [value] if value else []
            if values:
                out.append((key, [str(v) for v in values]))
        return out


def repo_view(store: HubStore, state: dict, commit: dict, rev: str) -> RepoView:
    """The header facts of `state` at `commit` (card metadata and tags cached per commit)."""
    card, tags = store.card(state["type"], commit)
    return RepoView(state, commit, rev, card, tags, zoo_json(store, commit))


def zoo_json(store: HubStore, commit: dict) -> dict:
    """The commit's zoo.json as plain data ({} when absent or not JSON)."""
    entry = commit["tree"].get("zoo.json")
    if entry is None or entry["size"] > _ZOO_MAX:
        return {}

    def read() -> dict:
        try:
            data = json.loads(store.objects.path(entry["sha256"]).read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    return _zoo.get(entry["sha256"], read)


def zoo_facts(zoo: object) -> tuple[str | None, str | None]:
    """(kind, experiment) of a zoo metadata record, tolerating any shape."""
    zoo = zoo if isinstance(zoo, dict) else {}
    training = zoo.get("training") if isinstance(zoo.get("training"), dict) else {}
    labels = zoo.get("labels") if isinstance(zoo.get("labels"), dict) else {}
    kind, experiment = zoo.get("kind"), training.get("experiment") or labels.get("experiment")
    return (
        kind if isinstance(kind, str) else None,
        experiment if isinstance(experiment, str) else None,
    )


def visible_heads(store: HubStore, user, repo_type: str) -> Iterator[tuple[dict, dict, dict, list]]:
    """(state, main commit, cardData, tags) of every repo of `repo_type` that `user` may read
    and that has a main branch: what every site-wide page (lists, experiments) walks."""
    for state in store.repos.all(repo_type):
        commit = store.repos.get_commit(state["branches"].get("main", ""))
        if commit is None or not can_read(user, state):
            continue
        card, tags = store.card(repo_type, commit)
        yield state, commit, card, tags


def member_facts(store: HubStore, commit: dict, card: dict) -> tuple[str | None, str | None]:
    """(kind, experiment) of a commit: from its card's `zoo:` block (the copy every list reads
    without opening a file), else from its zoo.json. Every page asks this one function."""
    kind, experiment = zoo_facts(card.get("zoo"))
    if kind is None and experiment is None:
        kind, experiment = zoo_facts(zoo_json(store, commit))
    return kind, experiment


def card_html(store: HubStore, view: RepoView) -> str | None:
    """The rendered, sanitised README of the commit; None when there is no README."""
    entry = view.commit["tree"].get("README.md")
    if entry is None:
        return None

    def render() -> str:
        text = store.objects.path(entry["sha256"]).read_text("utf-8", errors="replace")
        return render_markdown(card_body(text), view.url, view.rev)

    return _cards.get((entry["sha256"], view.url, view.rev), render)
