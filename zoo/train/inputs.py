"""Check and normalise what a training run is given: the datasets, their groups and their prompts.

The input contract (the data layer produces exactly this): one `datasets.Dataset` per training
dataset, with text columns `anchor`, `positive`, optional `negative` (a hard negative), and optional
`group` (rows of one group may share a batch only with each other); plus an optional instruction per
dataset, prepended to the anchor only. A saved dataset may be given as a path instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UserError
from zoo.train.sampler import Source

TEXT_COLUMNS = (
    "anchor",
    "positive",
    "negative",
)  # plus negative_1, negative_2, ... (hard negatives)
_NEGATIVE_N = re.compile(r"^negative_\d+$")
GROUP_COLUMN = "group"
_SIGNATURE_SAMPLE = 32


@dataclass(frozen=True, eq=False)
class Prepared:
    """The training data in the trainer's order (sorted by name), groups split off as Sources."""

    datasets: dict[str, Any]  # name -> Dataset with only the text columns, in loss order
    sources: tuple[Source, ...]  # same order as datasets
    prompts: dict[str, dict[str, str]] | None  # sentence-transformers form: name -> {"anchor": p}
    own_candidates: frozenset[str] = frozenset()  # datasets trained without in-batch negatives

    @property
    def rows(self) -> dict[str, int]:
        """Rows per dataset."""
        return {name: len(ds) for name, ds in self.datasets.items()}


def prepare(
    train_sets: Mapping[str, Any],
    prompts: Mapping[str, str] | None = None,
    own_candidates: Iterable[str] = (),
) -> Prepared:
    """Validate and normalise the training data; raise UserError naming every problem found.

    Does not mutate the given datasets (column selection makes new Dataset objects). Deterministic:
    the result depends on the names and contents, not on the mapping's insertion order.
    """
    if not train_sets:
        raise UserError("no training datasets given")
    loaded = {name: _load(name, train_sets[name]) for name in sorted(train_sets)}
    problems = [p for name, ds in loaded.items() for p in _problems(name, ds)]
    unknown = sorted(set(prompts or {}) - set(loaded))
    problems += [f"prompt given for unknown dataset {n!r}" for n in unknown]
    own = frozenset(own_candidates)
    problems += [f"own-candidates dataset {n!r} is unknown" for n in sorted(own - set(loaded))]
    problems += [
        f"own-candidates dataset {n!r} has no negative column"
        for n in sorted(own & set(loaded))
        if not _negatives(loaded[n].column_names)
    ]
    if problems:
        raise UserError("bad training data: " + "; ".join(problems))
    if sum(len(ds) for ds in loaded.values()) == 0:
        raise UserError("bad training data: every dataset is empty")
    datasets = {n: ds.select_columns(_text_columns(ds.column_names)) for n, ds in loaded.items()}
    sources = tuple(Source(len(ds), _group_ids(ds)) for ds in loaded.values())
    st_prompts = {n: {"anchor": p} for n, p in sorted((prompts or {}).items()) if p}
    return Prepared(datasets, sources, st_prompts or None, own)


def _negatives(columns: Iterable[str]) -> list[str]:
    """'negative' and 'negative_<n>' columns, in number order."""
    numbered = sorted(
        (c for c in columns if _NEGATIVE_N.match(c)), key=lambda c: int(c.split("_")[1])
    )
    return (["negative"] if "negative" in columns else []) + numbered


def _text_columns(columns: Iterable[str]) -> list[str]:
    columns = list(columns)
    return [c for c in ("anchor", "positive") if c in columns] + _negatives(columns)


def _load(name: str, value: Any) -> Any:
    from datasets import Dataset, load_from_disk

    if isinstance(value, Dataset):
        return value
    if isinstance(value, (str, Path)):
        if not Path(value).is_dir():
            raise UserError(f"dataset {name!r}: no saved dataset at {value}")
        loaded = load_from_disk(str(value))
        if isinstance(loaded, Dataset):
            return loaded
    raise UserError(
        f"dataset {name!r}: expected a datasets.Dataset or the path of a saved one, "
        f"got {type(value).__name__}"
    )


def _problems(name: str, ds: Any) -> list[str]:
    columns = list(ds.column_names)
    out = [
        f"dataset {name!r} lacks column {c!r}" for c in ("anchor", "positive") if c not in columns
    ]
    extra = sorted(set(columns) - set(_text_columns(columns)) - {GROUP_COLUMN})
    if extra:
        out.append(
            f"dataset {name!r} has unexpected columns {extra} "
            f"(expected {list(TEXT_COLUMNS)} and optional {GROUP_COLUMN!r})"
        )
    if GROUP_COLUMN in columns and len(ds) and ds.data.column(GROUP_COLUMN).null_count:
        out.append(f"dataset {name!r} has rows without a {GROUP_COLUMN!r}")
    return out


def _group_ids(ds: Any) -> np.ndarray | None:
    """Dense int ids of the group column (ids follow the sorted group values), or None."""
    if GROUP_COLUMN not in ds.column_names:
        return None
    values = ds.data.column(GROUP_COLUMN).to_numpy(zero_copy_only=False)
    _, ids = np.unique(values.astype(str), return_inverse=True)
    return ids.astype(np.int64)


def signature(prepared: Prepared) -> dict[str, Any]:
    """A cheap fingerprint of the data, to refuse resuming a checkpoint on different data.

    Covers names, sizes, columns, groups and a sample of anchors; it is not a full content hash.
    """
    out: dict[str, Any] = {}
    for (name, ds), src in zip(prepared.datasets.items(), prepared.sources, strict=True):
        digest = hashlib.sha256()
        picks = np.unique(np.linspace(0, len(ds) - 1, min(len(ds), _SIGNATURE_SAMPLE)).astype(int))
        for text in ds.select(picks.tolist())["anchor"] if len(ds) else []:
            digest.update(text.encode("utf-8") + b"\0")
        if src.groups is not None:
            digest.update(np.ascontiguousarray(src.groups).tobytes())
        out[name] = {
            "rows": len(ds),
            "columns": list(ds.column_names),
            "sample_sha256": digest.hexdigest(),
        }
    return {
        "datasets": out,
        "prompts": prepared.prompts,
        "own_candidates": sorted(prepared.own_candidates),
    }


@dataclass(frozen=True, eq=False)
class TrainSets:
    """What `train` is given for one run: trainer rows per dataset, prompts, own-candidates sets."""

    sets: dict[str, Any]  # name -> datasets.Dataset {anchor, positive, negative...}
    prompts: dict[str, str] | None
    own_candidates: frozenset[str]


def train_sets(rows: Mapping[str, Any], datasets: Mapping[str, Any]) -> TrainSets:
    """Trainer inputs from zoo.data rows: rows maps names to row datasets, datasets to their specs.

    A spec is read for `in_batch_negatives` and `instruction` only. Empty datasets are left out.
    Pure: builds new datasets, mutates nothing.
    """
    own = frozenset(n for n in rows if not datasets[n].in_batch_negatives)
    sets = {n: to_train_columns(ds, all_negatives=n in own) for n, ds in rows.items() if len(ds)}
    prompts = {n: datasets[n].instruction for n in sets if datasets[n].instruction}
    return TrainSets(sets, prompts or None, own & set(sets))


def to_train_columns(ds: Any, *, all_negatives: bool = False) -> Any:
    """zoo.data rows {query, pos[], neg[], label, group} -> trainer rows {anchor, positive, ...}.

    The first positive is used. Datasets trained with in-batch negatives get the first hard negative
    when every row has one; own-candidates datasets (classification, clustering: no in-batch
    negatives) get all of them as negative_1..negative_k, k the smallest count over the rows.
    """
    from datasets import Dataset

    pos, neg = ds["pos"], ds["neg"]
    columns = {"anchor": list(ds["query"]), "positive": [p[0] for p in pos]}
    k = min((len(n) for n in neg), default=0)
    if all_negatives:
        if k == 0:
            raise UserError(
                "a dataset without in-batch negatives needs hard negatives on every row"
            )
        columns.update({f"negative_{i + 1}": [n[i] for n in neg] for i in range(k)})
    elif k:
        columns["negative"] = [n[0] for n in neg]
    return Dataset.from_dict(columns)
