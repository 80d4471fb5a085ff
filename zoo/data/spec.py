"""The corpus spec: a strict YAML description of the training datasets of a BOOM run.

Example (`corpus.yaml`; relative paths are relative to the file's folder)::

    ratios: [0.4, 0.6, 0.8, 1.0]        # optional: the bag ratio set, each in (0, 1]
    seed: 0                             # optional: the sampling seed
    datasets:
      - name: ManPageRetrieval
        type: retrieval                 # retrieval | sts | pair | classification | clustering
        source: {path: in-domain/ManPageRetrieval}  # task folder (train.jsonl), .jsonl, .parquet
        columns: {query: summary}       # optional: role -> column of the source
        instruction: Given a command summary, retrieve its manual page
        cap: 2000                       # optional: keep the first N rows of the source
      - name: Paraphrase
        type: pair
        source: {hub: org/data@0123abc, path: pairs/train.jsonl}   # a dataset repo at REPO@REV

Roles per type (the default column name is the role name):
retrieval: query, pos, [neg] · sts: s1, s2, score · pair: s1, s2, label ·
classification and clustering: text, label. `pair` is the task-folder type pair_classification,
and that spelling is accepted too (the types and roles are zoo.tasks.TASK_TYPES).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from zoo.errors import UserError
from zoo.schema import Strict, read_yaml
from zoo.tasks import CORPUS_TYPES, TASK_TYPES, Roles

TaskType = Literal[tuple(CORPUS_TYPES)]  # type: ignore[valid-type]
DEFAULT_RATIOS: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0)

# corpus-spec type: (required roles, optional roles)
ROLES: dict[str, Roles] = {name: t.roles for name, t in CORPUS_TYPES.items()}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HUB_RE = re.compile(r"^[^@\s]+/[^@\s]+@[^@\s]+$")


class SourceSpec(Strict):
    """Where a dataset's rows come from: a local path, or a path inside a Hub dataset repo."""

    path: str | None = Field(
        None,
        description="A .jsonl or .parquet file, or a task folder (its train.jsonl is read). "
        "Relative to the spec's folder, or to the repo root when `hub` is set.",
    )
    hub: str | None = Field(
        None, description="A Hub dataset repo pinned as REPO@REV (branch, tag or commit)."
    )

    @model_validator(mode="after")
    def _one_location(self) -> SourceSpec:
        if self.path is None and self.hub is None:
            raise ValueError("give `path` (local) or `hub: REPO@REV` (with an optional `path`)")
        if self.hub is not None and not _HUB_RE.match(self.hub):
            raise ValueError(f"hub: expected 'org/name@revision', got {self.hub!r}")
        return self


class DatasetSpec(Strict):
    """One training dataset: its task type, source, column mapping and options."""

    name: str = Field(description="Unique dataset name (letters, digits, '.', '_', '-').")
    type: TaskType = Field(description="Task type; decides the roles and the conversion.")
    source: SourceSpec
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Role -> source column, for columns not named as the role.",
    )
    instruction: str | None = Field(
        None, description="Query instruction (prompt) for this dataset."
    )
    cap: int | None = Field(None, gt=0, description="Keep only the first CAP rows of the source.")
    negatives: int = Field(
        7, gt=0, description="classification/clustering: other-label negatives per example."
    )
    min_score: float = Field(
        0.8, gt=0, le=1, description="sts: a pair is positive when score >= min_score x max score."
    )

    @field_validator("type", mode="before")
    @classmethod
    def _spec_spelling(cls, kind: object) -> object:
        """A task-folder type name (pair_classification) means its corpus-spec spelling (pair)."""
        task = TASK_TYPES.get(kind) if isinstance(kind, str) else None
        return task.corpus_type if task is not None and task.corpus_type else kind

    @field_validator("name")
    @classmethod
    def _name_ok(cls, name: str) -> str:
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid dataset name {name!r}: letters, digits, '.', '_', '-'")
        return name

    @model_validator(mode="after")
    def _roles_ok(self) -> DatasetSpec:
        required, optional = ROLES[self.type]
        labelled = self.type in ("classification", "clustering")
        if "negatives" in self.model_fields_set and not labelled:
            raise ValueError("negatives: only classification and clustering datasets take it")
        if "min_score" in self.model_fields_set and self.type != "sts":
            raise ValueError("min_score: only sts datasets take it")
        unknown = sorted(set(self.columns) - set(required) - set(optional))
        if unknown:
            raise ValueError(
                f"columns.{_printable(unknown[0])}: unknown role for type {self.type} "
                f"(roles: {', '.join(required + optional)})"
            )
        return self

    def column(self, role: str) -> str:
        """Return the source column that holds `role`."""
        return self.columns.get(role, role)


class CorpusSpec(Strict):
    """A corpus: the datasets, the default bag ratio set and the seed."""

    datasets: tuple[DatasetSpec, ...]
    ratios: tuple[float, ...] = Field(DEFAULT_RATIOS, min_length=1)
    seed: int = Field(0, ge=0, description="Sampling seed for bags and replay.")
    base_dir: Path | None = Field(
        None,
        exclude=True,
        description="Folder that relative paths resolve against (set by the loader).",
    )

    @field_validator("ratios")
    @classmethod
    def _ratios_ok(cls, ratios: tuple[float, ...]) -> tuple[float, ...]:
        for i, ratio in enumerate(ratios):
            check_ratio(ratio, f"ratios[{i}]")
        return ratios

    @model_validator(mode="after")
    def _unique_names(self) -> CorpusSpec:
        if not self.datasets:
            raise ValueError("datasets: list at least one dataset")
        seen: set[str] = set()
        for i, ds in enumerate(self.datasets):
            if ds.name in seen:
                raise ValueError(f"datasets[{i}].name: duplicate dataset name {ds.name!r}")
            seen.add(ds.name)
        return self


def check_ratio(ratio: float, field: str = "ratio") -> float:
    """Return ratio if it lies in (0, 1]; else raise ValueError (a UserError) naming `field`."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise UserError(f"{field}: ratio {ratio!r} is outside (0, 1]")
    return float(ratio)


def load_corpus_spec(path: str | Path) -> CorpusSpec:
    """Read and validate a corpus spec YAML file; raise one UserError listing every problem.

    Pure apart from reading `path`; does not touch the sources (load_corpus does). The returned
    spec's `base_dir` is the file's folder, so relative source paths resolve against it.
    """
    path = Path(path)
    raw = read_yaml(path, f"corpus spec {path}")
    return parse_corpus_spec(raw, base_dir=path.parent.resolve(), origin=str(path))


def parse_corpus_spec(
    raw: dict, base_dir: Path | None = None, origin: str = "corpus spec"
) -> CorpusSpec:
    """Validate an already-parsed spec mapping; raise one UserError listing every problem."""
    if not isinstance(raw, dict):
        raise UserError(f"{origin}: expected a mapping with a `datasets:` list")
    doc = {**_str_keys(raw), "base_dir": str(base_dir) if base_dir else None}
    try:  # JSON mode: strict types, but YAML lists may fill tuples
        return CorpusSpec.model_validate_json(json.dumps(doc, default=str))
    except ValidationError as exc:
        # pydantic skips model-level checks when a field fails, so repeat the name check here
        lines = [_error_line(err, raw) for err in exc.errors()] + _duplicate_names(raw)
        lines = list(dict.fromkeys(lines))
        head = f"{origin}: {len(lines)} problem{'s' if len(lines) > 1 else ''}"
        raise UserError(f"{head}: {'; '.join(lines)}") from None


def _str_keys(value: object) -> object:
    """Return `value` with every mapping key a string (YAML keys may be dates, JSON's may not)."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _str_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_str_keys(v) for v in value]
    return value


def _printable(part: object) -> str:
    """Return `part` as text, quoted and escaped if it holds a line break or control character."""
    return str(part) if str(part).isprintable() else repr(part)


def _duplicate_names(raw: dict) -> list[str]:
    """Return a problem line for every dataset whose name repeats an earlier one."""
    items = raw.get("datasets") if isinstance(raw.get("datasets"), list) else []
    names = [_dataset_name(raw, i) for i in range(len(items))]
    return [
        f"datasets[{i}].name: duplicate dataset name {n!r}"
        for i, n in enumerate(names)
        if n is not None and n in names[:i]
    ]


def _error_line(err: dict, raw: dict) -> str:
    """Format one pydantic error as `datasets[i] (NAME).field: message`."""
    loc = list(err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "literal_error" and loc and loc[-1] == "type":
        msg = f"unknown task type {err['input']!r} (expected one of: {', '.join(ROLES)})"
    field = ""
    for part in loc:
        text = _printable(part)
        field += f"[{part}]" if isinstance(part, int) else (f".{text}" if field else text)
    if len(loc) >= 2 and loc[0] == "datasets" and isinstance(loc[1], int):
        name = _dataset_name(raw, loc[1])
        if name:
            named = f"datasets[{loc[1]}] ({_printable(name)})"
            field = field.replace(f"datasets[{loc[1]}]", named, 1)
    if msg.startswith(("datasets", "ratios[")):  # the message already names the full field
        return msg
    if msg.startswith(("columns.", "hub:", "negatives:", "min_score:")):  # names a sub-field
        return f"{field}.{msg}"
    return f"{field}: {msg}" if field else msg


def _dataset_name(raw: dict, index: int) -> str | None:
    """Return the raw `name` of datasets[index], if there is one."""
    items = raw.get("datasets")
    if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
        name = items[index].get("name")
        return name if isinstance(name, str) else None
    return None
