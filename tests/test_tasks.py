"""One table of task types: the Hub task ids zoo writes are the Hub's, and every writer agrees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from huggingface_hub.repocard_data import model_index_to_eval_results

from zoo.cards.merged import merged_card
from zoo.eval import EvalReport, TaskScore, eval_result_dicts
from zoo.tasks import HUB_TASKS, OTHER_HUB_TASK, TASK_TYPES, hub_task, snake

# tests cannot reach the network: the Hub's list, with its source, is stored beside this file
HUB_IDS = {
    line.strip()
    for line in (Path(__file__).parent / "hub_task_ids.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
SHA = "1" * 40
META = {
    "kind": "merged",
    "base_model": None,
    "schema_version": 1,
    "parents": [f"demo/a@{SHA}"],
    "labels": {"merge_method": "linear"},
    "adapter": {"type": "full", "peft_config": None},
    "zoo_version": "0.1.0",
    "created_at": "2026-11-21T00:00:00+00:00",
    "training": None,
    "scores": {},
}


def test_the_stored_hub_list_is_the_hubs():
    assert len(HUB_IDS) == 57
    assert {"sentence-similarity", "feature-extraction", "text-ranking", "other"} <= HUB_IDS


def test_every_hub_task_zoo_can_write_is_on_the_hub():
    written = {*HUB_TASKS.values(), OTHER_HUB_TASK, *(t.hub_task for t in TASK_TYPES.values())}
    assert written <= HUB_IDS, sorted(written - HUB_IDS)


def test_clustering_is_filed_under_text_classification_as_mteb_does():
    assert "text-clustering" not in HUB_IDS
    assert TASK_TYPES["clustering"].hub_task == "text-classification"


def test_zoo_type_names_are_mtebs_in_snake_case():
    assert list(TASK_TYPES) == [
        "retrieval",
        "sts",
        "pair_classification",
        "classification",
        "clustering",
        "bitext_mining",
    ]
    for name, task in TASK_TYPES.items():
        assert task.name == name == snake(task.mteb_type)
        assert task.mteb_type in HUB_TASKS


def _card_task_types(types: list[str]) -> list[str]:
    """The model-index task types of a merged card with one result per task type."""
    results = {
        "columns": [{"label": "merged", "ref": "demo/m"}],
        "tasks": [{"name": f"T{i}", "type": t, "metric": "m"} for i, t in enumerate(types)],
        "scores": {"merged": {f"T{i}": 0.5 for i in range(len(types))}},
    }
    text = merged_card("demo/m", META, "merge_method: linear\n", "{}\n", results=results)
    index = yaml.safe_load(text.split("---", 2)[1])["model-index"]
    _, evals = model_index_to_eval_results(index)  # huggingface_hub's own parser
    return [e.task_type for e in sorted(evals, key=lambda e: e.dataset_name)]


def _export_task_types(types: list[tuple[str, str]]) -> list[str]:
    """The task_type of eval_result_dicts for a report with one task per (type, mteb type)."""
    tasks = tuple(
        TaskScore(f"T{i}", t, m, "m", 0.5, {}, "test", "h", "folder", f"zoo-task/T{i}")
        for i, (t, m) in enumerate(types)
    )
    report = EvalReport("demo/m", None, "sha256:x", {}, tasks)
    return [d["task_type"] for d in eval_result_dicts(report)]


def test_card_and_eval_export_file_every_type_under_the_same_hub_task():
    types = list(TASK_TYPES.values())
    expected = [t.hub_task for t in types]
    assert _card_task_types([t.name for t in types]) == expected
    assert _export_task_types([(t.name, t.mteb_type) for t in types]) == expected
    assert expected[types.index(TASK_TYPES["clustering"])] == "text-classification"


@pytest.mark.parametrize(
    ("report_type", "mteb_type", "hub"),
    [
        ("reranking", "Reranking", "text-ranking"),
        ("instruction_retrieval", "InstructionRetrieval", "text-retrieval"),
        ("summarization", "Summarization", "summarization"),
        ("any2_any_retrieval", "Any2AnyRetrieval", "other"),  # none the Hub has a text task for
    ],
)
def test_standard_mteb_types_get_the_same_hub_task_in_card_and_export(report_type, mteb_type, hub):
    assert _card_task_types([report_type]) == [hub]
    assert _export_task_types([(report_type, mteb_type)]) == [hub]
    assert hub_task(report_type) == hub_task(mteb_type) == hub
