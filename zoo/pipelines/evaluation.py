"""Evaluate a line-up of models (base, parents, merged) and turn the reports into card data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zoo.eval  # its mteb-backed names load mteb on first use, not when this module loads
from zoo.cards.merged import PLOT_FILE
from zoo.cards.model_index import eval_results_yaml, parse_eval_results_yaml
from zoo.cards.results import plot_png
from zoo.errors import UserError
from zoo.eval import EvalReport
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.types import is_local_ref

MERGED = "merged"
RESULTS_FILE = "eval/card-results.json"  # the card's results data, so `zoo card` can re-render it


@dataclass(frozen=True)
class Entrant:
    """One model to evaluate: its column label, its reference (repo@sha or path), its folder."""

    label: str
    ref: str
    path: Path
    revision: str | None = None


def label_of(ref: str) -> str:
    """'demo/bag-0.4@<sha>' -> 'bag-0.4'; a path -> its folder name."""
    return ref.split("@")[0].rstrip("/").rsplit("/", 1)[-1]


def evaluate_lineup(
    entrants: Sequence[Entrant],
    *,
    tasks: Sequence[str] = (),
    task_dirs: Sequence[str] = (),
    progress: bool = True,
) -> dict[str, EvalReport]:
    """{label: report} for every entrant, in order (cached by model and task content)."""
    reports = {}
    for e in entrants:
        reports[e.label] = zoo.eval.evaluate(
            e.path,
            tasks=tasks,
            task_dirs=task_dirs,
            model_name=e.ref.split("@")[0],
            revision=e.revision,
            progress=progress,
        )
    return reports


def card_results(entrants: Sequence[Entrant], reports: dict[str, EvalReport]) -> dict[str, Any]:
    """The plain results data the cards layer renders (see zoo.cards.results)."""
    first = next(iter(reports.values()))
    return {
        "columns": [{"label": e.label, "ref": e.ref} for e in entrants],
        "tasks": [{"name": t.name, "type": t.type, "metric": t.main_score} for t in first.tasks],
        "scores": {label: {t.name: t.score for t in r.tasks} for label, r in reports.items()},
    }


def write_eval_files(
    target: Path, results: dict[str, Any], reports: dict[str, EvalReport], repo_id: str
) -> None:
    """Plot, .eval_results/*.yaml, mteb results + ModelMeta stub, and every report, into target."""
    (target / PLOT_FILE).write_bytes(plot_png(results))
    for name, text in eval_results_yaml(results, MERGED).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text, encoding="utf-8")
    merged = reports[MERGED]
    stub = zoo.eval.model_meta_stub(target, name=repo_id, revision=None)
    zoo.eval.mteb_results_folder(merged, target / "mteb", repo_id, "main", model_meta=stub)
    (target / "eval").mkdir(exist_ok=True)
    (target / RESULTS_FILE).write_text(
        json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    for label, report in reports.items():
        (target / "eval" / f"{label}.json").write_text(report.to_json(), encoding="utf-8")


def score_table(results: dict[str, Any]) -> str:
    """A plain-text table of main scores (×100): tasks as rows, models as columns."""
    labels = [c["label"] for c in results["columns"]]
    width = max(12, *(len(t["name"]) for t in results["tasks"]))
    lines = [f"{'task':{width}} " + " ".join(f"{lab:>10}" for lab in labels)]
    for t in results["tasks"]:
        cells = [results["scores"][lab].get(t["name"]) for lab in labels]
        lines.append(f"{t['name']:{width}} " + " ".join(f"{100 * c:10.2f}" for c in cells))
    means = [
        sum(results["scores"][lab].values()) / max(1, len(results["scores"][lab])) for lab in labels
    ]
    lines.append(f"{'average':{width}} " + " ".join(f"{100 * m:10.2f}" for m in means))
    return "\n".join(lines)


def evaluate_model(
    hub: Hub | None,
    model: str,
    *,
    tasks: Sequence[str] = (),
    task_dirs: Sequence[str] = (),
    batch_size: int = 64,
    progress: bool = True,
) -> EvalReport:
    """`zoo eval`: a local folder as is, or a Hub member pulled (pinned, verified) first.

    `hub` is needed only when `model` is not a local folder (`needs_hub(model)`).
    """
    if not needs_hub(model):
        return zoo.eval.evaluate(
            model, tasks=tasks, task_dirs=task_dirs, batch_size=batch_size, progress=progress
        )
    from zoo.hub import client
    from zoo.types import ModelRef

    if hub is None:
        raise UserError(f"{model} is not a local folder, and no Hub is open to pull it from")
    pulled = client.pull_member(hub, ModelRef.parse(model))
    return zoo.eval.evaluate(
        pulled.path,
        tasks=tasks,
        task_dirs=task_dirs,
        model_name=pulled.repo_id,
        revision=pulled.sha,
        batch_size=batch_size,
        progress=progress,
    )


def needs_hub(model: str) -> bool:
    """Whether `zoo eval MODEL` pulls MODEL from a Hub (it is not a local folder)."""
    return not is_local_ref(model)


def main_scores(h: Hub, repo_id: str) -> dict[str, float]:
    """Main scores by task of the model on repo_id's main: its zoo.json scores, else its
    `.eval_results/*.yaml`; {} when the repo does not exist or records none."""
    sha = client.main_head(h, repo_id)
    if sha is None:
        return {}
    meta = client.read_metadata(h, repo_id, sha)
    if meta is not None and meta.scores:
        return dict(meta.scores)
    return {
        e["name"]: e["value"]
        for e in parse_eval_results_yaml(client.read_eval_results(h, repo_id, sha))
    }
