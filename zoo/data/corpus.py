"""Load a corpus spec into per-dataset `datasets.Dataset`s of normalised training examples.

Every dataset becomes rows {query: str, pos: [str], neg: [str], label: str, group: str} (see
zoo.data.convert for how each task type is converted). `group` is the dataset name: the trainer
builds every batch from one group (BOOM's same-dataset-within-batch), and for datasets with
`in_batch_negatives=False` (classification, clustering) it scores each query only against its own
pos + neg (a mask over the batch's score matrix). So a classification query never meets in-batch
negatives: its negatives are only other-label texts of its own dataset, chosen at conversion.

Hub sources. This package never imports huggingface_hub: a `hub: REPO@REV` source is handed to a
**resolver** supplied by the caller (the orchestration layer), with the contract

    resolve("org/name@rev") -> (folder: Path, sha: str)

`folder` is a local snapshot of the *dataset* repo `org/name` at `rev` (branch, tag or commit)
and `sha` the 40-hex commit it resolved to; the source's `path` is then read inside `folder`.
The resolver may download; it raises UserError (or OSError) when the repo cannot be had.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable

from zoo.data.convert import convert_rows
from zoo.data.jsonl import read_jsonl
from zoo.data.spec import ROLES, CorpusSpec, DatasetSpec
from zoo.errors import UserError
from zoo.hashing import sha256_file
from zoo.types import COMMIT_RE

Resolver = Callable[[str], tuple[Path, str]]
FORMAT_VERSION = "zoo.data.examples/1"  # part of every fingerprint: bump when conversion changes
FEATURES = datasets.Features(
    {
        "query": datasets.Value("string"),
        "pos": datasets.List(datasets.Value("string")),
        "neg": datasets.List(datasets.Value("string")),
        "label": datasets.Value("string"),
        "group": datasets.Value("string"),
    }
)


@dataclass(frozen=True)
class CorpusDataset:
    """One loaded dataset: normalised examples plus where they came from."""

    name: str
    type: str
    data: datasets.Dataset
    fingerprint: str  # sha256 of FORMAT_VERSION, type and every example, in order
    source: str  # as written in the spec (a path, or REPO@SHA:path)
    source_rev: str  # the Hub commit sha, or "sha256:<hex>" of the local file
    instruction: str | None
    in_batch_negatives: bool
    dropped: int  # source rows that produced no example (see zoo.data.convert)

    def __len__(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Corpus:
    """The loaded datasets of a spec, in spec order."""

    datasets: tuple[CorpusDataset, ...]
    spec: CorpusSpec

    def __getitem__(self, name: str) -> CorpusDataset:
        for ds in self.datasets:
            if ds.name == name:
                return ds
        raise KeyError(name)

    def sizes(self) -> dict[str, int]:
        """Return {dataset name: number of examples}."""
        return {ds.name: len(ds) for ds in self.datasets}


def load_corpus(spec: CorpusSpec, resolve: Resolver | None = None) -> Corpus:
    """Read, check and convert every dataset of `spec`; raise one UserError listing all problems.

    Reads local files and whatever `resolve` returns; touches the network only through `resolve`.
    Deterministic: the same source bytes give the same examples and fingerprints.
    """
    loaded, problems = [], []
    for i, ds_spec in enumerate(spec.datasets):
        try:
            loaded.append(_load_one(ds_spec, spec.base_dir, resolve))
        except UserError as exc:
            problems.append(f"datasets[{i}] ({ds_spec.name}).{exc}")
    if problems:
        head = f"corpus: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise UserError(f"{head}: {'; '.join(problems)}")
    return Corpus(tuple(loaded), spec)


def _load_one(ds: DatasetSpec, base_dir: Path | None, resolve: Resolver | None) -> CorpusDataset:
    """Load one dataset; UserError messages start with the field they concern."""
    file, source, rev = _locate(ds, base_dir, resolve)
    rows = _read_rows(file)
    if not rows:
        raise UserError(f"source: {file} has no rows (empty dataset)")
    rows = rows[: ds.cap] if ds.cap else rows
    role_rows = _select_roles(ds, rows, file)
    try:
        examples = convert_rows(
            ds.type, role_rows, name=ds.name, negatives=ds.negatives, min_score=ds.min_score
        )
    except UserError as exc:
        raise UserError(f"source: {file}: {exc}") from None
    if not examples:
        raise UserError(f"source: {file}: no training examples after conversion (empty dataset)")
    fingerprint = _fingerprint(ds.type, examples)
    return CorpusDataset(
        name=ds.name,
        type=ds.type,
        data=_to_dataset(examples, ds.name, fingerprint),
        fingerprint=fingerprint,
        source=source,
        source_rev=rev,
        instruction=ds.instruction,
        in_batch_negatives=ds.type not in ("classification", "clustering"),
        dropped=len(rows) - len(examples),
    )


def _locate(
    ds: DatasetSpec, base_dir: Path | None, resolve: Resolver | None
) -> tuple[Path, str, str]:
    """Return (file to read, source label, source revision) for a dataset's source."""
    src = ds.source
    if src.hub is not None:
        folder, sha = _resolve_hub(src.hub, resolve)
        target = folder / (src.path or "")
        label = f"{src.hub.split('@')[0]}@{sha}" + (f":{src.path}" if src.path else "")
    else:
        target = (base_dir or Path.cwd()) / src.path
        label = src.path
    file = _data_file(target)
    rev = sha if src.hub is not None else f"sha256:{sha256_file(file)}"
    return file, label, rev


def _resolve_hub(ref: str, resolve: Resolver | None) -> tuple[Path, str]:
    """Call the resolver for REPO@REV and check what it returns."""
    if resolve is None:
        raise UserError(f"source.hub: {ref} needs a Hub resolver (load_corpus(spec, resolve=...))")
    try:
        folder, sha = resolve(ref)
    except (UserError, OSError) as exc:
        raise UserError(f"source.hub: cannot reach {ref}: {exc}".replace("\n", " ")) from None
    if not COMMIT_RE.match(sha or ""):
        raise UserError(f"source.hub: resolver gave {sha!r} for {ref}, not a 40-hex commit")
    return Path(folder), sha


def _data_file(target: Path) -> Path:
    """Return the file to read: the path itself, or a task folder's train.jsonl."""
    if target.is_dir():
        target = target / "train.jsonl"
    if not target.is_file():
        raise UserError(
            f"source.path: {target} not found (a .jsonl/.parquet file or a task folder)"
        )
    if target.suffix not in (".jsonl", ".json", ".parquet"):
        raise UserError(f"source.path: {target}: unsupported format (use .jsonl or .parquet)")
    return target


def _read_rows(file: Path) -> list[dict]:
    """Read every row of a JSON Lines or Parquet file."""
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(file).to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise UserError(f"source.path: {file}: unreadable Parquet ({exc})") from None
    try:
        return read_jsonl(file)
    except UserError as exc:
        raise UserError(f"source.path: {exc}") from None


def _select_roles(ds: DatasetSpec, rows: list[dict], file: Path) -> list[dict]:
    """Map columns to roles; raise UserError naming `columns.<role>` if a column is missing."""
    required, optional = ROLES[ds.type]
    out = []
    for lineno, row in enumerate(rows, 1):
        for role in required:
            if ds.column(role) not in row:
                have = ", ".join(sorted(row)) or "none"
                raise UserError(
                    f"columns.{role}: column {ds.column(role)!r} missing in {file} row {lineno} "
                    f"(columns: {have})"
                )
        picked = {role: row[ds.column(role)] for role in required}
        picked.update({r: row[ds.column(r)] for r in optional if row.get(ds.column(r)) is not None})
        out.append(picked)
    return out


def _fingerprint(kind: str, examples: list[dict]) -> str:
    """Hash the conversion format, the type and every example in order."""
    digest = hashlib.sha256(f"{FORMAT_VERSION}\n{kind}\n".encode())
    for ex in examples:
        digest.update(json.dumps(ex, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _to_dataset(examples: list[dict], group: str, fingerprint: str) -> datasets.Dataset:
    """Build an in-memory Dataset whose `datasets` fingerprint is our content fingerprint."""
    rows = [{**ex, "group": group} for ex in examples]
    table = InMemoryTable(pa.Table.from_pylist(rows, schema=FEATURES.arrow_schema))
    return datasets.Dataset(
        table, info=datasets.DatasetInfo(features=FEATURES), fingerprint=fingerprint
    )
