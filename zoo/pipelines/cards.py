"""`zoo card`: re-render a member's card from what its repo records; optionally publish it.

What a repo records of its scores: `eval/card-results.json` (the table a merge wrote: base,
parents, merged) and `.eval_results/*.yaml` (the Hub's per-benchmark files, the repo's own
scores). Both are read back, so a re-render never drops a score that `zoo eval --publish` added.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from zoo.cards.member import member_card
from zoo.cards.merged import PLOT_FILE, merged_card
from zoo.cards.model_index import parse_eval_results_yaml
from zoo.cards.results import plot_png
from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.metadata import ZooMetadata
from zoo.hub.session import Hub
from zoo.pipelines.evaluation import MERGED, RESULTS_FILE, label_of
from zoo.pipelines.published import RECIPE_FILE, card_parents, read_parents
from zoo.recipe.lock import LOCK_FILE
from zoo.types import ModelRef


@dataclass(frozen=True)
class Recorded:
    """The scores a repo records: the card's results data (None: none), the column of the repo's
    own model, and the benchmark datasets its `.eval_results` name ({task: {id, revision}})."""

    results: dict[str, Any] | None
    label: str
    datasets: dict[str, dict] = field(default_factory=dict)


def card(h: Hub, ref: str, *, update: bool = False) -> tuple[str, str | None]:
    """(README text, new commit sha or None); with update, commit it (and the plot), a new revision.

    A card that renders exactly as published is not committed again (sha None).
    """
    mref = ModelRef.parse(ref)
    sha = client.resolve(h, mref)
    meta = member_meta(h, mref.repo_id, sha)
    recorded = recorded_results(h, mref.repo_id, sha, meta)
    published = client.read_text(h, mref.repo_id, sha, "README.md")
    text = render_card(h, mref.repo_id, sha, meta, recorded, published)
    if not update or published == text:
        return text, None  # nothing to publish: the card is up to date
    files = {"README.md": text.encode()}
    if recorded.results:
        files[PLOT_FILE] = plot_png(recorded.results)
    return text, client.commit_files(
        h, mref.repo_id, files, parent=sha, message="zoo card: re-render"
    )


def member_meta(h: Hub, repo_id: str, sha: str) -> ZooMetadata:
    """zoo.json of repo_id@sha; a repo without one is a one-line error (not a zoo member)."""
    meta = client.read_metadata(h, repo_id, sha)
    if meta is None:
        raise UserError(f"{repo_id}@{sha[:8]} has no zoo.json: not a zoo member")
    return meta


def own_label(repo_id: str, meta: ZooMetadata) -> str:
    """The results column of the repo's own model: 'merged' for a merge, else the repo's name."""
    return MERGED if meta.kind == "merged" else label_of(repo_id)


def recorded_results(h: Hub, repo_id: str, sha: str, meta: ZooMetadata) -> Recorded:
    """The card results of repo_id@sha: its card-results.json with its `.eval_results` folded in."""
    label = own_label(repo_id, meta)
    raw = client.read_text(h, repo_id, sha, RESULTS_FILE)
    entries = parse_eval_results_yaml(client.read_eval_results(h, repo_id, sha))
    results = fold_entries(json.loads(raw) if raw else None, label, repo_id, entries)
    return Recorded(results, label, {e["name"]: e["dataset"] for e in entries})


def fold_entries(
    results: dict[str, Any] | None, label: str, ref: str, entries: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """results with `.eval_results` entries as column label's scores (a new copy; None if none).

    A task only the entries know is added; a score the entries record differently (beyond the
    6 decimals they keep) is replaced by theirs.
    """
    if results is None and not entries:
        return None
    out = _with_column(results, label, ref)
    own = out["scores"][label]
    for e in entries:
        _set_task(out, {"name": e["name"], "type": e["type"], "metric": e["metric"]}, False)
        old = own.get(e["name"])
        if old is None or round(float(old), 6) != e["value"]:
            own[e["name"]] = e["value"]
    return out


def with_scores(
    results: dict[str, Any] | None,
    label: str,
    ref: str,
    tasks: list[dict[str, Any]],
    scores: dict[str, float],
) -> dict[str, Any]:
    """results with new scores of column label: tasks [{name, type, metric}], scores {name: v}.

    A task already there keeps its row (its other columns' scores stay); its score is replaced.
    """
    out = _with_column(results, label, ref)
    for task in tasks:
        _set_task(out, task, True)
        out["scores"][label][task["name"]] = scores[task["name"]]
    return out


def _with_column(results: dict[str, Any] | None, label: str, ref: str) -> dict[str, Any]:
    out = copy.deepcopy(results) if results else {"columns": [], "tasks": [], "scores": {}}
    if label not in [c["label"] for c in out["columns"]]:
        out["columns"].append({"label": label, "ref": ref})
    out["scores"].setdefault(label, {})
    return out


def _set_task(results: dict[str, Any], task: dict[str, Any], replace: bool) -> None:
    for i, known in enumerate(results["tasks"]):
        if known["name"] == task["name"]:
            if replace:
                results["tasks"][i] = dict(task)
            return
    results["tasks"].append(dict(task))


def render_card(
    h: Hub, repo_id: str, sha: str, meta: ZooMetadata, recorded: Recorded, published: str | None
) -> str:
    """The card of repo_id from its metadata and recorded scores (table, plot, model-index).

    A member's card keeps the license, language and datasets of the published card.
    """
    if meta.kind == "merged":
        return _merged(h, repo_id, sha, meta, recorded)
    return member_card(
        repo_id,
        meta.model_dump(mode="json"),
        client.carried_card_data(published or ""),
        results=recorded.results,
        label=recorded.label,
        datasets=recorded.datasets,
        plot=PLOT_FILE,
    )


def _merged(h: Hub, repo_id: str, sha: str, meta: ZooMetadata, recorded: Recorded) -> str:
    recipe = client.read_text(h, repo_id, sha, RECIPE_FILE) or ""
    lock = client.read_text(h, repo_id, sha, LOCK_FILE) or "{}"
    parents = card_parents(read_parents(h, list(meta.parents)))
    return merged_card(
        repo_id,
        meta.model_dump(mode="json"),
        recipe,
        lock,
        edges=client.lineage(h, repo_id, meta),
        parents_meta=parents,
        results=recorded.results,
        merged_label=recorded.label,
        datasets=recorded.datasets,
        plot=recorded.results is not None,
    )
