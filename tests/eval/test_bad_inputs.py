"""Bad input is a one-line UserError that names the culprit; nothing runs before it is caught."""

from __future__ import annotations

import shutil

import pytest

from tests.eval import helpers
from zoo.errors import UserError
from zoo.eval import evaluate, standard


def _error(tiny_bert, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        evaluate(tiny_bert, cache_dir=False, progress=False, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def test_unknown_task_name_suggests_the_closest(tiny_bert):
    message = _error(tiny_bert, tasks=["Banking77Clasification"])
    assert "'Banking77Clasification'" in message
    assert "did you mean 'Banking77Classification'?" in message


def test_unknown_benchmark_name_suggests_the_closest(tiny_bert):
    message = _error(tiny_bert, tasks=["MTEB(eng, v3)"])
    assert "did you mean 'MTEB(eng, v" in message


def test_hopeless_name_has_no_suggestion(tiny_bert):
    message = _error(tiny_bert, tasks=["zzqqxxj"])
    assert "'zzqqxxj'" in message and "did you mean" not in message


def test_standard_task_offline_names_the_task(tiny_bert, no_network):
    message = _error(tiny_bert, tasks=["STS12"])
    assert "'STS12'" in message and "mteb/sts12-sts@" in message
    assert "HF_HUB_OFFLINE" in message and "--task-dir" in message
    assert no_network == []  # refused before any connection attempt


def test_standard_task_unreachable_hub_names_the_task(tiny_bert, monkeypatch):
    """When loading fails for a network reason, the error names the task and the cause."""
    task = standard.resolve_names(["STS12"])[0]

    def fail(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'mteb/sts12-sts' on the Hub (LocalEntryNotFound)")

    monkeypatch.setattr(type(task), "load_data", fail)
    with pytest.raises(UserError, match=r"^MTEB task 'STS12' needs its dataset .*Couldn't reach"):
        standard.load_data(task)


def test_standard_task_bug_is_not_a_user_error(monkeypatch):
    task = standard.resolve_names(["STS12"])[0]

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(type(task), "load_data", bug)
    with pytest.raises(ZeroDivisionError):
        standard.load_data(task)


def test_benchmark_expands_to_its_tasks_offline():
    tasks = standard.resolve_names(["MTEB(eng, v2)", "STS12"])
    names = [t.metadata.name for t in tasks]
    assert len(names) == len(set(names)) > 10 and "STS12" in names


@pytest.fixture
def good_retrieval(tiny_suite, tmp_path):
    return helpers.trimmed_copy(tiny_suite / "ood/PyPackageReadmeRetrieval", tmp_path / "R", 5, 5)


def test_missing_file(tiny_bert, good_retrieval):
    (good_retrieval / "corpus.jsonl").unlink()
    message = _error(tiny_bert, task_dirs=[good_retrieval])
    assert message.startswith(f"{good_retrieval / 'corpus.jsonl'}: missing")


def test_bad_json_line(tiny_bert, good_retrieval):
    with (good_retrieval / "queries.jsonl").open("a") as f:
        f.write('{"id": "x", "text": \n')
    message = _error(tiny_bert, task_dirs=[good_retrieval])
    assert message.startswith(f"{good_retrieval / 'queries.jsonl'}:6: invalid JSON")


def test_unknown_type(tiny_bert, good_retrieval):
    yaml_path = good_retrieval / "task.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("type: retrieval", "type: retreival"))
    message = _error(tiny_bert, task_dirs=[good_retrieval])
    assert message.startswith(f"{yaml_path}: type:")


def test_qrels_pointing_to_a_missing_document(tiny_bert, good_retrieval):
    with (good_retrieval / "queries.jsonl").open("a") as f:
        f.write('{"id": "qx", "text": "where is it", "pos": ["no-such-doc"]}\n')
    message = _error(tiny_bert, task_dirs=[good_retrieval])
    assert message == (
        f"{good_retrieval / 'queries.jsonl'}:6: pos id 'no-such-doc' is not in corpus.jsonl"
    )


def test_not_a_folder(tiny_bert, tmp_path):
    message = _error(tiny_bert, task_dirs=[tmp_path / "nope"])
    assert "nope" in message and "not a task folder" in message


def test_unknown_main_score_lists_the_metrics(tiny_bert, sts_dir, tmp_path):
    folder = shutil.copytree(sts_dir, tmp_path / "S")
    yaml_path = folder / "task.yaml"
    yaml_path.write_text(yaml_path.read_text() + "main_score: ndcg_at_10\n")
    message = _error(tiny_bert, task_dirs=[folder])
    assert message.startswith(f"{yaml_path}: main_score 'ndcg_at_10' is not a metric of sts")
    assert "cosine_spearman" in message


def test_classification_label_missing_from_train(tiny_bert, tmp_path):
    rows = [{"text": f"text {i}", "label": "a" if i % 2 else "b"} for i in range(10)]
    folder = helpers.write_task(
        tmp_path / "C",
        "C",
        "classification",
        {"train.jsonl": rows, "test.jsonl": [{"text": "x", "label": "z"}]},
    )
    message = _error(tiny_bert, task_dirs=[folder])
    assert message.startswith(f"{folder / 'test.jsonl'}: label 'z' never occurs in train.jsonl")


def test_unsafe_task_name(tiny_bert, sts_dir, tmp_path):
    folder = shutil.copytree(sts_dir, tmp_path / "S")
    yaml_path = folder / "task.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("name: HandSTS", "name: ../evil"))
    assert "name '../evil' must be" in _error(tiny_bert, task_dirs=[folder])


def test_same_task_twice(tiny_bert, sts_dir, tmp_path):
    copy = shutil.copytree(sts_dir, tmp_path / "again")
    message = _error(tiny_bert, task_dirs=[sts_dir, copy])
    assert "task name 'HandSTS' given twice" in message and str(copy) in message


def test_nothing_to_do(tiny_bert):
    assert "nothing to evaluate" in _error(tiny_bert)


def test_missing_model_folder(tmp_path, sts_dir):
    with pytest.raises(UserError, match=r"no such model folder.*zoo pull"):
        evaluate(tmp_path / "no-model", task_dirs=[sts_dir], cache_dir=False, progress=False)


def test_folder_that_is_not_a_model(tmp_path, sts_dir):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match=r"junk: not a loadable sentence-transformers model"):
        evaluate(tmp_path / "junk", task_dirs=[sts_dir], cache_dir=False, progress=False)


def test_bad_batch_size_and_bf16(tiny_bert, sts_dir):
    assert "batch_size" in _error(tiny_bert, task_dirs=[sts_dir], batch_size=0)
    assert "bf16 must be" in _error(tiny_bert, task_dirs=[sts_dir], bf16="yes")


@pytest.mark.parametrize(
    "kind, files, culprit, words",
    [
        (
            "sts",
            {"test.jsonl": [{"s1": "a", "s2": "b", "score": 2}] * 3},
            "test.jsonl",
            "every score is 2.0",
        ),
        (
            "classification",
            {
                "train.jsonl": [{"text": "a", "label": "x"}] * 3,
                "test.jsonl": [{"text": "b", "label": "x"}],
            },
            "train.jsonl",
            "every row has label 'x'",
        ),
        (
            "clustering",
            {"test.jsonl": [{"text": "a", "label": 1}] * 3},
            "test.jsonl",
            "every row has label 1",
        ),
    ],
)
def test_degenerate_labels_and_scores(tiny_bert, tmp_path, kind, files, culprit, words):
    folder = helpers.write_task(tmp_path / "T", "Degenerate", kind, files)
    message = _error(tiny_bert, task_dirs=[folder])
    assert message.startswith(f"{folder / culprit}: {words}")
