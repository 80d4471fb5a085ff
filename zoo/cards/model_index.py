"""Results in the Hub's two metadata formats: `model-index` (card YAML) and `.eval_results/*.yaml`.

Uses huggingface_hub's card data classes only (EvalResult, EvalResultEntry): no network.
"""

from __future__ import annotations

from typing import Any

import yaml
from huggingface_hub import (
    EvalResult,
    EvalResultEntry,
    ModelCardData,
    eval_result_entries_to_yaml,
    parse_eval_result_entries,
)

from zoo.tasks import hub_task


def eval_results(
    model_label: str, results: dict[str, Any], datasets: dict[str, dict] | None = None
) -> list[EvalResult]:
    """One EvalResult per task for the column model_label; datasets: {task: {id, revision}}."""
    out = []
    for task in results["tasks"]:
        value = results["scores"].get(model_label, {}).get(task["name"])
        if value is None:
            continue
        ds = (datasets or {}).get(task["name"], {})
        out.append(
            EvalResult(
                task_type=hub_task(task["type"]),
                task_name=task["type"],
                dataset_type=ds.get("id", f"zoo-local/{task['name']}"),
                dataset_name=task["name"],
                dataset_split="test",
                dataset_revision=ds.get("revision"),
                metric_type=task["metric"],
                metric_value=round(float(value), 6),
            )
        )
    return out


def model_index(model_name: str, evals: list[EvalResult]) -> list[dict[str, Any]]:
    """The `model-index` YAML value, rendered by huggingface_hub itself."""
    data = ModelCardData(model_name=model_name, eval_results=evals).to_dict()
    return data.get("model-index", [])


def eval_results_yaml(
    results: dict[str, Any], model_label: str, datasets: dict[str, dict] | None = None
) -> dict[str, str]:
    """{'.eval_results/<task>.yaml': text} in the Hub's newer per-benchmark format."""
    files = {}
    for task in results["tasks"]:
        value = results["scores"].get(model_label, {}).get(task["name"])
        if value is None:
            continue
        ds = (datasets or {}).get(task["name"], {})
        entry = EvalResultEntry(
            dataset_id=ds.get("id", f"zoo-local/{task['name']}"),
            task_id=task["name"],
            value=round(float(value), 6),
            dataset_revision=ds.get("revision"),
            notes=_notes(task),
        )
        text = yaml.safe_dump(eval_result_entries_to_yaml([entry]), sort_keys=True)
        files[f".eval_results/{task['name']}.yaml"] = text
    return files


def _notes(task: dict[str, Any]) -> str:
    return f"{task['type']}; main score {task['metric']}"


def parse_eval_results_yaml(files: dict[str, str]) -> list[dict[str, Any]]:
    """The entries of `.eval_results/*.yaml` files ({path: text}), read by huggingface_hub:
    [{"name", "type", "metric", "value", "dataset"}] by path; files it cannot read are left out.

    type and metric come back from the notes eval_results_yaml wrote ("<type>; main score <m>");
    an entry written by another tool has type "other" and metric "main_score".
    """
    out = []
    for path in sorted(files):
        try:
            data = yaml.safe_load(files[path])
            entries = parse_eval_result_entries(data if isinstance(data, list) else [])
        except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError):
            continue
        for e in entries:
            if not isinstance(e.value, (int, float)) or isinstance(e.value, bool):
                continue
            kind, sep, metric = (e.notes or "").partition("; main score ")
            ds = {
                "id": e.dataset_id,
                **({"revision": e.dataset_revision} if e.dataset_revision else {}),
            }
            out.append(
                {
                    "name": str(e.task_id),
                    "type": kind if sep else "other",
                    "metric": metric if sep else "main_score",
                    "value": float(e.value),
                    "dataset": ds,
                }
            )
    return out
