"""The card of a merged model: results beside base and parents, lineage, recipe, lock, data."""

from __future__ import annotations

from typing import Any

from zoo.cards.lineage import mermaid, short
from zoo.cards.member import _SUMMARY, front_matter
from zoo.cards.model_index import eval_results, model_index
from zoo.cards.render import dump_front_matter, render
from zoo.cards.results import results_context

PLOT_FILE = "scores.png"


def merged_card(
    repo_id: str,
    meta: dict[str, Any],
    recipe: str,
    lock: str,
    *,
    edges: list[dict] | None = None,
    results: dict[str, Any] | None = None,
    parents_meta: dict[str, dict] | None = None,
    merged_label: str = "merged",
    datasets: dict[str, dict] | None = None,
    plot: bool = False,
    license: str | None = None,
    search: dict[str, Any] | None = None,
) -> str:
    """Render README.md of a merged model. Pure: plain data in, text out (no network, no model)."""
    method = meta.get("labels", {}).get("merge_method", "merge")
    extra: dict[str, Any] = {"license": license} if license else {}
    extra["tags"] = ["merge", method, *(["mteb"] if results else [])]
    if results:
        extra["model-index"] = model_index(repo_id, eval_results(merged_label, results, datasets))
    context = {
        "front_matter": dump_front_matter(front_matter(meta, extra)),
        "repo_id": repo_id,
        "summary": f"{_SUMMARY['merged']} Method: `{method}`, {len(meta['parents'])} parents.",
        "lora": False,
        "parents": [short(p) for p in meta["parents"]],
        "base_model": short(meta.get("base_model") or ""),
        "mermaid": mermaid(repo_id, edges or []),
        "results": results_context(results) if results else None,
        "plot": PLOT_FILE if plot and results else None,
        "parents_data": _parents_data(parents_meta or {}),
        "search": _search_context(search) if search else None,
        "recipe": recipe.rstrip("\n"),
        "lock": lock.rstrip("\n"),
        "zoo_version": meta["zoo_version"],
    }
    return render("merged", context)


def _search_context(search: dict[str, Any]) -> dict[str, Any]:
    """The weight search as table rows: one per trial, values per model, score, the winner."""
    models = [short(m) if "@" in m else m for m in search["models"]]
    rows = [
        {
            "n": i + 1,
            "cells": ["—" if v is None else f"{v:g}" for v in t["values"]],
            "score": f"{100 * t['score']:.2f}",
            "best": i == search["best"],
        }
        for i, t in enumerate(search["trials"])
    ]
    return {
        "strategy": search["strategy"],
        "parameter": search["parameter"],
        "models": models,
        "task_dirs": [d.rstrip("/").split("/")[-1] for d in search["task_dirs"]],
        "rows": rows,
    }


def _parents_data(parents_meta: dict[str, dict]) -> list[dict[str, Any]]:
    rows = []
    for ref, meta in parents_meta.items():
        training = (meta or {}).get("training") or {}
        for d in training.get("datasets", []):
            rows.append(
                {
                    "parent": short(ref),
                    "ratio": training.get("ratio"),
                    "name": d["name"],
                    "count": d["count"],
                    "size": d.get("size"),
                    "indices": d["indices_sha256"][:16],
                }
            )
    return rows
