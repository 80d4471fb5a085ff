"""`zoo boom`: train bags -> publish them -> write the recipe -> merge -> evaluate -> publish.

Resumable: bags already on the Hub with the same manifest and settings are reused (train_bags).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.merge.registry import get_method
from zoo.pipelines.bags import BagOptions, BagOutcome, prepare_bags, train_bags
from zoo.pipelines.members import push
from zoo.pipelines.merging import MergeOptions, MergeOutcome, merge, prepare_merge
from zoo.recipe.build import build_recipe, write_recipe
from zoo.recipe.schema import Recipe
from zoo.types import ModelRef, check_repo_id


@dataclass(frozen=True)
class BoomOutcome:
    """What `zoo boom` produced: the bags, the recipe written, the merge, the BLS baseline."""

    bags: list[BagOutcome]
    recipe: Path
    merged: MergeOutcome
    bls: str | None = None


@dataclass(frozen=True)
class BoomOptions:
    """A BOOM run (the `zoo boom` flags); train holds TrainConfig fields."""

    base: str  # the base model, a Hub ref REPO_ID[@REV]
    publish: str  # repo of the merged model
    method: str = "multislerp"
    ratios: tuple[float, ...] | None = None  # None: the corpus spec's
    task_dirs: tuple[str, ...] = ()  # evaluate base, bags and merged model on these
    bag_prefix: str | None = None  # None: ORG/bag
    bls_repo: str | None = None  # also publish the ratio-1.0 bag here (the BLS baseline)
    out: Path = Path(".zoo/boom")
    seed: int = 0
    progress: bool = True
    train: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self)  # bad flags fail before the Hub is opened

    @property
    def prefix(self) -> str:
        return self.bag_prefix or f"{self.publish.split('/')[0]}/bag"

    @property
    def experiment(self) -> str:
        return self.publish.split("/")[1]


def boom_recipe(o: BoomOptions) -> Recipe:
    """The merge recipe of a BOOM run: every bag of the experiment, ordered by ratio."""
    return build_recipe(
        o.method,
        publish=o.publish,
        base=o.base,
        select={"kind": "bag", "experiment": o.experiment, "order_by": "training.ratio"},
        task_dirs=o.task_dirs,
        header=f"Written by `zoo boom`: BOOM ({o.method}) over the bags of "
        f"experiment '{o.experiment}'.",
    )


def boom(hub: Hub, corpus: Path, o: BoomOptions) -> BoomOutcome:
    """Run BOOM end to end on the open hub and publish the merged model (and the BLS baseline)."""
    bags = train_bags(hub, prepare_bags(corpus, _bag_options(o)))
    recipe = write_recipe(boom_recipe(o), o.out / f"{o.experiment}.yaml")
    target = o.out / "merged"
    if target.exists():
        shutil.rmtree(target)  # a previous run's output: the published revision is the record
    options = MergeOptions(out=target, publish=True, progress=o.progress)
    merged = merge(hub, prepare_merge(recipe, options=options))
    bls = _publish_bls(hub, bags, o.bls_repo) if o.bls_repo else None
    return BoomOutcome(bags, Path(recipe.source), merged, bls)


def _check(o: BoomOptions) -> None:
    check_repo_id(o.publish)
    get_method(o.method)
    check_repo_id(o.prefix)
    if o.bls_repo:
        check_repo_id(o.bls_repo)
    if o.bls_repo and 1.0 not in (o.ratios or (1.0,)):
        raise UserError("--bls needs the ratio 1.0 bag (batch-level shuffling on the full corpus)")


def _bag_options(o: BoomOptions) -> BagOptions:
    return BagOptions(
        base=o.base,
        ratios=o.ratios,
        seed=o.seed,
        push_to=o.prefix,
        experiment=o.experiment,
        out=o.out / "bags",
        progress=o.progress,
        train=o.train,
    )


def _publish_bls(h: Hub, bags: list[BagOutcome], repo: str) -> str:
    """The ratio-1.0 bag *is* batch-level shuffling on the full corpus: publish it as repo too."""
    full = next(b for b in bags if b.ratio == 1.0)
    folder = (
        full.path if full.result else client.pull_member(h, ModelRef.parse(full.published)).path
    )
    sha, _ = push(
        h, folder, repo, meta_kv={"role": "bls-baseline", "same_weights_as": full.published}
    )
    return f"{repo}@{sha}"
