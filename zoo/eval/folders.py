"""Local task folders (CLI-CONTRACT.md) as mteb custom tasks: no Hub, no network.

One mteb abstract class per folder type; the main score is task.yaml's `main_score` or the
type's default (zoo.tasks.TASK_TYPES, which also names the mteb type). Each folder becomes a
fresh subclass whose `metadata` is a class attribute (mteb's `unload_data` drops instance
attributes named `metadata`) and whose `load_data` reads the JSON Lines files. Rows are kept in
file order, so the same folder always gives the same task. The evaluation knobs set here
(classification samples, clustering resampling) are part of what a score means: change them only
together with cache._FORMAT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks import (
    AbsTask,
    AbsTaskBitextMining,
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata

from zoo.data.jsonl import read_jsonl
from zoo.data.taskfolder import TaskInfo, validate_task_folder
from zoo.errors import UserError
from zoo.hashing import digest_sha256, folder_digest, skip_hidden
from zoo.tasks import TASK_TYPES

# The mteb abstract class of each task type (zoo.tasks.TASK_TYPES); the loaders are at the end.
_BASES: dict[str, type[AbsTask]] = {
    "retrieval": AbsTaskRetrieval,
    "sts": AbsTaskSTS,
    "pair_classification": AbsTaskPairClassification,
    "classification": AbsTaskClassification,
    "clustering": AbsTaskClustering,
    "bitext_mining": AbsTaskBitextMining,
}
# task.yaml has no language field: say "undetermined language, any script" (ISO 639 und,
# ISO 15924 Zyyy) rather than guess; mteb's language check accepts it.
_LANGS = ["und-Zyyy"]
_SPLIT = "test"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class FolderTask:
    """A validated task folder: its task.yaml, content hash and the mteb task class."""

    path: Path
    info: TaskInfo
    content_hash: str
    main_score: str
    task_class: type[AbsTask]

    def build(self) -> AbsTask:
        """Return a fresh mteb task object for this folder (its data loads on first use)."""
        return self.task_class()


def load_task_folder(path: str | Path) -> FolderTask:
    """Validate a task folder and describe it; raise UserError naming the file and line.

    Reads every file once to check it and once to hash it; does not modify anything and does
    not touch the network. The content hash covers every file in the folder (names and bytes),
    so any edit, including to an optional train.jsonl, gives a new hash.
    """
    folder = Path(path)
    info = validate_task_folder(folder)
    if not _SAFE_NAME.match(info.name):
        raise UserError(
            f"{folder / 'task.yaml'}: name {info.name!r} must be letters, digits, '.', '_' or '-' "
            "(it names result files)"
        )
    main = info.main_score or TASK_TYPES[info.type].main_score
    content_hash = folder_content_hash(folder)
    cls = _task_class(folder, info, main, content_hash)
    return FolderTask(folder, info, content_hash, main, cls)


def folder_content_hash(folder: Path) -> str:
    """sha256 over the (relative path, sha256) pairs of every file under folder but hidden ones."""
    return digest_sha256(folder_digest(folder, skip=skip_hidden))


def _task_class(folder: Path, info: TaskInfo, main: str, content_hash: str) -> type[AbsTask]:
    """Make the mteb subclass for one folder: metadata plus type-specific loader and knobs."""
    metadata = TaskMetadata(
        name=info.name,
        description=info.description,
        type=TASK_TYPES[info.type].mteb_type,
        main_score=main,
        eval_splits=[_SPLIT],
        eval_langs=_LANGS,
        category="t2t",
        modalities=["text"],
        prompt=info.instruction,
        dataset={"path": f"zoo-task/{info.name}", "revision": content_hash},
    )
    attrs: dict[str, Any] = {"metadata": metadata, "__module__": __name__}
    attrs["_add_main_score"] = _main_score_checker(folder / "task.yaml", info.type)
    attrs.update(_LOADERS[info.type](folder))
    name = f"ZooTask_{info.name.replace('.', '_').replace('-', '_')}"
    return type(name, (_BASES[info.type],), attrs)


def _main_score_checker(yaml_path: Path, kind: str):
    """mteb's _add_main_score, but an unknown main_score is a UserError listing the metrics."""

    def _add_main_score(self, scores: dict) -> None:
        name = self.metadata.main_score
        if name not in scores:
            known = sorted(k for k, v in scores.items() if isinstance(v, float))
            raise UserError(
                f"{yaml_path}: main_score {name!r} is not a metric of {kind} tasks "
                f"(one of: {', '.join(known)})"
            )
        scores["main_score"] = scores[name]

    return _add_main_score


def _rows(folder: Path, name: str) -> list[dict]:
    return read_jsonl(folder / name)


def _set_dataset(self: AbsTask, dataset: Any) -> None:
    self.dataset = dataset
    self.data_loaded = True


def _retrieval(folder: Path) -> dict[str, Any]:
    """Queries, corpus and qrels (every listed positive has relevance 1)."""

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        corpus = _rows(folder, "corpus.jsonl")
        queries = _rows(folder, "queries.jsonl")
        split = RetrievalSplitData(
            corpus=Dataset.from_dict(
                {"id": [d["id"] for d in corpus], "text": [d["text"] for d in corpus]}
            ),
            queries=Dataset.from_dict(
                {"id": [q["id"] for q in queries], "text": [q["text"] for q in queries]}
            ),
            relevant_docs={q["id"]: {d: 1 for d in q["pos"]} for q in queries},
            top_ranked=None,
        )
        _set_dataset(self, {"default": {_SPLIT: split}})

    return {"load_data": load_data}


def _sts(folder: Path) -> dict[str, Any]:
    """Sentence pairs with gold scores; the score range is read from the data."""
    rows = _rows(folder, "test.jsonl")
    scores = [float(r["score"]) for r in rows]
    if min(scores) == max(scores):
        raise UserError(
            f"{folder / 'test.jsonl'}: every score is {scores[0]} (a correlation "
            "needs at least two different scores)"
        )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        columns = {
            "sentence1": [r["s1"] for r in rows],
            "sentence2": [r["s2"] for r in rows],
            "score": scores,
        }
        _set_dataset(self, DatasetDict({_SPLIT: Dataset.from_dict(columns)}))

    # min/max only rescale the gold scores linearly; correlations do not depend on them.
    return {"load_data": load_data, "min_score": min(scores), "max_score": max(scores)}


def _pair_classification(folder: Path) -> dict[str, Any]:
    """Sentence pairs with 0/1 labels (mteb's column is `labels`)."""

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        rows = _rows(folder, "test.jsonl")
        columns = {
            "sentence1": [r["s1"] for r in rows],
            "sentence2": [r["s2"] for r in rows],
            "labels": [int(r["label"]) for r in rows],
        }
        _set_dataset(self, DatasetDict({_SPLIT: Dataset.from_dict(columns)}))

    return {"load_data": load_data}


def _label_ids(*splits: list[dict]) -> dict[str, int]:
    """Map every label (string or int) to an int, in sorted order of its string form."""
    labels = {str(r["label"]) for rows in splits for r in rows}
    return {label: i for i, label in enumerate(sorted(labels))}


def _need_two_labels(path: Path, rows: list[dict]) -> None:
    if len({str(r["label"]) for r in rows}) < 2:
        raise UserError(f"{path}: every row has label {rows[0]['label']!r} (needs at least two)")


def _labelled(rows: list[dict], ids: dict[str, int], text_col: str, label_col: str) -> Dataset:
    return Dataset.from_dict(
        {text_col: [r["text"] for r in rows], label_col: [ids[str(r["label"])] for r in rows]}
    )


def _classification(folder: Path) -> dict[str, Any]:
    """Logistic regression on train.jsonl embeddings, 10 seeded undersamplings of 32 per label."""
    train, test = _rows(folder, "train.jsonl"), _rows(folder, "test.jsonl")
    ids = _label_ids(train, test)
    _need_two_labels(folder / "train.jsonl", train)
    missing = sorted({str(r["label"]) for r in test} - {str(r["label"]) for r in train})
    if missing:
        raise UserError(
            f"{folder / 'test.jsonl'}: label {missing[0]!r} never occurs in train.jsonl "
            "(a classifier cannot predict it)"
        )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        splits = {"train": _labelled(train, ids, "text", "label")}
        splits[_SPLIT] = _labelled(test, ids, "text", "label")
        _set_dataset(self, DatasetDict(splits))

    return {"load_data": load_data, "samples_per_label": 32, "n_experiments": 10}


def _clustering(folder: Path) -> dict[str, Any]:
    """k-means with k = number of labels on all rows; 10 seeded bootstrap resamples of n rows."""
    rows = _rows(folder, "test.jsonl")
    ids = _label_ids(rows)
    _need_two_labels(folder / "test.jsonl", rows)

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        _set_dataset(self, DatasetDict({_SPLIT: _labelled(rows, ids, "sentences", "labels")}))

    # mteb's defaults embed 4% of the rows and resample 16,384 of them: right for 100k-row sets,
    # wrong for a few hundred. Embed everything and resample as many rows as there are.
    return {
        "load_data": load_data,
        "max_fraction_of_documents_to_embed": None,
        "max_document_to_embed": None,
        "max_documents_per_cluster": len(rows),
        "n_clusters": 10,
    }


def _bitext_mining(folder: Path) -> dict[str, Any]:
    """Aligned pairs: each s1 must retrieve its own s2 among all s2."""

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        rows = _rows(folder, "test.jsonl")
        columns = {"sentence1": [r["s1"] for r in rows], "sentence2": [r["s2"] for r in rows]}
        _set_dataset(self, DatasetDict({_SPLIT: Dataset.from_dict(columns)}))

    return {"load_data": load_data}


_LOADERS = {
    "retrieval": _retrieval,
    "sts": _sts,
    "pair_classification": _pair_classification,
    "classification": _classification,
    "clustering": _clustering,
    "bitext_mining": _bitext_mining,
}
