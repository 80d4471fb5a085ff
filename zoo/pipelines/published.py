"""The record of one merge, built once in memory: written into the output folder, then published.

Nothing here reads back what it wrote: the published card, metadata and lock are the record's.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.cards.lineage import multi_merge_edges
from zoo.cards.merged import merged_card
from zoo.cards.pull_request import pr_description
from zoo.hub import client
from zoo.hub.metadata import ZooMetadata
from zoo.hub.session import Hub
from zoo.pipelines.evaluation import main_scores
from zoo.pipelines.search import SEARCH_FILE
from zoo.recipe.lock import LOCK_FILE, MERGE_PREFIX, Lock
from zoo.recipe.schema import Publish
from zoo.types import is_local_ref

RECIPE_FILE = "recipe.yaml"


@dataclass(frozen=True)
class MergedRecord:
    """What a merged folder records: the recipe as written, its lock, lineage, scores, search."""

    recipe_text: str
    lock: Lock
    meta: ZooMetadata | None  # kind=merged; None when an input is a local folder (no lineage)
    parents: dict[str, ZooMetadata | None]  # each parent's metadata, read once from the Hub
    results: dict[str, Any] | None = None
    search: dict[str, Any] | None = None

    def write(self, folder: Path) -> None:
        """Add the recipe, the lock, the search (if run) and (with lineage) zoo.json to folder."""
        (folder / RECIPE_FILE).write_text(self.recipe_text, encoding="utf-8")
        if self.search is not None:
            text = json.dumps(self.search, indent=1) + "\n"
            (folder / SEARCH_FILE).write_text(text, encoding="utf-8")
        (folder / LOCK_FILE).write_text(self.lock.to_json(), encoding="utf-8")
        if self.meta is not None:
            (folder / "zoo.json").write_text(self.meta.to_json(), encoding="utf-8")


def merged_record(
    h: Hub | None,
    recipe_text: str,
    lock: Lock,
    results: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
) -> MergedRecord:
    """The record of a merge; reads each parent's metadata once (when every input is pinned)."""
    if h is None or any(is_local_ref(i.pinned) for i in lock.all_inputs()):
        return MergedRecord(recipe_text, lock, None, {}, results, search)
    parents = read_parents(h, lock.parents())
    hub_base = lock.base and not lock.base.pinned.startswith(MERGE_PREFIX)
    meta = ZooMetadata(
        kind="merged",
        base_model=lock.base.pinned if hub_base else _common_base(parents),
        parents=tuple(parents),
        labels={"merge_method": lock.method, "recipe_sha256": lock.recipe_sha256},
        scores=dict(results["scores"]["merged"]) if results else {},
    )
    return MergedRecord(recipe_text, lock, meta, parents, results, search)


def read_parents(h: Hub, refs: list[str]) -> dict[str, ZooMetadata | None]:
    """Each pinned parent's metadata (None for one that is not a zoo member), read once."""
    out = {}
    for ref in refs:
        repo, _, sha = ref.partition("@")
        out[ref] = client.read_metadata(h, repo, sha)
    return out


def card_parents(parents: dict[str, ZooMetadata | None]) -> dict[str, dict | None]:
    """The parents' metadata as the card template takes it (JSON data)."""
    return {ref: m.model_dump(mode="json") if m else None for ref, m in parents.items()}


def _common_base(parents: dict[str, ZooMetadata | None]) -> str:
    """The base most parents record (a parent without one stands for itself)."""
    bases = [m.base_model if m and m.base_model else ref for ref, m in parents.items()]
    counts = Counter(bases)
    return max(sorted(counts), key=counts.__getitem__)


@dataclass(frozen=True)
class Published:
    """Where a merged model went: repo@sha, and its tag (on main) or its pull request."""

    ref: str
    tag: str | None = None
    pr_url: str | None = None


def publish_record(
    h: Hub, folder: Path, record: MergedRecord, pub: Publish, *, pr: bool = False
) -> Published:
    """Push folder with the record's metadata and card as pub.repo_id in one commit, tagged.

    With pr, the commit opens a pull request on pub.repo_id instead (no tag: main is untouched
    until the pull request is merged); its description holds the per-task scores of the model on
    main (before) and of this one (after).
    """
    if record.meta is None:
        raise AssertionError("a record without lineage is never published (checked before merging)")
    card = _card(h, record, pub)
    method, n = record.meta.labels.get("merge_method"), len(record.meta.parents)
    message = f"zoo merge: {method} of {n} models"
    if pr:
        before = main_scores(h, pub.repo_id)
        summary = f"**{message}**, proposed by zoo: {', '.join(record.meta.parents)}."
        text = pr_description(summary, pub.repo_id, before, dict(record.meta.scores))
        sha, url = client.open_member_pr(
            h,
            folder,
            pub.repo_id,
            record.meta,
            card,
            description=text,
            private=pub.private,
            message=message,
        )
        return Published(f"{pub.repo_id}@{sha}", pr_url=url)
    tag = pub.tag or client.next_version_tag(h, pub.repo_id)
    sha = client.push_member(
        h, folder, pub.repo_id, record.meta, card, private=pub.private, tag=tag, message=message
    )
    return Published(f"{pub.repo_id}@{sha}", tag=tag)


def _card(h: Hub, record: MergedRecord, pub: Publish) -> str:
    return merged_card(
        pub.repo_id,
        record.meta.model_dump(mode="json"),
        record.recipe_text,
        record.lock.to_json(),
        edges=_lineage(h, pub.repo_id, record),
        parents_meta=card_parents(record.parents),
        results=record.results,
        plot=record.results is not None,
        search=record.search,
    )


def _lineage(h: Hub, repo_id: str, record: MergedRecord) -> list[dict]:
    """The card's lineage edges; a multi-merge's own graph (its earlier merges as nodes) replaces
    the published model's direct edges to every parent."""
    edges = client.lineage(h, repo_id, record.meta)
    if not record.lock.steps:
        return edges
    kinds = {e["parent"]: e["kind"] for e in edges}
    merges = [m.model_dump(mode="json") for m in record.lock.merges()]
    own = multi_merge_edges(repo_id, merges, kinds)
    return own + [e for e in edges if e["child"] != repo_id]
