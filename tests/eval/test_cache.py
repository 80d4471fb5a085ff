"""The result cache: keyed by model identity and task content, never by a model name."""

from __future__ import annotations

import shutil

import pytest
import torch
from sentence_transformers import SentenceTransformer

from tests import tiny as tm
from zoo.eval import evaluate, runner
from zoo.eval import model as eval_model
from zoo.eval.model import resolve_model

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def run(tmp_path):
    cache = tmp_path / "cache"

    def _run(model, dirs, **kwargs):
        return evaluate(model, task_dirs=dirs, cache_dir=cache, progress=False, **kwargs)

    return _run


def _no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded although every task was cached")

    monkeypatch.setattr(runner, "load_model", refuse)


def test_repeat_is_served_from_cache_without_loading_the_model(
    run, tiny_bert, small_dirs, monkeypatch
):
    dirs = list(small_dirs.values())
    first = run(tiny_bert, dirs)
    assert not any(t.cached for t in first.tasks)
    _no_model_loading(monkeypatch)
    second = run(tiny_bert, dirs)
    assert all(t.cached for t in second.tasks)
    assert second.to_json() == first.to_json()
    assert [t.mteb_result for t in second.tasks] == [t.mteb_result for t in first.tasks]


def test_changed_model_is_a_miss(run, tiny_bert, small_dirs, tmp_path):
    dirs = [small_dirs["sts"], small_dirs["pair_classification"]]
    first = run(tiny_bert, dirs)
    other = tm.build_st(tmp_path / "other-bert", "bert", seed=1)  # same name, other weights
    second = run(other, dirs, model_name=first.model_name)
    assert second.model_identity != first.model_identity
    assert not any(t.cached for t in second.tasks)
    assert [t.score for t in second.tasks] != [t.score for t in first.tasks]


def test_edited_config_is_a_miss(run, tiny_bert, small_dirs, tmp_path):
    """Identity covers every model file but README.md: pooling changes results, card edits don't."""
    copy = shutil.copytree(tiny_bert, tmp_path / "copy")
    dirs = [small_dirs["sts"]]
    first = run(copy, dirs)
    (copy / "README.md").write_text("# a new card\n")
    assert run(copy, dirs).tasks[0].cached
    pooling = copy / "1_Pooling" / "config.json"
    text = pooling.read_text()
    assert '"pooling_mode": "cls"' in text
    pooling.write_text(text.replace('"pooling_mode": "cls"', '"pooling_mode": "mean"'))
    third = run(copy, dirs)
    assert third.model_identity != first.model_identity and not third.tasks[0].cached
    assert third.tasks[0].score != first.tasks[0].score


def test_changed_task_folder_is_a_miss_for_that_task_only(run, tiny_bert, small_dirs, tmp_path):
    sts = shutil.copytree(small_dirs["sts"], tmp_path / "sts")
    pairs = small_dirs["pair_classification"]
    first = run(tiny_bert, [sts, pairs])
    with (sts / "test.jsonl").open("a") as f:
        f.write('{"s1": "A red car.", "s2": "A crimson automobile.", "score": 4.5}\n')
    second = run(tiny_bert, [sts, pairs])
    assert [t.cached for t in second.tasks] == [False, True]
    assert second.tasks[0].content_hash != first.tasks[0].content_hash


def test_bf16_setting_is_part_of_the_key(run, tiny_bert, small_dirs):
    dirs = [small_dirs["sts"]]
    run(tiny_bert, dirs, bf16=False)
    assert not run(tiny_bert, dirs, bf16=True).tasks[0].cached
    assert run(tiny_bert, dirs, bf16=False).tasks[0].cached


def test_pinned_revision_is_the_identity(tiny_bert, tmp_path):
    """A 40-hex revision keys the cache (the Hub commit); a branch name cannot (it moves)."""
    assert resolve_model(tiny_bert, "org/m", SHA).identity == f"rev:org/m@{SHA}"
    by_files = resolve_model(tiny_bert, "org/m", None).identity
    assert by_files.startswith("sha256:")
    assert resolve_model(tiny_bert, "org/m", "main").identity == by_files
    copy = shutil.copytree(tiny_bert, tmp_path / "same-files-elsewhere")
    assert resolve_model(copy, "org/m", None).identity == by_files


def test_loaded_model_identity_follows_its_weights(tiny_bert):
    model = SentenceTransformer(str(tiny_bert), device="cpu", local_files_only=True)
    before = resolve_model(model, None, None).identity
    again = SentenceTransformer(str(tiny_bert), device="cpu", local_files_only=True)
    assert resolve_model(again, None, None).identity == before
    with torch.no_grad():
        next(iter(model.parameters())).add_(1e-3)
    assert resolve_model(model, None, None).identity != before
    model.max_seq_length = 16
    assert eval_model.loaded_identity(model) != eval_model.loaded_identity(again)


def test_no_cache_writes_nothing(tiny_bert, small_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_EVAL_CACHE", str(tmp_path / "default"))
    evaluate(tiny_bert, task_dirs=[small_dirs["sts"]], cache_dir=False, progress=False)
    assert not (tmp_path / "default").exists()
    evaluate(tiny_bert, task_dirs=[small_dirs["sts"]], progress=False)  # None: the default
    assert list((tmp_path / "default").rglob("HandSTS.*.json"))


def test_corrupt_entry_is_recomputed(run, tiny_bert, small_dirs, tmp_path):
    dirs = [small_dirs["sts"]]
    first = run(tiny_bert, dirs)
    (entry,) = (tmp_path / "cache").rglob("HandSTS.*.json")
    entry.write_text("{not json")
    second = run(tiny_bert, dirs)
    assert not second.tasks[0].cached and second.to_json() == first.to_json()
    assert run(tiny_bert, dirs).tasks[0].cached


def test_cached_standard_task_needs_no_hub(tiny_bert, tmp_path, no_network):
    """The cache is consulted before any Hub data is loaded, so cached MTEB scores work offline."""
    import mteb

    from zoo.eval import standard
    from zoo.eval.cache import ResultStore, cache_key

    task = standard.resolve_names(["STS12"])[0]
    spec = resolve_model(tiny_bert, None, None)
    settings = {"bf16": False, "mteb": mteb.__version__}
    record = {
        "name": "STS12",
        "type": "sts",
        "mteb_type": "STS",
        "main_score": "cosine_spearman",
        "score": 0.25,
        "metrics": {"cosine_spearman": 0.25},
        "split": "test",
        "content_hash": standard.content_hash(task),
        "source": "mteb",
        "dataset": standard.dataset_ids(task)[0],
        "seconds": 1.0,
        "mteb_result": {},
    }
    key = cache_key(spec.identity, "STS12", record["content_hash"], settings)
    ResultStore(tmp_path / "cache").put(key, record)
    report = evaluate(
        tiny_bert, tasks=["STS12"], cache_dir=tmp_path / "cache", bf16=False, progress=False
    )
    assert report.tasks[0].cached and report.tasks[0].score == 0.25
    assert no_network == []
