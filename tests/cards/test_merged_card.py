"""The merged-model card: front matter, model-index, lineage, results, plot.

Rendering is pure and deterministic.
"""

import socket
import sys

import pytest
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from zoo.cards.merged import merged_card
from zoo.cards.model_index import eval_results_yaml
from zoo.cards.results import plot_png, type_averages

A, B, BASE = "1" * 40, "2" * 40, "3" * 40
META = {
    "kind": "merged",
    "base_model": f"zoo/base@{BASE}",
    "schema_version": 1,
    "parents": [f"demo/bag-0.4@{A}", f"demo/bag-1.0@{B}"],
    "labels": {"merge_method": "multislerp"},
    "adapter": {"type": "full", "peft_config": None},
    "zoo_version": "0.1.0",
    "created_at": "2026-11-21T00:00:00+00:00",
    "training": None,
    "scores": {},
}
RESULTS = {
    "columns": [
        {"label": "base", "ref": f"zoo/base@{BASE}"},
        {"label": "bag-0.4", "ref": f"demo/bag-0.4@{A}"},
        {"label": "bag-1.0", "ref": f"demo/bag-1.0@{B}"},
        {"label": "merged", "ref": "demo/m"},
    ],
    "tasks": [
        {"name": "ManPageRetrieval", "type": "retrieval", "metric": "ndcg_at_10"},
        {"name": "PyCodeRetrieval", "type": "retrieval", "metric": "ndcg_at_10"},
        {"name": "ManSectionClassification", "type": "classification", "metric": "accuracy"},
    ],
    "scores": {
        "base": {"ManPageRetrieval": 0.5, "PyCodeRetrieval": 0.4, "ManSectionClassification": 0.6},
        "bag-0.4": {
            "ManPageRetrieval": 0.55,
            "PyCodeRetrieval": 0.45,
            "ManSectionClassification": 0.62,
        },
        "bag-1.0": {
            "ManPageRetrieval": 0.56,
            "PyCodeRetrieval": 0.47,
            "ManSectionClassification": 0.61,
        },
        "merged": {
            "ManPageRetrieval": 0.58,
            "PyCodeRetrieval": 0.48,
            "ManSectionClassification": 0.63,
        },
    },
}
EDGES = [
    {"child": "demo/m", "parent": f"demo/bag-0.4@{A}", "relation": "parent", "kind": "bag"},
    {"child": "demo/m", "parent": f"demo/bag-1.0@{B}", "relation": "parent", "kind": "bag"},
    {"child": "demo/m", "parent": f"zoo/base@{BASE}", "relation": "base", "kind": "base"},
    {
        "child": f"demo/bag-0.4@{A}",
        "parent": f"zoo/base@{BASE}",
        "relation": "base",
        "kind": "base",
    },
]


def render():
    return merged_card(
        "demo/m",
        META,
        "merge_method: multislerp\n",
        '{"lock_version": 1}\n',
        edges=EDGES,
        results=RESULTS,
        parents_meta={f"demo/bag-0.4@{A}": None},
        plot=True,
        license="apache-2.0",
    )


def test_front_matter_is_the_expected_dict():
    data = yaml.safe_load(render().split("---", 2)[1])
    index = data.pop("model-index")
    assert data == {
        "license": "apache-2.0",
        "tags": [
            "zoo",
            "zoo-merged",
            "sentence-transformers",
            "feature-extraction",
            "merge",
            "multislerp",
            "mteb",
        ],
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "base_model_relation": "merge",
        "base_model": ["demo/bag-0.4", "demo/bag-1.0"],
        "zoo": META,
    }
    name, results = model_index_to_eval_results(index)  # huggingface_hub's own parser
    assert name == "demo/m"
    assert {(r.dataset_name, r.metric_type, r.metric_value) for r in results} == {
        ("ManPageRetrieval", "ndcg_at_10", 0.58),
        ("PyCodeRetrieval", "ndcg_at_10", 0.48),
        ("ManSectionClassification", "accuracy", 0.63),
    }
    assert ModelCard(render()).data.eval_results[0].task_type in {
        "text-retrieval",
        "text-classification",
    }


def test_body_has_lineage_results_and_plot():
    text = render()
    for ref in (f"demo/bag-0.4@{A[:8]}", f"demo/bag-1.0@{B[:8]}", f"zoo/base@{BASE[:8]}"):
        assert ref in text.split("```mermaid")[1].split("```")[0]
    assert "| ManPageRetrieval | retrieval | ndcg_at_10 | 50.00 | 55.00 | 56.00 | 58.00 |" in text
    assert "| **average** | | | 50.00 | 54.00 | 54.67 | 56.33 |" in text
    assert "![Average main score per task type](scores.png)" in text


def test_type_averages():
    avg = type_averages(RESULTS)
    assert avg["retrieval"]["merged"] == pytest.approx(0.53)
    assert avg["average"]["base"] == pytest.approx(0.5)


def test_pure_and_deterministic(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("rendering touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    before = set(sys.modules)
    assert render() == render()
    assert plot_png(RESULTS) == plot_png(RESULTS) and plot_png(RESULTS)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not {
        m
        for m in set(sys.modules) - before
        if m.split(".")[0] in {"torch", "sentence_transformers", "mteb"}
    }


def test_eval_results_files():
    files = eval_results_yaml(RESULTS, "merged")
    assert sorted(files) == [
        ".eval_results/ManPageRetrieval.yaml",
        ".eval_results/ManSectionClassification.yaml",
        ".eval_results/PyCodeRetrieval.yaml",
    ]
    entry = yaml.safe_load(files[".eval_results/ManPageRetrieval.yaml"])[0]
    assert entry["value"] == 0.58 and entry["dataset"] == {
        "id": "zoo-local/ManPageRetrieval",
        "task_id": "ManPageRetrieval",
    }
