"""The offline suite: tiny builds without apt; complete, valid, disjoint and deterministic."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zoo.data.corpus import load_corpus
from zoo.data.jsonl import read_jsonl
from zoo.data.spec import load_corpus_spec
from zoo.data.suite import build_suite
from zoo.data.suite.common import norm
from zoo.data.suite.requirements import SourceInfo, check_sources
from zoo.data.taskfolder import validate_task_folder
from zoo.errors import UserError
from zoo.hashing import sha256_file


def _stats(suite: Path) -> dict:
    return json.loads((suite / "stats.json").read_text())


def _tasks(suite: Path, group: str) -> list[dict]:
    return [t for t in _stats(suite)["tasks"] if t["group"] == group]


def _row_key(row: dict) -> str:
    """The normalised text a non-retrieval row is known by."""
    return norm(row.get("text") or row.get("s1") or row.get("query"))


def test_tiny_has_the_required_tasks(tiny_suite):
    train = _tasks(tiny_suite, "in-domain")
    assert len(train) >= 5 and all(t["train_type"] for t in train)
    assert len({t["train_type"] for t in train}) >= 3
    ood = _tasks(tiny_suite, "ood")
    assert len(ood) >= 2 and not any(t["train_type"] for t in ood)
    assert {t["source"] for t in ood}.isdisjoint({t["source"] for t in train})
    new = _tasks(tiny_suite, "new-domain")
    assert {t["source"] for t in new} == {"bible"}
    assert {"BibleKjvWebBitext", "BibleGenreClassification"} <= {t["name"] for t in new}
    assert all(
        t["train_type"] and t["counts"]["train.jsonl"] > 0 and len(t["counts"]) >= 2 for t in new
    )


def test_every_task_folder_is_valid_and_counts_match(tiny_suite):
    for task in _stats(tiny_suite)["tasks"]:
        folder = tiny_suite / task["group"] / task["name"]
        info = validate_task_folder(folder)
        assert (info.name, info.type) == (task["name"], task["type"])
        for name, count in task["counts"].items():
            assert len(read_jsonl(folder / name)) == count > 0


def test_stats_checksums_cover_every_file(tiny_suite):
    stats = _stats(tiny_suite)
    files = {p.relative_to(tiny_suite).as_posix() for p in tiny_suite.rglob("*") if p.is_file()}
    assert set(stats["files"]) == files - {"stats.json"}
    for rel, digest in stats["files"].items():
        assert sha256_file(tiny_suite / rel) == digest
    readme = (tiny_suite / "README.md").read_text()
    for name, source in stats["sources"].items():
        assert source["licence"] and source["licence"] in readme and name in readme


def test_retrieval_test_queries_are_disjoint_from_training_pairs(tiny_suite):
    checked = 0
    for task in _stats(tiny_suite)["tasks"]:
        folder = tiny_suite / task["group"] / task["name"]
        if task["type"] != "retrieval" or not (folder / "train.jsonl").exists():
            continue
        train = read_jsonl(folder / "train.jsonl")
        seen = {norm(r["query"]) for r in train} | {norm(p) for r in train for p in r["pos"]}
        corpus = {d["id"]: d["text"] for d in read_jsonl(folder / "corpus.jsonl")}
        for q in read_jsonl(folder / "queries.jsonl"):
            assert norm(q["text"]) not in seen
            assert not {norm(corpus[i]) for i in q["pos"]} & seen
        checked += 1
    assert checked >= 2


def _row_key(row: dict) -> str:
    return norm(row.get("text") or row.get("s1") or row.get("query"))


def test_other_test_rows_are_disjoint_from_training_rows(tiny_suite):
    for task in _stats(tiny_suite)["tasks"]:
        folder = tiny_suite / task["group"] / task["name"]
        if task["type"] == "retrieval" or not (folder / "train.jsonl").exists():
            continue
        assert not {_row_key(r) for r in read_jsonl(folder / "test.jsonl")} & {
            _row_key(r) for r in read_jsonl(folder / "train.jsonl")
        }


def test_corpus_specs_load_with_the_spec_loader(tiny_suite):
    for spec_file, group in (("corpus.yaml", "in-domain"), ("new-domain.yaml", "new-domain")):
        corpus = load_corpus(load_corpus_spec(tiny_suite / spec_file))
        assert [d.name for d in corpus.datasets] == [
            t["name"] for t in _tasks(tiny_suite, group) if t["train_type"]
        ]
        assert all(len(d) > 0 for d in corpus.datasets)
        assert corpus.spec.ratios == (0.4, 0.6, 0.8, 1.0)


def test_building_again_in_another_process_gives_identical_files(tiny_suite, tmp_path):
    code = "import sys; from pathlib import Path; from zoo.data.suite import build_suite; "
    code += "build_suite('tiny', Path(sys.argv[1]))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # set and dict order must not matter
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "again")], check=True, env=env)
    again = tmp_path / "again"
    assert (again / "stats.json").read_bytes() == (tiny_suite / "stats.json").read_bytes()
    # rebuilding over a previous suite replaces it; other folders are refused
    assert build_suite("tiny", again) == again
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="--out: .* is not an empty folder or a previous suite"):
        build_suite("tiny", tmp_path / "other")


def test_bad_size_and_missing_sources_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="--size: expected one of tiny, small, full"):
        build_suite("huge", tmp_path / "x")
    fake = SourceInfo(
        name="fake",
        title="t",
        licence="l",
        debs=("zoo-no-such-package",),
        pip=("zoo_no_such_module",),
        paths=("/nonexistent/zoo/*.dat",),
    )
    with pytest.raises(
        UserError, match=r"fake: deb zoo-no-such-package, pip zoo_no_such_module, file /nonexistent"
    ) as err:
        check_sources([fake], "small")
    assert "make suite" in str(err.value)


def test_data_layer_never_imports_huggingface_hub():
    root = Path(__file__).parents[2] / "zoo" / "data"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, (ast.Import, ast.ImportFrom))
                else []
            )
            module = node.module if isinstance(node, ast.ImportFrom) else ""
            assert "huggingface_hub" not in (module or "") and not any(
                n.startswith("huggingface_hub") for n in names
            ), path


def test_task_yaml_has_only_contract_fields(tiny_suite):
    for path in tiny_suite.rglob("task.yaml"):
        assert set(yaml.safe_load(path.read_text())) <= {
            "name",
            "type",
            "description",
            "main_score",
            "instruction",
        }


def test_zoo_data_suite_build_push_publishes_a_dataset_repo(tmp_path, capsys):
    from zoo.cli import main
    from zoo.hub.session import open_hub

    hub_dir, out = tmp_path / "hub", tmp_path / "suite"
    argv = ["data", "suite", "build", "--size", "tiny", "--out", str(out), "--json"]
    assert main([*argv, "--push", "not a repo id", "--hub", str(hub_dir)]) == 2
    assert not hub_dir.exists() and not out.exists()  # refused before any work
    capsys.readouterr()
    assert main([*argv, "--push", "zoo/tiny-suite", "--hub", str(hub_dir)]) == 0
    pushed = json.loads(capsys.readouterr().out)["pushed"]
    repo, _, sha = pushed.partition("@")
    with open_hub(str(hub_dir), None) as h:
        files = h.api.list_repo_files(repo, repo_type="dataset", revision=sha)
    assert repo == "zoo/tiny-suite" and "corpus.yaml" in files and "stats.json" in files
