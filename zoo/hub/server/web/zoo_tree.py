"""The model tree: a model's whole lineage across repos (base -> bags -> merged -> updates).

A node is one repo at one commit ('repo@sha'), read from that commit's zoo.json: its parents are
`parents` and `base_model` (pinned refs). The walk goes up from the page's model (its ancestors, at
their pinned commits), down (its descendants: revisions whose zoo.json names it) and up again from
every descendant (an update's merged next revision has two parents). Revisions of one repo pinned
to different commits are separate nodes. What the visitor may not read (a private repo, a repo not
on this Hub, a commit the repo does not hold) is not drawn and not walked through.

Descendants come from an index of every readable model repo's lineage revisions: its main head,
its tags and, along main's first-parent history (capped), the commit that introduced each zoo.json
(an update's earlier merged revision, which later commits replaced). Each repo's share of the
index is cached per (repo, main head, tags), so a page reads only the repos' state files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import islice

from zoo.hub.server.access import can_read
from zoo.hub.server.auth import User
from zoo.hub.server.store import HubStore
from zoo.hub.server.web.render import repo_url
from zoo.hub.server.web.repo_view import LruCache, zoo_facts, zoo_json
from zoo.types import LINEAGE_SHAPES, PINNED_RE

MAX_DEPTH = 8  # levels walked in each direction
MAX_NODES = 60  # a page stays fast and readable; the page says when the tree was cut
HISTORY = 24  # first-parent commits of main read for earlier lineage revisions
# Characters a mermaid label may hold as they are; everything else becomes an entity code
# ('#<decimal>;', which mermaid decodes into the label's text, never into markup).
_SAFE = re.compile(r"[A-Za-z0-9 ._/@:+=,-]")

_revs = LruCache(4096)

Key = tuple[str, str]  # (repo id as stored, commit sha)


@dataclass(frozen=True)
class Rev:
    """One lineage revision of a repo: its commit and the pinned refs its zoo.json names."""

    sha: str
    kind: str | None
    refs: tuple[tuple[str, str], ...]  # (relation 'parent' | 'base', 'repo@sha')


@dataclass
class Node:
    """A drawn node: a repo at a commit."""

    id: str  # n0, n1, ... (never derived from the repo's name)
    repo: str
    sha: str
    kind: str | None
    tags: tuple[str, ...]  # tag names pointing at sha
    main: bool  # sha is the repo's main head
    private: bool
    current: bool = False  # the page's own model
    refs: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        """The node's page pinned to its revision: /{repo} for the current main."""
        base = repo_url("model", self.repo)
        return base if self.main else f"{base}/tree/{self.sha}"

    @property
    def refs_names(self) -> tuple[str, ...]:
        return (*self.tags, *(("main",) if self.main else ()))

    @property
    def label(self) -> str:
        """The mermaid label: name, short sha and refs, kind; escaped, with <br/> breaks."""
        revision = " · ".join([self.sha[:7], *self.refs_names[:3]])
        parts = [self.repo, revision, self.kind or "model"]
        return "<br/>".join(mermaid_text(p) for p in parts)


@dataclass(frozen=True)
class Edge:
    child: str  # node ids
    parent: str
    relation: str  # 'base' | 'parent'


@dataclass
class ModelTree:
    """The nodes (root first) and edges child -> parent of a model's lineage."""

    nodes: list[Node]
    edges: list[Edge]
    truncated: bool = False
    by_id: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self):
        self.by_id = {n.id: n for n in self.nodes}

    def links(self) -> dict[str, str]:
        """mermaid node id -> the node's page (for zoo.js's linkGraphNodes)."""
        return {n.id: n.url for n in self.nodes}

    def parents_of(self, node: Node) -> list[tuple[str, Node]]:
        return [(e.relation, self.by_id[e.parent]) for e in self.edges if e.child == node.id]

    def mermaid(self) -> str:
        """A `graph BT` diagram, every edge child -> parent, as the cards draw lineage."""
        lines = ["graph BT"]
        for n in self.nodes:
            left, right = LINEAGE_SHAPES.get(n.kind, LINEAGE_SHAPES[None])
            lines.append(f"  {n.id}{left}{n.label}{right}")
        for e in self.edges:
            lines.append(f"  {e.child} -->|{edge_label(e, self.by_id[e.child])}| {e.parent}")
        lines.append("  classDef current stroke-width:3px,stroke:#d97706")
        lines.extend(f"  class {n.id} current" for n in self.nodes if n.current)
        return "\n".join(lines)


def edge_label(edge: Edge, child: Node) -> str:
    if edge.relation == "base":
        return "base"
    return {"merged": "merged from", "update": "updates"}.get(child.kind or "", "from")


def mermaid_text(text: str) -> str:
    """`text` safe inside a quoted mermaid label: every character outside a small set is written
    as mermaid's entity code, so quotes, brackets, backticks and markup stay text."""
    return "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in text)


def refs_of(zoo: dict) -> tuple[tuple[str, str], ...]:
    """(relation, ref) of a zoo.json: its parents, then its base (when not also a parent)."""
    parents = zoo.get("parents") if isinstance(zoo.get("parents"), list) else []
    out = [("parent", p) for p in parents if isinstance(p, str) and PINNED_RE.match(p)]
    base = zoo.get("base_model")
    if isinstance(base, str) and PINNED_RE.match(base) and base not in parents:
        out.append(("base", base))
    return tuple(dict.fromkeys(out))


def lineage_revisions(store: HubStore, state: dict) -> tuple[Rev, ...]:
    """A repo's lineage revisions: one commit per zoo.json on main's first-parent history (main
    for the current one, else a tagged commit holding it, else the commit introducing it), then
    the tags off that history. Cached per (repo, main, tags)."""
    main = state["branches"].get("main")
    tags = tuple(sorted(state.get("tags", {}).items()))
    if main is None:
        return ()

    def compute() -> tuple[Rev, ...]:
        targets = {sha for _name, sha in tags}
        chosen: dict[str, dict] = {}
        seen: set[str] = set()
        runs: list[list[tuple[dict, dict]]] = []  # commits sharing one zoo.json, newest first
        last = None
        for commit in islice(store.repos.history(state, main), HISTORY):
            seen.add(commit["id"])
            entry = commit["tree"].get("zoo.json")
            blob = entry["sha256"] if entry else None
            if blob is not None:
                if blob != last:
                    runs.append([])
                runs[-1].append((commit, zoo_json(store, commit)))
            last = blob
        for run in runs:
            # main for the current zoo.json, else a tagged commit, else the one introducing it
            tagged = [item for item in run if item[0]["id"] in targets]
            commit, zoo = run[0] if run[0][0]["id"] == main else (tagged or [run[-1]])[0]
            chosen[commit["id"]] = zoo
        for sha in sorted(targets - seen):
            commit = store.repos.get_commit(sha)
            if commit is not None and commit["repo"] == state["uid"]:
                zoo = zoo_json(store, commit)
                if zoo:
                    chosen[sha] = zoo
        return tuple(Rev(sha, zoo_facts(z)[0], refs_of(z)) for sha, z in chosen.items())

    return _revs.get((state["uid"], main, tags), compute)


class _Walk:
    """One page's walk: states read once, visibility checked once per repo."""

    def __init__(self, store: HubStore, user: User | None):
        self.store, self.user = store, user
        self.states: dict[str, dict | None] = {}
        self.nodes: dict[Key, Node] = {}
        self.order: list[Key] = []
        self.truncated = False
        self._children: dict[Key, list[Key]] | None = None

    def state(self, repo: str) -> dict | None:
        """The repo's state if the visitor may read it (cached by lower-cased id)."""
        lower = repo.lower()
        if lower not in self.states:
            state = self.store.repos.load("model", repo)
            self.states[lower] = state if state and can_read(self.user, state) else None
        return self.states[lower]

    def key_of(self, ref: str) -> Key | None:
        """The node key of a pinned ref, or None when it is not visible here."""
        m = PINNED_RE.match(ref)
        state = self.state(m.group(1)) if m else None
        return (state["id"], m.group(2)) if state else None

    def add(self, key: Key, current: bool = False) -> Node | None:
        """The node of key (read at its commit), added if new; None if not visible or full."""
        if key in self.nodes:
            return self.nodes[key]
        if len(self.nodes) >= MAX_NODES:
            self.truncated = True
            return None
        state = self.state(key[0])
        commit = self.store.repos.get_commit(key[1]) if state else None
        if commit is None or commit["repo"] != state["uid"]:
            return None
        zoo = zoo_json(self.store, commit)
        node = Node(
            id=f"n{len(self.nodes)}",
            repo=state["id"],
            sha=key[1],
            kind=zoo_facts(zoo)[0],
            tags=tuple(sorted(t for t, sha in state.get("tags", {}).items() if sha == key[1])),
            main=state["branches"].get("main") == key[1],
            private=state["private"],
            current=current,
            refs=refs_of(zoo),
        )
        self.nodes[key] = node
        self.order.append(key)
        return node

    def up(self, starts: list[Key]) -> None:
        frontier = starts
        for _ in range(MAX_DEPTH):
            nxt = []
            for key in frontier:
                for _relation, ref in self.nodes[key].refs:
                    parent = self.key_of(ref)
                    if parent and parent not in self.nodes and self.add(parent):
                        nxt.append(parent)
            frontier = nxt

    def children(self) -> dict[Key, list[Key]]:
        """parent key -> the keys of the readable lineage revisions naming it (built once)."""
        if self._children is None:
            index: dict[Key, list[Key]] = {}
            for state in self.store.repos.all("model"):
                if not can_read(self.user, state):
                    continue
                self.states.setdefault(state["id"].lower(), state)
                for rev in lineage_revisions(self.store, state):
                    for _relation, ref in rev.refs:
                        parent = self.key_of(ref)
                        if parent:
                            index.setdefault(parent, []).append((state["id"], rev.sha))
            self._children = {k: sorted(set(v)) for k, v in index.items()}
        return self._children

    def down(self, start: Key) -> list[Key]:
        found, frontier = [], [start]
        for _ in range(MAX_DEPTH):
            nxt = []
            for key in frontier:
                for child in self.children().get(key, []):
                    if child not in self.nodes and self.add(child):
                        nxt.append(child)
                        found.append(child)
            frontier = nxt
        return found

    def tree(self) -> ModelTree:
        edges = []
        for key in self.order:
            node = self.nodes[key]
            for relation, ref in node.refs:
                parent = self.key_of(ref)
                if parent in self.nodes:
                    edges.append(Edge(node.id, self.nodes[parent].id, relation))
        return ModelTree([self.nodes[k] for k in self.order], _prune(edges), self.truncated)


def _prune(edges: list[Edge]) -> list[Edge]:
    """The edges less each 'base' edge whose base is already an ancestor through the child's
    other parents (a merged model's base is its bags' base: drawn once, on the bags)."""
    up: dict[str, list[str]] = {}
    for e in edges:
        up.setdefault(e.child, []).append(e.parent)

    def ancestors(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for parent in up.get(stack.pop(), []):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def redundant(e: Edge) -> bool:
        others = [p for p in up[e.child] if p != e.parent]
        return e.relation == "base" and any(e.parent in ancestors(p) for p in others)

    return [e for e in edges if not redundant(e)]


def model_tree(store: HubStore, user: User | None, state: dict, sha: str) -> ModelTree:
    """The lineage of `state` at commit `sha`, as `user` may see it (the repo itself readable)."""
    walk = _Walk(store, user)
    walk.states[state["id"].lower()] = state
    root = (state["id"], sha)
    walk.add(root, current=True)
    walk.up([root])
    walk.up(walk.down(root))
    return walk.tree()
