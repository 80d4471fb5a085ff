"""`zoo merge --search`: merge candidate weightings, score each on dev task folders, keep the best.

Two strategies, declared in the recipe's `zoo.search` block:
- grid: each candidate gives one value of `parameter` (default `weight`) per model, in the order
  of the recipe's models; every candidate is merged and scored.
- greedy: a greedy soup (Wortsman et al., arXiv 2203.05482): the models are scored alone and
  ranked; the soup starts as the best two (the smallest merge) and each next model joins when the
  soup's dev score does not drop. Members of a soup merge with `parameter` = 1.0.
The score of a candidate is the mean main score over the dev tasks. Ties keep the earlier
candidate. The chosen spec is what the lock records, so `--lock` reproduces the chosen merge.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.recipe.plan import MergeSpec
from zoo.recipe.schema import SearchSpec

SEARCH_FILE = "search.json"
Merger = Callable[[MergeSpec, Path], None]
Scorer = Callable[[Path], dict[str, float]]


@dataclass(frozen=True)
class Trial:
    """One scored candidate: the parameter value per model (None: left out) and its dev scores."""

    values: tuple[float | None, ...]
    scores: dict[str, float]

    @property
    def score(self) -> float:
        return statistics.fmean(self.scores.values())


@dataclass(frozen=True)
class SearchResult:
    """The search as run: strategy, every trial in order, and which one won."""

    strategy: str
    parameter: str
    task_dirs: tuple[str, ...]
    models: tuple[str, ...]
    trials: tuple[Trial, ...]
    best: int

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "parameter": self.parameter,
            "task_dirs": list(self.task_dirs),
            "models": list(self.models),
            "best": self.best,
            "trials": [
                {
                    "values": list(t.values),
                    "score": round(t.score, 6),
                    "scores": {k: round(v, 6) for k, v in t.scores.items()},
                }
                for t in self.trials
            ],
        }


def run_search(
    spec: MergeSpec,
    search: SearchSpec,
    paths: Sequence[Path],
    merge: Merger,
    score: Scorer,
    work: Path,
) -> tuple[MergeSpec, SearchResult]:
    """Run the search; return the spec of the best candidate and the record of every trial.

    paths: the local folders of spec.models, in order (greedy scores each model alone).
    """
    n = len(spec.models)
    if search.grid:
        bad = [i for i, c in enumerate(search.grid) if len(c) != n]
        if bad:
            raise UserError(
                f"zoo.search.grid[{bad[0]}]: {len(search.grid[bad[0]])} values for "
                f"{n} models; give one value per model, in the models' order"
            )
        trials = [
            _trial(spec, search.parameter, tuple(c), merge, score, work / f"c{i}")
            for i, c in enumerate(search.grid)
        ]
        best = max(range(len(trials)), key=lambda i: (trials[i].score, -i))
    else:
        trials, best = _greedy(spec, search.parameter, paths, merge, score, work)
    chosen = _with_values(spec, search.parameter, trials[best].values)
    result = SearchResult(
        "grid" if search.grid else "greedy",
        search.parameter,
        tuple(search.task_dirs),
        tuple(m.ref for m in spec.models),
        tuple(trials),
        best,
    )
    return chosen, result


def _greedy(
    spec: MergeSpec, parameter: str, paths: Sequence[Path], merge: Merger, score: Scorer, work: Path
) -> tuple[list[Trial], int]:
    n = len(spec.models)
    if n < 3:
        raise UserError(
            f"zoo.search.greedy needs at least 3 models (the soup starts from the best "
            f"two), the recipe has {n}; use a grid"
        )
    alone = [Trial(_only(n, i), score(paths[i])) for i in range(n)]
    rank = sorted(range(n), key=lambda i: (-alone[i].score, i))
    trials = list(alone)
    soup = set(rank[:2])
    trials.append(_trial(spec, parameter, _soup(n, soup), merge, score, work / "s2"))
    best = len(trials) - 1
    for i in rank[2:]:
        trial = _trial(
            spec, parameter, _soup(n, soup | {i}), merge, score, work / f"s{len(soup) + 1}"
        )
        trials.append(trial)
        if trial.score >= trials[best].score:
            soup, best = soup | {i}, len(trials) - 1
    return trials, best


def _only(n: int, i: int) -> tuple[float | None, ...]:
    return tuple(1.0 if j == i else None for j in range(n))


def _soup(n: int, members: set[int]) -> tuple[float | None, ...]:
    return tuple(1.0 if j in members else None for j in range(n))


def _trial(
    spec: MergeSpec,
    parameter: str,
    values: tuple[float | None, ...],
    merge: Merger,
    score: Scorer,
    out: Path,
) -> Trial:
    merge(_with_values(spec, parameter, values), out)
    try:
        return Trial(values, score(out))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _with_values(spec: MergeSpec, parameter: str, values: Sequence[float | None]) -> MergeSpec:
    models = tuple(
        replace(m, params={**m.params, parameter: v})
        for m, v in zip(spec.models, values)
        if v is not None
    )
    return replace(spec, models=models)
