"""The task types: one table read by the task-folder checker, the corpus spec, eval and the cards.

A task type has one name everywhere zoo writes it (task.yaml `type`, eval reports, cards), which
is mteb's type name in snake case (`PairClassification` -> `pair_classification`); a corpus spec
spells pair classification `pair` (published specs and bag fingerprints use that spelling).
Plain data, no heavy imports: every layer may import this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

# The Hub's task id (huggingface.js packages/tasks/src/pipelines.ts, PIPELINE_DATA) for each mteb
# text task type, exactly as mteb's TaskMetadata._hf_task_type maps them (mteb 2.26.24). The Hub
# has no clustering task: mteb files clustering under text-classification, and so does zoo.
HUB_TASKS: Mapping[str, str] = MappingProxyType(
    {
        "BitextMining": "translation",
        "Classification": "text-classification",
        "MultilabelClassification": "text-classification",
        "Clustering": "text-classification",
        "PairClassification": "text-classification",
        "Reranking": "text-ranking",
        "Retrieval": "text-retrieval",
        "InstructionRetrieval": "text-retrieval",
        "InstructionReranking": "text-ranking",
        "STS": "sentence-similarity",
        "Summarization": "summarization",
    }
)
OTHER_HUB_TASK = "other"  # the Hub's task id for a task it has no name for

Roles = tuple[tuple[str, ...], tuple[str, ...]]  # (required roles, optional roles)


@dataclass(frozen=True)
class TaskType:
    """One task type: its names, default main score, test files and training roles.

    `files` maps each file a task folder of this type must hold to the row shape every line of
    it has (the shapes are data/taskfolder.py's). `corpus_type` is the type's spelling in a corpus
    spec and `roles` the roles a training dataset of this type maps columns to (the default
    column name is the role name); None and no roles for a type that is not trained on.
    """

    name: str
    mteb_type: str
    main_score: str
    files: Mapping[str, str]
    corpus_type: str | None = None
    roles: Roles = ((), ())

    @property
    def hub_task(self) -> str:
        """The Hub task id results of this type are filed under (model-index, eval results)."""
        return HUB_TASKS[self.mteb_type]


_TEXT_LABEL: Roles = (("text", "label"), ())
# TaskType(name, mteb type, default main score, test files, corpus-spec type, training roles)
TASK_TYPES: Mapping[str, TaskType] = MappingProxyType(
    {
        t.name: t
        for t in (
            TaskType(
                "retrieval",
                "Retrieval",
                "ndcg_at_10",
                {"corpus.jsonl": "doc", "queries.jsonl": "query"},
                "retrieval",
                (("query", "pos"), ("neg",)),
            ),
            TaskType(
                "sts",
                "STS",
                "cosine_spearman",
                {"test.jsonl": "sts"},
                "sts",
                (("s1", "s2", "score"), ()),
            ),
            TaskType(
                "pair_classification",
                "PairClassification",
                "max_ap",
                {"test.jsonl": "pair"},
                "pair",
                (("s1", "s2", "label"), ()),
            ),
            TaskType(
                "classification",
                "Classification",
                "accuracy",
                {"train.jsonl": "labelled", "test.jsonl": "labelled"},
                "classification",
                _TEXT_LABEL,
            ),
            TaskType(
                "clustering",
                "Clustering",
                "v_measure",
                {"test.jsonl": "labelled"},
                "clustering",
                _TEXT_LABEL,
            ),
            TaskType("bitext_mining", "BitextMining", "f1", {"test.jsonl": "bitext"}),
        )
    }
)
# The types a task folder may declare, and the types a corpus spec may name (spec spelling).
FolderType = Literal[tuple(TASK_TYPES)]  # type: ignore[valid-type]
CORPUS_TYPES: Mapping[str, TaskType] = MappingProxyType(
    {t.corpus_type: t for t in TASK_TYPES.values() if t.corpus_type}
)


def snake(mteb_type: str) -> str:
    """Return mteb's type name in zoo's spelling: 'PairClassification' -> 'pair_classification'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", mteb_type).lower()


_HUB_BY_SNAKE = {snake(m): hub for m, hub in HUB_TASKS.items()}


def hub_task(task_type: str) -> str:
    """Return the Hub task id for a task type; 'other' when the Hub has no name for it.

    Takes mteb's spelling ('Clustering') or zoo's ('clustering', 'instruction_retrieval').
    """
    return HUB_TASKS.get(task_type) or _HUB_BY_SNAKE.get(task_type, OTHER_HUB_TASK)
