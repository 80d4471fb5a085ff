"""Every task-folder type runs offline through mteb, with the right class, metric and numbers."""

from __future__ import annotations

import pytest
from mteb.abstasks import (
    AbsTaskBitextMining,
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
)

from tests.eval import helpers
from zoo.eval import evaluate
from zoo.eval.folders import load_task_folder

EXPECTED = {  # type -> (mteb class, default main score, some other metrics mteb must report)
    "retrieval": (AbsTaskRetrieval, "ndcg_at_10", {"map_at_10", "mrr_at_10", "recall_at_1"}),
    "sts": (AbsTaskSTS, "cosine_spearman", {"cosine_pearson", "euclidean_spearman"}),
    "pair_classification": (AbsTaskPairClassification, "max_ap", {"cosine_ap", "max_f1"}),
    "classification": (AbsTaskClassification, "accuracy", {"f1", "f1_weighted"}),
    "clustering": (AbsTaskClustering, "v_measure", {"v_measure_std", "ami"}),
    "bitext_mining": (AbsTaskBitextMining, "f1", {"accuracy", "precision", "recall"}),
}


def test_every_type_offline_on_tiny_bert(tiny_bert, suite_dirs, sts_dir, no_network):
    """The whole tiny suite plus an STS folder: 6 types, no socket opened, scores in range."""
    dirs = [*suite_dirs, sts_dir]
    report = evaluate(tiny_bert, task_dirs=dirs, cache_dir=False, progress=False)
    assert no_network == []
    assert {t.type for t in report.tasks} == set(EXPECTED)
    assert [t.name for t in report.tasks] == [load_task_folder(d).info.name for d in dirs]
    for task in report.tasks:
        cls, main, others = EXPECTED[task.type]
        assert issubclass(
            load_task_folder(next(d for d in dirs if d.name == task.name)).task_class, cls
        )
        assert task.main_score == main
        assert task.score == pytest.approx(task.metrics[main])
        assert others <= set(task.metrics), task.name
        assert (-1.0 if task.type == "sts" else 0.0) <= task.score <= 1.0
        assert task.split == "test" and task.source == "folder" and not task.cached


def _oracle_dirs(root):
    """Tasks any deterministic model solves perfectly: the answer is the identical text."""
    animals = ["cat", "dog", "bird", "fox", "owl", "cow"]
    things = ["mat", "rug", "bed", "box", "log", "hay"]
    texts = [f"the {a} sat on the {t} near the door" for a, t in zip(animals, things)]
    docs = [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]
    queries = [{"id": f"q{i}", "text": t, "pos": [f"d{i}"]} for i, t in enumerate(texts)]
    pairs = [{"s1": t, "s2": t, "label": 1} for t in texts]
    pairs += [{"s1": t, "s2": texts[i - 1], "label": 0} for i, t in enumerate(texts)]
    return [
        helpers.write_task(
            root / "R",
            "OracleRetrieval",
            "retrieval",
            {"corpus.jsonl": docs, "queries.jsonl": queries},
        ),
        helpers.write_task(
            root / "B",
            "OracleBitext",
            "bitext_mining",
            {"test.jsonl": [{"s1": t, "s2": t} for t in texts]},
        ),
        helpers.write_task(root / "P", "OraclePairs", "pair_classification", {"test.jsonl": pairs}),
    ]


def test_oracle_tasks_score_exactly_one(tiny_bert, tmp_path, no_network):
    """Identical texts embed identically, so even a random model gets perfect scores."""
    report = evaluate(
        tiny_bert, task_dirs=_oracle_dirs(tmp_path), cache_dir=False, progress=False, bf16=False
    )
    scores = {t.name: t for t in report.tasks}
    assert scores["OracleRetrieval"].score == pytest.approx(1.0)
    assert scores["OracleRetrieval"].metrics["recall_at_1"] == pytest.approx(1.0)
    assert scores["OracleBitext"].score == pytest.approx(1.0)
    assert scores["OraclePairs"].score == pytest.approx(1.0)


def test_main_score_from_task_yaml(tiny_bert, tmp_path):
    folder = helpers.write_task(
        tmp_path / "S",
        "StsPearson",
        "sts",
        {"test.jsonl": [{"s1": a, "s2": b, "score": s} for a, b, s in helpers.STS_PAIRS]},
        main_score="cosine_pearson",
    )
    task = evaluate(tiny_bert, task_dirs=[folder], cache_dir=False, progress=False).tasks[0]
    assert task.main_score == "cosine_pearson"
    assert task.score == task.metrics["cosine_pearson"] != task.metrics["cosine_spearman"]


def test_string_and_int_labels_both_work(tiny_bert, tmp_path):
    rows = [{"text": f"sample number {i} of kind {i % 3}", "label": i % 3} for i in range(30)]
    folder = helpers.write_task(
        tmp_path / "C",
        "IntLabels",
        "classification",
        {"train.jsonl": rows, "test.jsonl": rows[:12]},
    )
    task = evaluate(tiny_bert, task_dirs=[folder], cache_dir=False, progress=False).tasks[0]
    assert 0.0 <= task.score <= 1.0


def test_standard_mteb_task_path(tiny_bert, monkeypatch):
    """A registry task runs through the same path (its Hub download replaced by local rows)."""
    from datasets import Dataset, DatasetDict

    from zoo.eval import eval_result_dicts, standard

    task_class = type(standard.resolve_names(["STS12"])[0])
    loads = []

    def load_data(self, num_proc=None, **kwargs):
        loads.append(self.metadata.name)
        rows = {
            "sentence1": [a for a, _, _ in helpers.STS_PAIRS],
            "sentence2": [b for _, b, _ in helpers.STS_PAIRS],
            "score": [s for _, _, s in helpers.STS_PAIRS],
        }
        self.dataset = DatasetDict({"test": Dataset.from_dict(rows)})
        self.data_loaded = True

    monkeypatch.setattr(task_class, "load_data", load_data)
    report = evaluate(tiny_bert, tasks=["STS12"], cache_dir=False, progress=False)
    (task,) = report.tasks
    assert loads == ["STS12"]
    assert (task.name, task.type, task.mteb_type, task.source) == ("STS12", "sts", "STS", "mteb")
    assert task.main_score == "cosine_spearman" and task.split == "test"
    assert task.dataset == "mteb/sts12-sts@a0d554a64d88156834ff5ae9920b964011b16384"
    (hf,) = eval_result_dicts(report)
    assert (hf["dataset_type"], hf["dataset_revision"]) == (
        "mteb/sts12-sts",
        "a0d554a64d88156834ff5ae9920b964011b16384",
    )
