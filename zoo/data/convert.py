"""Turn raw rows of each task type into training examples {query, pos, neg, label}.

Pure and deterministic: the same rows, options and dataset name give the same examples.

- retrieval: one example per row; `pos`/`neg` may be a string or a list of strings.
- sts: a pair is positive when score >= min_score x (the dataset's highest score); the other,
  lower-scored partners of the same s1 become its hard negatives. Other pairs are dropped.
- pair: label 1 rows are positives; label 0 partners of the same s1 are its hard negatives.
- classification / clustering (BOOM's "no_in_batch_neg" data): for every row, the positive is
  another text with the same label and the negatives are `negatives` texts with *other* labels
  of the same dataset. Rows whose label has no second member are dropped. These examples carry
  their label, and the corpus marks the dataset `in_batch_negatives=False`: the trainer builds
  each batch from one dataset and scores a query only against its own pos + neg (no in-batch or
  cross-device negatives), because another query's positive may share the query's label and
  would then be a false negative.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from zoo.errors import UserError

Example = dict  # {"query": str, "pos": list[str], "neg": list[str], "label": str}


def convert_rows(
    kind: str, rows: list[dict], *, name: str, negatives: int, min_score: float
) -> list[Example]:
    """Convert role-keyed rows (roles of `kind`, see spec.ROLES) into training examples.

    Raises UserError naming the row (1-based) and role when a value has the wrong type.
    """
    if kind == "retrieval":
        return [_retrieval(i, row) for i, row in enumerate(rows, 1)]
    if kind == "sts":
        return _scored_pairs(rows, _sts_positive(rows, min_score))
    if kind == "pair":
        return _scored_pairs(rows, _pair_positive(rows))
    return _labelled(rows, name=name, negatives=negatives)


def _text(value: object, row: int, role: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"row {row}: {role} must be a non-empty string, got {value!r:.60}")
    return value


def _texts(value: object, row: int, role: str, allow_empty: bool) -> list[str]:
    if isinstance(value, str):
        return [_text(value, row, role)]
    if not isinstance(value, (list, tuple)) or (not value and not allow_empty):
        raise UserError(f"row {row}: {role} must be a string or a non-empty list of strings")
    return [_text(v, row, role) for v in value]


def _retrieval(row_no: int, row: dict) -> Example:
    neg = row.get("neg")
    return {
        "query": _text(row["query"], row_no, "query"),
        "pos": _texts(row["pos"], row_no, "pos", allow_empty=False),
        "neg": [] if neg is None else _texts(neg, row_no, "neg", allow_empty=True),
        "label": "",
    }


def _sts_positive(rows: list[dict], min_score: float) -> list[bool]:
    """Return, per row, whether its score reaches min_score x the highest score."""
    scores = []
    for i, row in enumerate(rows, 1):
        score = row["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise UserError(f"row {i}: score must be a number, got {score!r:.60}")
        scores.append(float(score))
    top = max(scores)
    if top <= 0:
        raise UserError("score: the highest score is <= 0; scores must be similarity grades")
    return [s >= min_score * top for s in scores]


def _pair_positive(rows: list[dict]) -> list[bool]:
    """Return, per row, whether its 0/1 label is 1."""
    out = []
    for i, row in enumerate(rows, 1):
        label = row["label"]
        if label not in (0, 1) or isinstance(label, float):
            raise UserError(f"row {i}: label must be 0 or 1, got {label!r:.60}")
        out.append(bool(label))
    return out


def _scored_pairs(rows: list[dict], positive: list[bool]) -> list[Example]:
    """One example per positive pair; the negative partners of the same s1 are its negatives."""
    negs: dict[str, list[str]] = defaultdict(list)
    for i, (row, pos) in enumerate(zip(rows, positive), 1):
        s1, s2 = _text(row["s1"], i, "s1"), _text(row["s2"], i, "s2")
        if not pos:
            negs[s1].append(s2)
    return [
        {"query": row["s1"], "pos": [row["s2"]], "neg": list(negs[row["s1"]]), "label": ""}
        for row, pos in zip(rows, positive)
        if pos
    ]


def _labelled(rows: list[dict], *, name: str, negatives: int) -> list[Example]:
    """Same-label positive, other-label negatives; see the module docstring."""
    texts = [_text(row["text"], i, "text") for i, row in enumerate(rows, 1)]
    labels = [_label(row["label"], i) for i, row in enumerate(rows, 1)]
    members: dict[str, list[int]] = defaultdict(list)
    rank = []  # position of each row within its label's member list
    for i, label in enumerate(labels):
        rank.append(len(members[label]))
        members[label].append(i)
    if len(members) < 2:
        raise UserError("label: needs at least two distinct labels")
    label_arr = np.array(labels, dtype=object)
    rng = _Stream(derive_seed("convert", name))
    out = []
    for i, label in enumerate(labels):
        same = members[label]
        if len(same) < 2:
            continue
        j = same[(rank[i] + 1 + rng.below(len(same) - 1)) % len(same)]
        neg = _other_label(rng, label_arr, label, negatives)
        out.append(
            {"query": texts[i], "pos": [texts[j]], "neg": [texts[k] for k in neg], "label": label}
        )
    return out


def _label(value: object, row: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise UserError(
            f"row {row}: label must be a non-empty string or an integer, got {value!r:.60}"
        )
    return str(value)


def _other_label(rng: _Stream, labels: np.ndarray, label: str, k: int) -> list[int]:
    """Draw up to k distinct row indices whose label differs from `label`."""
    picked: list[int] = []
    n = len(labels)
    for _ in range(4):  # rejection sampling: fast when `label` is not most of the data
        for idx in rng.below_many(n, 2 * k + 4):
            if labels[idx] != label and idx not in picked:
                picked.append(idx)
                if len(picked) == k:
                    return picked
    pool = [i for i in rng.permutation(n) if labels[i] != label and i not in picked]
    return picked + pool[: k - len(picked)]


class _Stream:
    """Random integers from raw PCG64 output: stable across numpy versions (Generator is not)."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.PCG64(seed)

    def below(self, n: int) -> int:
        """Return one integer in [0, n) (modulo bias below n / 2**64)."""
        return int(self._bits.random_raw()) % n

    def below_many(self, n: int, size: int) -> list[int]:
        """Return `size` integers in [0, n)."""
        return (self._bits.random_raw(size) % np.uint64(n)).astype(np.int64).tolist()

    def permutation(self, n: int) -> list[int]:
        """Return a random permutation of range(n)."""
        return np.argsort(self._bits.random_raw(n), kind="stable").tolist()


def derive_seed(*parts: object) -> int:
    """Return a 128-bit seed from sha256 over the parts (stable across processes and machines)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")
