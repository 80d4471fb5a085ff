"""The facts every repo page shows in its header: id, visibility, tags, the card's metadata."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

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


def card_html(store: HubStore, view: RepoView) -> str | None:
    """The rendered, sanitised README of the commit; None when there is no README."""
    entry = view.commit["tree"].get("README.md")
    if entry is None:
        return None

    def render() -> str:
        text = store.objects.path(entry["sha256"]).read_text("utf-8", errors="replace")
        return render_markdown(card_body(text), view.url, view.rev)

    return _cards.get((entry["sha256"], view.url, view.rev), render)
