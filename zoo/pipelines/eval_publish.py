"""`zoo eval REPO --publish`: evaluate a member and commit its scores as the repo's next revision.

One commit, as mteb's `push_eval_results` does on the Hub: `.eval_results/<task>.yaml` (the Hub's
per-benchmark files), the card re-rendered with its results table, model-index and plot, the
card's results data and zoo.json's scores. Scores already recorded for other tasks stay; a task
evaluated again gets its new score. With pr, the commit opens a pull request instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from zoo.cards.merged import PLOT_FILE
from zoo.cards.model_index import eval_results_yaml
from zoo.cards.pull_request import pr_description
from zoo.cards.results import plot_png
from zoo.errors import UserError
from zoo.eval import EvalReport
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.pipelines.cards import Recorded, member_meta, recorded_results, render_card, with_scores
from zoo.pipelines.evaluation import RESULTS_FILE, evaluate_model, main_scores, needs_hub
from zoo.types import ModelRef


@dataclass(frozen=True)
class EvalPublished:
    """The report, and where its scores went: repo@sha (on main, or the pull request's commit)."""

    report: EvalReport
    ref: str
    files: tuple[str, ...]
    pr_url: str | None = None


def publish_eval(
    h: Hub,
    model: str,
    *,
    tasks: Sequence[str] = (),
    task_dirs: Sequence[str] = (),
    batch_size: int = 64,
    progress: bool = True,
    pr: bool = False,
) -> EvalPublished:
    """Evaluate the head of model's main (REPO_ID, or REPO_ID@REV naming it); commit the scores."""
    if not needs_hub(model):
        raise UserError(f"--publish: {model} is a local folder; give the Hub repo (REPO_ID)")
    mref = ModelRef.parse(model)
    repo_id = mref.repo_id
    sha = client.resolve(h, mref)
    head = client.resolve(h, ModelRef(repo_id))
    if sha != head:
        raise UserError(
            f"--publish: {model} is {sha[:8]}, not the head of main ({head[:8]}); scores are "
            f"committed on top of main, so evaluate {repo_id}"
        )
    meta = member_meta(h, repo_id, sha)  # before evaluating: a repo that is no member fails fast
    report = evaluate_model(
        h,
        f"{repo_id}@{sha}",
        tasks=tasks,
        task_dirs=task_dirs,
        batch_size=batch_size,
        progress=progress,
    )
    recorded = recorded_results(h, repo_id, sha, meta)
    scores = {t.name: t.score for t in report.tasks}
    rows = [{"name": t.name, "type": t.type, "metric": t.main_score} for t in report.tasks]
    results = with_scores(recorded.results, recorded.label, repo_id, rows, scores)
    new_meta = meta.model_copy(update={"scores": {**meta.scores, **scores}})
    published = client.read_text(h, repo_id, sha, "README.md")
    now = Recorded(results, recorded.label, recorded.datasets)
    card = render_card(h, repo_id, sha, new_meta, now, published)
    files = {
        "README.md": card.encode(),
        "zoo.json": new_meta.to_json().encode(),
        PLOT_FILE: plot_png(results),
        RESULTS_FILE: (json.dumps(results, indent=2, sort_keys=True) + "\n").encode(),
    }
    new = {f".eval_results/{name}.yaml" for name in scores}
    for path, text in eval_results_yaml(results, recorded.label, recorded.datasets).items():
        if path in new:
            files[path] = text.encode()
    message = f"zoo eval: {', '.join(sorted(scores))}"
    if not pr:
        new_sha = client.commit_files(h, repo_id, files, parent=sha, message=message)
        return EvalPublished(report, f"{repo_id}@{new_sha}", tuple(sorted(files)))
    before = main_scores(h, repo_id)
    summary = f"**{message}**, proposed by zoo: the scores of {repo_id}@{sha[:8]}."
    text = pr_description(summary, repo_id, before, dict(new_meta.scores))
    new_sha, url = client.open_files_pr(
        h, repo_id, files, parent=sha, message=message, description=text
    )
    return EvalPublished(report, f"{repo_id}@{new_sha}", tuple(sorted(files)), url)
