"""Task-folder validator: valid folders pass; each defect is a UserError naming file and line."""

import json
import re
from pathlib import Path

import pytest
import yaml

from zoo.data.taskfolder import validate_task_folder
from zoo.errors import UserError


def _folder(root: Path, kind: str, files: dict[str, list], **info) -> Path:
    folder = root / "T"
    folder.mkdir()
    (folder / "task.yaml").write_text(
        yaml.safe_dump({"name": "T", "type": kind, "description": "d", **info})
    )
    for name, rows in files.items():
        (folder / name).write_text(
            "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
        )
    return folder


RETRIEVAL = {
    "corpus.jsonl": [{"id": "d1", "text": "one"}, {"id": "d2", "text": "two"}],
    "queries.jsonl": [
        {"id": "q1", "text": "first", "pos": ["d1"]},
        {"id": "q2", "text": "second", "pos": ["d2", "d1"]},
    ],
}
VALID = [
    ("retrieval", RETRIEVAL),
    ("sts", {"test.jsonl": [{"s1": "a", "s2": "b", "score": 3.5}]}),
    (
        "pair_classification",
        {"test.jsonl": [{"s1": "a", "s2": "b", "label": 1}, {"s1": "a", "s2": "c", "label": 0}]},
    ),
    (
        "classification",
        {"train.jsonl": [{"text": "a", "label": "x"}], "test.jsonl": [{"text": "b", "label": 2}]},
    ),
    (
        "clustering",
        {"test.jsonl": [{"text": "a", "label": "x"}], "train.jsonl": [{"text": "b", "label": "y"}]},
    ),
    (
        "bitext_mining",
        {
            "test.jsonl": [{"s1": "a", "s2": "b"}],
            "train.jsonl": [{"query": "a", "pos": ["b"], "neg": []}],
        },
    ),
]


@pytest.mark.parametrize(("kind", "files"), VALID, ids=[v[0] for v in VALID])
def test_valid_folders_pass(tmp_path, kind, files):
    info = validate_task_folder(_folder(tmp_path, kind, files, main_score="m", instruction="i"))
    assert (info.name, info.type, info.main_score, info.instruction) == ("T", kind, "m", "i")


BROKEN = [
    (
        "retrieval",
        {**RETRIEVAL, "queries.jsonl": [{"id": "q1", "text": "x", "pos": ["d9"]}]},
        r"queries\.jsonl:1: pos id 'd9' is not in corpus\.jsonl",
    ),
    (
        "retrieval",
        {**RETRIEVAL, "queries.jsonl": [{"id": "q1", "text": "x", "pos": ["d1"]}, "{broken"]},
        r"queries\.jsonl:2: invalid JSON",
    ),
    (
        "retrieval",
        {**RETRIEVAL, "corpus.jsonl": [{"id": "d1", "text": "a"}, {"id": "d1", "text": "b"}]},
        r"corpus\.jsonl:2: duplicate id 'd1'",
    ),
    (
        "retrieval",
        {**RETRIEVAL, "queries.jsonl": [{"id": "q1", "text": "x", "pos": []}]},
        r"queries\.jsonl:1: field 'pos' is empty",
    ),
    ("retrieval", {"corpus.jsonl": RETRIEVAL["corpus.jsonl"]}, r"queries\.jsonl: missing"),
    (
        "sts",
        {"test.jsonl": [{"s1": "a", "s2": "b", "score": "high"}]},
        r"test\.jsonl:1: field 'score' must be a number",
    ),
    ("sts", {"test.jsonl": []}, r"test\.jsonl: empty"),
    (
        "pair_classification",
        {"test.jsonl": [{"s1": "a", "s2": "b", "label": 2}]},
        r"test\.jsonl:1: field 'label' must be 0 or 1",
    ),
    ("classification", {"test.jsonl": [{"text": "a", "label": "x"}]}, r"train\.jsonl: missing"),
    ("clustering", {"test.jsonl": [{"text": "a"}]}, r"test\.jsonl:1: missing field 'label'"),
    ("clustering", {"test.jsonl": ["[1, 2]"]}, r"test\.jsonl:1: expected a JSON object"),
    (
        "bitext_mining",
        {"test.jsonl": [{"s1": "a", "s2": "b"}], "train.jsonl": [{"foo": 1}]},
        r"train\.jsonl:1: a training row needs",
    ),
    (
        "bitext_mining",
        {"test.jsonl": [{"s1": "a", "s2": "b"}], "train.jsonl": [{"query": "a", "pos": []}]},
        r"train\.jsonl:1: field 'pos' must be a string or a list",
    ),
]


@pytest.mark.parametrize(("kind", "files", "expected"), BROKEN)
def test_defects_name_the_file_and_line(tmp_path, kind, files, expected):
    with pytest.raises(UserError, match=expected):
        validate_task_folder(_folder(tmp_path, kind, files))


def test_task_yaml_problems(tmp_path):
    folder = _folder(tmp_path, "sts", {"test.jsonl": [{"s1": "a", "s2": "b", "score": 1}]})
    (folder / "task.yaml").write_text("name: T\ntype: reranking\ndescription: d\n")
    with pytest.raises(
        UserError, match=re.escape(str(folder / "task.yaml")) + r": type: Input should be"
    ):
        validate_task_folder(folder)
    (folder / "task.yaml").write_text("name: T\ntype: sts\ndescription: d\nextra: 1\n")
    with pytest.raises(UserError, match=r"task\.yaml: extra: Extra inputs are not permitted"):
        validate_task_folder(folder)
    (folder / "task.yaml").unlink()
    with pytest.raises(UserError, match=r"task\.yaml: missing"):
        validate_task_folder(folder)
    with pytest.raises(UserError, match="not a task folder"):
        validate_task_folder(tmp_path / "nowhere")
