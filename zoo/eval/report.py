"""The evaluation report: plain frozen data, averages, deterministic JSON and a text table.

This module does not import mteb, so the CLI and the cards layer can read reports cheaply.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

# Scores in to_json() are rounded like mteb's own result files (6 decimals).
_DIGITS = 6


@dataclass(frozen=True)
class TaskScore:
    """One task's result.

    `score` is the value of `main_score` (mean over splits and subsets for mteb tasks);
    `metrics` holds every numeric metric mteb reported, averaged the same way. `source` is
    "folder" (a local task folder; `content_hash` = sha256 of its files) or "mteb" (a standard
    task; `content_hash` = sha256 of its Hub dataset path@revision). `seconds` (wall time of the
    evaluation; of the original run when `cached`) and `cached` are run facts, kept out of
    to_json(); `mteb_result` is mteb's TaskResult as JSON data.
    """

    name: str
    type: str
    mteb_type: str
    main_score: str
    score: float
    metrics: dict[str, float]
    split: str
    content_hash: str
    source: str
    dataset: str
    seconds: float = 0.0
    cached: bool = False
    mteb_result: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The deterministic fields, scores rounded to 6 decimals."""
        return {
            "name": self.name,
            "type": self.type,
            "mteb_type": self.mteb_type,
            "main_score": self.main_score,
            "score": _round(self.score),
            "metrics": {k: _round(v) for k, v in sorted(self.metrics.items())},
            "split": self.split,
            "content_hash": self.content_hash,
            "source": self.source,
            "dataset": self.dataset,
        }


@dataclass(frozen=True)
class EvalReport:
    """Scores of one model on a list of tasks, in the order the tasks were given.

    `model_identity` is the cache key of the model (`rev:<name>@<sha>` or `sha256:<hex>`);
    `settings` holds what else changes scores (bf16 autocast, mteb version).
    """

    model_name: str
    revision: str | None
    model_identity: str
    settings: dict[str, Any]
    tasks: tuple[TaskScore, ...]

    def per_type(self) -> dict[str, float]:
        """Mean main score per task type, types sorted by name."""
        groups: dict[str, list[float]] = {}
        for task in self.tasks:
            groups.setdefault(task.type, []).append(task.score)
        return {kind: _mean(groups[kind]) for kind in sorted(groups)}

    def overall(self) -> float:
        """Mean main score over all tasks (mteb's "Mean (Task)"); NaN if there are none."""
        return _mean([t.score for t in self.tasks])

    def overall_by_type(self) -> float:
        """Mean of the per-type means (mteb's "Mean (TaskType)"); NaN if there are none."""
        return _mean(list(self.per_type().values()))

    def timings(self) -> dict[str, dict[str, Any]]:
        """{task name: {seconds, cached}}: the run facts to_json() leaves out."""
        return {t.name: {"seconds": t.seconds, "cached": t.cached} for t in self.tasks}

    def to_dict(self) -> dict[str, Any]:
        """The deterministic content of the report (no timings, no dates, no paths)."""
        return {
            "model": {
                "name": self.model_name,
                "revision": self.revision,
                "identity": self.model_identity,
            },
            "settings": dict(sorted(self.settings.items())),
            "tasks": [t.to_dict() for t in self.tasks],
            "per_type": {k: _round(v) for k, v in self.per_type().items()},
            "overall": _round(self.overall()),
            "overall_by_type": _round(self.overall_by_type()),
        }

    def to_json(self, *, timings: bool = False) -> str:
        """JSON text, sorted keys, 2-space indent; same model and tasks give the same bytes.

        With `timings=True` a "timings" object (seconds, cached per task) is added, and the
        output is then no longer reproducible.
        """
        data = self.to_dict()
        if timings:
            data["timings"] = self.timings()
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def format_report(report: EvalReport) -> str:
    """Render a report as a fixed-width text table (one line per task, then the averages)."""
    rows = [("task", "type", "metric", "score", "time")]
    for t in report.tasks:
        took = "cached" if t.cached else f"{t.seconds:.1f}s"
        rows.append((t.name, t.type, t.main_score, f"{t.score:.4f}", took))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [_line(r, widths) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    rev = f"@{report.revision}" if report.revision else ""
    head = f"{report.model_name}{rev}  ({report.model_identity[:23]})"
    tail = [
        f"{'mean ' + kind:<{widths[0]}}  {score:.4f}" for kind, score in report.per_type().items()
    ]
    tail.append(f"{'mean (task)':<{widths[0]}}  {report.overall():.4f}")
    tail.append(f"{'mean (type)':<{widths[0]}}  {report.overall_by_type():.4f}")
    return "\n".join([head, *lines, "", *tail]) + "\n"


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    left = [row[i].ljust(widths[i]) for i in range(3)]
    right = [row[i].rjust(widths[i]) for i in range(3, 5)]
    return "  ".join(left + right).rstrip()


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def _round(value: float) -> float | None:
    """Round to 6 decimals; NaN becomes None so the JSON stays valid."""
    return None if math.isnan(value) else round(float(value), _DIGITS)
