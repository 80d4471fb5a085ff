"""Replay for incremental updates: the rows a model's lineage was trained on, found again exactly,
and a seeded fraction of them to train the update model on beside the new data.

The history of a model is the union, per dataset, of the rows every trained member of its lineage
drew (a bag's rows follow from its ratio and seed, see zoo.data.sampler; an update's new data is
drawn whole). Each regenerated draw must hash to the indices_sha256 its member recorded, and every
draw of one dataset must name the same content (fingerprint and size), or nothing is replayed.
Replaying fraction f of a dataset whose history holds n rows takes `bag_count(f, n)` of them,
chosen by the dataset's own counter-based stream (seeded from name, fraction and seed), so the
replay is identical wherever it is recomputed. Pure apart from the rows handed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import datasets
import numpy as np

from zoo.data.convert import derive_seed
from zoo.data.corpus import Corpus
from zoo.data.sampler import bag_count, draw_indices, indices_sha256
from zoo.errors import IntegrityError, UserError


@dataclass(frozen=True)
class HistoryDraw:
    """One recorded draw of one dataset by one member of a lineage."""

    member: str  # who drew it, for messages (org/name@sha)
    name: str
    fingerprint: str
    size: int
    ratio: float
    seed: int
    bootstrap: bool
    indices_sha256: str


@dataclass(frozen=True)
class History:
    """Per dataset: the sorted distinct row indices the lineage trained on, and its content."""

    indices: Mapping[str, np.ndarray]
    fingerprints: Mapping[str, str]
    sizes: Mapping[str, int]

    def rows(self) -> int:
        return sum(len(i) for i in self.indices.values())


def history(draws: Iterable[HistoryDraw]) -> History:
    """Regenerate and check every draw; return their union per dataset (in first-seen order)."""
    indices: dict[str, list[np.ndarray]] = {}
    fingerprints: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for d in draws:
        idx = draw_indices(d.name, d.size, d.ratio, d.seed, d.bootstrap)
        if indices_sha256(idx) != d.indices_sha256:
            raise IntegrityError(
                f"{d.member}: the rows of {d.name!r} regenerated from its record do not hash to "
                "its indices_sha256 (sampler changed, or the record was edited)"
            )
        if d.name in fingerprints and (fingerprints[d.name], sizes[d.name]) != (
            d.fingerprint,
            d.size,
        ):
            raise UserError(
                f"{d.member}: dataset {d.name!r} has other content ({d.fingerprint[:12]}, "
                f"{d.size} rows) than elsewhere in the lineage ({fingerprints[d.name][:12]}, "
                f"{sizes[d.name]} rows); cannot tell which rows to replay"
            )
        fingerprints[d.name], sizes[d.name] = d.fingerprint, d.size
        indices.setdefault(d.name, []).append(idx)
    union = {name: np.unique(np.concatenate(parts)) for name, parts in indices.items()}
    return History(union, fingerprints, sizes)


def whole(corpus: Corpus) -> History:
    """The history of a corpus trained on whole (a model without zoo lineage: --replay-corpus)."""
    return History(
        {d.name: np.arange(len(d), dtype=np.int64) for d in corpus.datasets},
        {d.name: d.fingerprint for d in corpus.datasets},
        {d.name: len(d) for d in corpus.datasets},
    )


def replay_indices(hist: History, fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Return {dataset: sorted row indices} of a `fraction` replay of the history."""
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction <= 1
    ):
        raise UserError(f"--replay: fraction {fraction!r} is outside (0, 1]")
    out = {}
    for name, idx in hist.indices.items():
        count = bag_count(fraction, len(idx))
        bits = np.random.PCG64(derive_seed("zoo.replay", name, repr(float(fraction)), seed))
        keys = bits.random_raw(len(idx))
        order = np.lexsort((np.arange(len(idx)), keys))[:count]
        out[name] = np.sort(idx[order])
    return out


def select_history(
    corpus: Corpus, hist: History, picked: Mapping[str, np.ndarray]
) -> dict[str, datasets.Dataset]:
    """Return {dataset: the picked rows} from corpus, checking each dataset is the one recorded."""
    out = {}
    for name, idx in picked.items():
        try:
            data = corpus[name]
        except KeyError:
            raise UserError(f"replay dataset {name!r}: not in the history corpus") from None
        if data.fingerprint != hist.fingerprints[name] or len(data) != hist.sizes[name]:
            raise UserError(
                f"replay dataset {name!r}: data changed since it was trained on (fingerprint "
                f"{data.fingerprint[:12]}, {len(data)} rows; the lineage recorded "
                f"{hist.fingerprints[name][:12]}, {hist.sizes[name]} rows)"
            )
        out[name] = data.data.select(idx.tolist())
    return out
