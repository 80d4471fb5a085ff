"""Reports: deterministic JSON, averages, text table, model-index dicts, mteb results folders."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from zoo.eval import (
    EvalReport,
    TaskScore,
    eval_result_dicts,
    evaluate,
    format_report,
    model_meta_stub,
    mteb_results_folder,
)

SHA = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def report(tiny_bert, small_dirs) -> EvalReport:
    return evaluate(
        tiny_bert,
        task_dirs=list(small_dirs.values()),
        cache_dir=False,
        progress=False,
        model_name="org/tiny",
        revision=SHA,
    )


def test_same_model_and_tasks_give_identical_json(report, tiny_bert, small_dirs):
    again = evaluate(
        tiny_bert,
        task_dirs=list(small_dirs.values()),
        cache_dir=False,
        progress=False,
        model_name="org/tiny",
        revision=SHA,
    )
    assert not any(t.cached for t in again.tasks)
    assert again.to_json() == report.to_json()


def test_json_content(report):
    data = json.loads(report.to_json())
    assert data["model"] == {"name": "org/tiny", "revision": SHA, "identity": f"rev:org/tiny@{SHA}"}
    assert data["settings"]["mteb"] and isinstance(data["settings"]["bf16"], bool)
    assert "seconds" not in report.to_json() and "date" not in report.to_json()
    task = data["tasks"][0]
    assert set(task) == {
        "name",
        "type",
        "mteb_type",
        "main_score",
        "score",
        "metrics",
        "split",
        "content_hash",
        "source",
        "dataset",
    }
    assert task["score"] == task["metrics"][task["main_score"]]
    scores = [t.score for t in report.tasks]
    assert data["overall"] == round(sum(scores) / len(scores), 6)
    assert data["per_type"] == {
        t.type: round(t.score, 6) for t in sorted(report.tasks, key=lambda t: t.type)
    }  # one task per type here
    timed = json.loads(report.to_json(timings=True))["timings"]
    assert set(timed) == {t.name for t in report.tasks}
    assert all(v["seconds"] > 0 and v["cached"] is False for v in timed.values())


def _score(name, kind, score):
    return TaskScore(name, kind, "X", "m", score, {"m": score}, "test", "h", "folder", "d")


def test_averages_by_task_and_by_type():
    report = EvalReport(
        "m",
        None,
        "sha256:x",
        {},
        (_score("a", "retrieval", 0.2), _score("b", "retrieval", 0.4), _score("c", "sts", 0.9)),
    )
    assert report.per_type() == pytest.approx({"retrieval": 0.3, "sts": 0.9})
    assert report.overall() == pytest.approx(0.5)
    assert report.overall_by_type() == pytest.approx(0.6)
    empty = EvalReport("m", None, "sha256:x", {}, ())
    assert math.isnan(empty.overall()) and json.loads(empty.to_json())["overall"] is None


def test_format_report(report):
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].startswith(f"org/tiny@{SHA}")
    for task in report.tasks:
        line = next(x for x in lines if x.startswith(task.name + " "))
        assert f"{task.score:.4f}" in line and task.main_score in line and task.type in line
    assert any(x.startswith("mean (task)") and f"{report.overall():.4f}" in x for x in lines)
    assert any(x.startswith("mean sts") for x in lines)


def test_eval_result_dicts_build_hf_eval_results(report):
    from huggingface_hub import EvalResult

    dicts = eval_result_dicts(report)
    assert [d["dataset_name"] for d in dicts] == [t.name for t in report.tasks]
    by_name = {d["dataset_name"]: d for d in dicts}
    sts = by_name["HandSTS"]
    assert sts["task_type"] == "sentence-similarity" and sts["metric_type"] == "cosine_spearman"
    assert sts["dataset_type"] == "zoo-task/HandSTS"
    assert sts["dataset_revision"] == report.tasks[1].content_hash
    assert by_name["ManPageRetrieval"]["task_type"] == "text-retrieval"
    assert by_name["LocaleBitextMining"]["task_type"] == "translation"
    for d in dicts:
        result = EvalResult(**d)
        score = next(t.score for t in report.tasks if t.name == d["dataset_name"])
        assert result.metric_value == round(score, 6)  # the same rounding as to_json()


def test_mteb_results_folder_round_trips(report, tiny_bert, tmp_path):
    from mteb.results import TaskResult

    stub = model_meta_stub(
        tiny_bert,
        name="org/tiny",
        revision=SHA,
        training_datasets=["b", "a"],
        adapted_from="org/base",
    )
    assert stub == {
        "name": "org/tiny",
        "revision": SHA,
        "n_parameters": stub["n_parameters"],
        "embed_dim": 32,
        "max_tokens": 48,
        "training_datasets": ["a", "b"],
        "adapted_from": "org/base",
    }
    assert 10_000 < stub["n_parameters"] < 1_000_000
    folder = mteb_results_folder(report, tmp_path / "out", "org/tiny", SHA, model_meta=stub)
    assert folder == tmp_path / "out" / "results" / "org__tiny" / SHA
    names = {p.name for p in folder.iterdir()}
    assert {f"{t.name}.json" for t in report.tasks} | {"model_meta.json"} <= names
    meta = json.loads((folder / "model_meta.json").read_text())
    assert (meta["name"], meta["revision"], meta["n_parameters"], meta["embed_dim"]) == (
        "org/tiny",
        SHA,
        stub["n_parameters"],
        32,
    )
    assert sorted(meta["training_datasets"]) == ["a", "b"] and meta["adapted_from"] == "org/base"
    for task in report.tasks:
        loaded = TaskResult.from_disk(folder / f"{task.name}.json")
        assert loaded.task_name == task.name
        assert loaded.get_score() == pytest.approx(task.score, abs=1e-6)


def test_results_folder_needs_the_in_memory_report(tmp_path):
    from zoo.errors import UserError

    bare = EvalReport("m", None, "sha256:x", {}, (_score("a", "sts", 0.5),))
    with pytest.raises(UserError, match="no mteb result"):
        mteb_results_folder(bare, tmp_path, "org/m", SHA)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_import_boundaries():
    """mteb only in zoo/eval; zoo/eval never imports huggingface_hub; report.py has no mteb."""
    root = Path(__file__).resolve().parents[2] / "zoo"
    for path in root.rglob("*.py"):
        imported = _imports(path)
        if path.parent.name == "eval":
            assert "huggingface_hub" not in imported, path
        else:
            assert "mteb" not in imported, path
    assert "mteb" not in _imports(root / "eval" / "report.py")
    assert "mteb" not in _imports(root / "eval" / "__init__.py")


def test_reading_reports_does_not_import_mteb():
    import subprocess
    import sys

    code = (
        "import sys; from zoo.eval import EvalReport, format_report; "
        "print('mteb' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
