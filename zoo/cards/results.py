"""Evaluation results for a card: tables per task and per task type, and a PNG plot. Pure.

Input (plain data): {"columns": [{"label", "ref"}], "tasks": [{"name", "type", "metric"}],
"scores": {label: {task name: value in [0, 1]}}}. Columns are models (base, parents, merged).
"""

from __future__ import annotations

import io
from statistics import fmean
from typing import Any


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def task_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task: name, type, metric, then one formatted score per column."""
    labels = [c["label"] for c in results["columns"]]
    return [
        {
            "name": t["name"],
            "type": t["type"],
            "metric": t["metric"],
            "cells": [_fmt(results["scores"].get(label, {}).get(t["name"])) for label in labels],
        }
        for t in results["tasks"]
    ]


def type_averages(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """{type (and 'average'): {column label: mean main score over that type's tasks}}."""
    types = sorted({t["type"] for t in results["tasks"]})
    out: dict[str, dict[str, float | None]] = {}
    for group in [*types, "average"]:
        names = [t["name"] for t in results["tasks"] if group in ("average", t["type"])]
        out[group] = {}
        for col in results["columns"]:
            values = [results["scores"].get(col["label"], {}).get(n) for n in names]
            out[group][col["label"]] = fmean(values) if values and None not in values else None
    return out


def average_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of type_averages, formatted like task_rows."""
    labels = [c["label"] for c in results["columns"]]
    return [
        {"name": f"**{group}**", "cells": [_fmt(row[label]) for label in labels]}
        for group, row in type_averages(results).items()
    ]


def results_context(results: dict[str, Any]) -> dict[str, Any]:
    """The results table as the templates take it (header, task rows, average rows)."""
    return {
        "header": [c["label"] for c in results["columns"]],
        "tasks": task_rows(results),
        "averages": average_rows(results),
    }


def plot_png(results: dict[str, Any]) -> bytes:
    """A grouped bar chart of the per-type averages; the same results give the same bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    averages = type_averages(results)
    groups = list(averages)
    labels = [c["label"] for c in results["columns"]]
    fig = Figure(figsize=(max(6, 1.2 * len(groups) * max(1, len(labels) / 3)), 3.6), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        heights = [100 * (averages[g][label] or 0.0) for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], heights, width, label=label)
    ax.set_xticks(
        [x + 0.4 - width / 2 for x in range(len(groups))], groups, rotation=15, fontsize=8
    )
    ax.set_ylabel("main score (×100)")
    fig.legend(fontsize=7, ncols=min(5, len(labels)), loc="upper center", frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
