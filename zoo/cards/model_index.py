"""Results in the Hub's two metadata formats: `model-index` (card YAML) and `.eval_results/*.yaml`.

Uses huggingface_hub's card data classes only (EvalResult, EvalResultEntry): no network.
"""

from __future__ import annotations

from typing import Any

import yaml
from huggingface_hub import EvalResult, EvalResultEntry, ModelCardData, eval_result_entries_to_yaml

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
            notes=f"{task['type']}; main score {task['metric']}",
        )
        text = yaml.safe_dump(eval_result_entries_to_yaml([entry]), sort_keys=True)
        files[f".eval_results/{task['name']}.yaml"] = text
    return files
