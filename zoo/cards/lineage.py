"""The lineage of a model as a mermaid graph: base -> bags/updates -> merged.

Nodes are named 'repo@short-sha'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zoo.types import LINEAGE_SHAPES


def short(ref: str, n: int = 8) -> str:
    """'org/name@<40-hex>' -> 'org/name@<n-hex>' (other refs unchanged)."""
    repo, sep, rev = ref.partition("@")
    return f"{repo}@{rev[:n]}" if sep and len(rev) == 40 else ref


def mermaid(root: str, edges: Sequence[dict[str, Any]], root_kind: str = "merged") -> str:
    """A `graph BT` diagram: every edge child -> parent, nodes labelled repo@short-sha.

    edges: {child, parent, relation, kind} as zoo.hub.client.lineage returns them. Deterministic:
    node ids follow first appearance in (root, edges) order.
    """
    ids: dict[str, str] = {}
    kinds = {root: root_kind, **{e["parent"]: e.get("kind") for e in edges}}
    lines = ["graph BT"]
    for ref in [root, *[r for e in edges for r in (e["child"], e["parent"])]]:
        if ref not in ids:
            ids[ref] = f"n{len(ids)}"
            left, right = LINEAGE_SHAPES.get(kinds.get(ref), LINEAGE_SHAPES[None])
            kind = kinds.get(ref) or "model"
            lines.append(f"  {ids[ref]}{left}{short(ref)}<br/>{kind}{right}")
    seen = set()
    for e in edges:
        key = (e["child"], e["parent"])
        if key not in seen:
            seen.add(key)
            label = "base" if e["relation"] == "base" else "merged from"
            lines.append(f"  {ids[e['child']]} -->|{label}| {ids[e['parent']]}")
    return "\n".join(lines)


def multi_merge_edges(
    root: str, merges: Sequence[Mapping[str, Any]], kinds: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """The edges of a multi-merge's own graph: root (the published model) -> the final merge's
    inputs, each earlier merge ('merge:NAME', a merged node) -> its inputs.

    merges: the lock's merges as JSON data, in the order they ran, the final one last; kinds:
    the known kind of each Hub input. Adapters ('model+adapter') are parents of their merge.
    """
    edges = []
    for i, merge in enumerate(merges):
        child = root if i == len(merges) - 1 else f"merge:{merge['name']}"
        items = [("base", merge["base"])] if merge.get("base") else []
        items += [("parent", m) for m in merge["models"]]
        items += [("parent", m["adapter"]) for m in merge["models"] if m.get("adapter")]
        for relation, item in items:
            parent = item["pinned"]
            kind = "merged" if parent.startswith("merge:") else kinds.get(parent)
            edges.append({"child": child, "parent": parent, "relation": relation, "kind": kind})
    return edges
