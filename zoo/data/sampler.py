"""Bagging sampler: per-dataset (stratified) subsets of a corpus, described by manifests.

For every ratio r of the ratio set, every dataset of n rows contributes exactly

    count = max(1, floor(r * n + 1/2))     (0 when n == 0)

rows, with r taken as the exact decimal it is written as (0.6 is 6/10, not the nearest binary
float), so 0.5 of 5 rows is 3 and 0.4 of 5 rows is 2. Without replacement (the default; BOOM's
"differently sized data samples") ratio 1.0 is the whole dataset. With `bootstrap=True` the
`count` rows are drawn uniformly *with* replacement (duplicates kept).

Determinism: each (dataset, ratio, seed, mode) gets its own counter-based PCG64 stream, seeded from
sha256 of those values (never Python's hash()), and only the bit generator's raw 64-bit output
is used (numpy keeps bit-generator streams stable across versions, not Generator methods), so
manifests are identical across runs, processes, machines and numpy versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from fractions import Fraction

import datasets
import numpy as np
from pydantic import Field, model_validator

from zoo.data.convert import derive_seed
from zoo.data.corpus import Corpus
from zoo.data.spec import DEFAULT_RATIOS, check_ratio
from zoo.errors import IntegrityError, UserError
from zoo.schema import Strict


class DatasetDraw(Strict):
    """What one bag took from one dataset."""

    name: str
    source: str | None = Field(description="The dataset's source (path or REPO@SHA:path).")
    source_rev: str | None = Field(description="Hub commit sha, or sha256:<hex> of the local file.")
    fingerprint: str | None = Field(description="Content fingerprint of the dataset sampled from.")
    size: int = Field(ge=0, description="Rows in the dataset.")
    count: int = Field(ge=0, description="Rows drawn.")
    indices_sha256: str = Field(description="sha256 of the sorted drawn indices, comma-joined.")


class BagManifest(Strict):
    """A reproducible description of one bag; `manifest_sha256` covers every other field."""

    ratio: float
    seed: int
    bootstrap: bool
    datasets: tuple[DatasetDraw, ...]
    manifest_sha256: str = ""

    @model_validator(mode="after")
    def _hash_matches(self) -> BagManifest:
        expected = _manifest_hash(self)
        if self.manifest_sha256 and self.manifest_sha256 != expected:
            raise ValueError("manifest_sha256 does not match the manifest's content")
        if not self.manifest_sha256:
            object.__setattr__(self, "manifest_sha256", expected)
        return self

    def draw(self, name: str) -> DatasetDraw:
        """Return the draw for dataset `name`; KeyError if the bag has none."""
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(name)


def _manifest_hash(manifest: BagManifest) -> str:
    body = manifest.model_dump(mode="json", exclude={"manifest_sha256"})
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def bag_count(ratio: float, size: int) -> int:
    """Return how many rows a bag of `ratio` takes from `size` rows (see the module docstring)."""
    if size == 0:
        return 0
    exact = Fraction(repr(float(ratio))) * size + Fraction(1, 2)
    return max(1, exact.numerator // exact.denominator)


def draw_indices(name: str, size: int, ratio: float, seed: int, bootstrap: bool) -> np.ndarray:
    """Return the sorted row indices (int64) a bag draws from one dataset; pure, deterministic."""
    count = bag_count(ratio, size)
    bits = np.random.PCG64(derive_seed("zoo.bag", name, repr(float(ratio)), seed, bootstrap))
    if bootstrap:
        raw = bits.random_raw(count)
        unit = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53  # exact: 53-bit fractions
        return np.sort(np.minimum((unit * size).astype(np.int64), size - 1))
    keys = bits.random_raw(size)
    order = np.lexsort((np.arange(size), keys))  # smallest random keys; index breaks ties
    return np.sort(order[:count].astype(np.int64))


def indices_sha256(indices: np.ndarray) -> str:
    """Return sha256 of the sorted indices written as comma-joined decimals."""
    text = ",".join(str(i) for i in np.sort(indices).tolist())
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def sample_bags(
    corpus_or_sizes: Corpus | Mapping[str, int],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
    bootstrap: bool = False,
) -> list[BagManifest]:
    """Return one manifest per ratio (in the given order), sampling every dataset separately.

    `corpus_or_sizes` is a loaded Corpus, or {dataset name: row count} (then source, revision
    and fingerprint are None and select_rows cannot verify the data). Pure: reads no data rows.
    """
    ratios = [check_ratio(r, f"ratios[{i}]") for i, r in enumerate(ratios)]
    if not ratios:
        raise UserError("ratios: give at least one ratio in (0, 1]")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed: expected a non-negative integer, got {seed!r}")
    infos = _dataset_infos(corpus_or_sizes)
    return [_bag(infos, ratio, seed, bootstrap) for ratio in ratios]


def _dataset_infos(corpus_or_sizes: Corpus | Mapping[str, int]) -> list[dict]:
    """Normalise the input to [{name, source, source_rev, fingerprint, size}] in input order."""
    if isinstance(corpus_or_sizes, Corpus):
        return [
            {
                "name": d.name,
                "source": d.source,
                "source_rev": d.source_rev,
                "fingerprint": d.fingerprint,
                "size": len(d),
            }
            for d in corpus_or_sizes.datasets
        ]
    infos = []
    for name, size in corpus_or_sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise UserError(f"sizes[{name!r}]: expected a non-negative row count, got {size!r}")
        infos.append(
            {"name": name, "source": None, "source_rev": None, "fingerprint": None, "size": size}
        )
    return infos


def _bag(infos: list[dict], ratio: float, seed: int, bootstrap: bool) -> BagManifest:
    draws = []
    for info in infos:
        idx = draw_indices(info["name"], info["size"], ratio, seed, bootstrap)
        draws.append(DatasetDraw(**info, count=len(idx), indices_sha256=indices_sha256(idx)))
    return BagManifest(ratio=ratio, seed=seed, bootstrap=bootstrap, datasets=tuple(draws))


def select_rows(corpus: Corpus, manifest: BagManifest) -> dict[str, datasets.Dataset]:
    """Re-find the exact rows of a bag: {dataset name: the drawn rows, in sorted index order}.

    Raises UserError if a dataset is missing or its fingerprint or size changed since the
    manifest was made (the rows would not be the same), and IntegrityError if the regenerated
    indices do not hash to the manifest's (a sampler change). Reads nothing but `corpus`.
    """
    out = {}
    for draw in manifest.datasets:
        data = _matching_dataset(corpus, draw)
        idx = draw_indices(draw.name, draw.size, manifest.ratio, manifest.seed, manifest.bootstrap)
        if indices_sha256(idx) != draw.indices_sha256 or len(idx) != draw.count:
            raise IntegrityError(
                f"bag {manifest.manifest_sha256[:12]}: indices of {draw.name!r} "
                "do not match the manifest (sampler changed?)"
            )
        out[draw.name] = data.data.select(idx.tolist())
    return out


def _matching_dataset(corpus: Corpus, draw: DatasetDraw):
    """Return the corpus dataset a draw came from, checking it is unchanged."""
    try:
        data = corpus[draw.name]
    except KeyError:
        raise UserError(f"manifest dataset {draw.name!r}: not in the corpus") from None
    if draw.fingerprint is None:
        raise UserError(f"manifest dataset {draw.name!r}: no fingerprint (made from sizes only)")
    if data.fingerprint != draw.fingerprint or len(data) != draw.size:
        raise UserError(
            f"manifest dataset {draw.name!r}: data changed (fingerprint {data.fingerprint[:12]}, "
            f"{len(data)} rows; manifest has {draw.fingerprint[:12]}, {draw.size} rows)"
        )
    return data
