"""`zoo card`: re-render a member's card from what its repo records; optionally publish it."""

from __future__ import annotations

import json

from zoo.cards.member import member_card
from zoo.cards.merged import PLOT_FILE, merged_card
from zoo.cards.results import plot_png
from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.pipelines.evaluation import RESULTS_FILE
from zoo.pipelines.published import RECIPE_FILE, card_parents, read_parents
from zoo.recipe.lock import LOCK_FILE
from zoo.types import ModelRef


def card(h: Hub, ref: str, *, update: bool = False) -> tuple[str, str | None]:
    """(README text, new commit sha or None); with update, commit it (and the plot), a new revision.

    A card that renders exactly as published is not committed again (sha None).
    """
    mref = ModelRef.parse(ref)
    sha = client.resolve(h, mref)
    meta = client.read_metadata(h, mref.repo_id, sha)
    if meta is None:
        raise UserError(f"{mref.repo_id}@{sha[:8]} has no zoo.json: not a zoo member")
    data = meta.model_dump(mode="json")
    results = None
    if meta.kind == "merged":
        text, results = _merged(h, mref.repo_id, sha, meta)
    else:
        text = member_card(mref.repo_id, data)
    if not update or client.read_text(h, mref.repo_id, sha, "README.md") == text:
        return text, None  # nothing to publish: the card is up to date
    files = {"README.md": text.encode()}
    if results:
        files[PLOT_FILE] = plot_png(results)
    return text, client.commit_files(
        h, mref.repo_id, files, parent=sha, message="zoo card: re-render"
    )


def _merged(h: Hub, repo_id: str, sha: str, meta) -> tuple[str, dict | None]:
    recipe = client.read_text(h, repo_id, sha, RECIPE_FILE) or ""
    lock = client.read_text(h, repo_id, sha, LOCK_FILE) or "{}"
    raw = client.read_text(h, repo_id, sha, RESULTS_FILE)
    results = json.loads(raw) if raw else None
    parents = card_parents(read_parents(h, list(meta.parents)))
    text = merged_card(
        repo_id,
        meta.model_dump(mode="json"),
        recipe,
        lock,
        edges=client.lineage(h, repo_id, meta),
        parents_meta=parents,
        results=results,
        plot=results is not None,
    )
    return text, results
