"""`zoo boom`: train bags -> publish them -> write the recipe -> merge -> evaluate -> card -> publish.

Resumable: bags already on the Hub with the same manifest and settings are reused (train_bags).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zoo.errors import UserError
from zoo.merge.registry import get_method
from zoo.pipelines.bags import BagOutcome, train_bags
from zoo.pipelines.merging import MergeOutcome, merge
from zoo.types import check_repo_id


@dataclass(frozen=True)
class BoomOutcome:
    """What `zoo boom` produced: the bags, the recipe written, the merge, the BLS baseline."""

    bags: list[BagOutcome]
    recipe: Path
    merged: MergeOutcome
    bls: str | None = None


def boom_recipe(
    method: str,
    base: str,
    experiment: str,
    publish: str,
    task_dirs: Sequence[str] = (),
    private: bool = False,
) -> str:
    """The merge recipe of a BOOM run: every bag of the experiment, ordered by ratio."""
    select: dict[str, Any] = {"kind": "bag", "experiment": experiment, "order_by": "training.ratio"}
    if get_method(method).param("weight") is not None:
        select["parameters"] = {"weight": 1.0}
    zoo: dict[str, Any] = {"select": select, "publish": {"repo_id": publish, "private": private}}
    if task_dirs:
        zoo["eval"] = {"task_dirs": [str(d) for d in task_dirs]}
    data: dict[str, Any] = {"merge_method": method}
    if get_method(method).uses_base:
        data["base_model"] = base
    data["zoo"] = zoo
    header = (
        f"# Written by `zoo boom`: BOOM ({method}) over the bags of experiment '{experiment}'.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False)


def boom(
    corpus: Path,
    *,
    base: str,
    publish: str,
    method: str = "multislerp",
    ratios: Sequence[float] | None = None,
    task_dirs: Sequence[str] = (),
    bag_prefix: str | None = None,
    bls_repo: str | None = None,
    out: Path = Path(".zoo/boom"),
    hub: str | None = None,
    token: str | None = None,
    progress: bool = True,
    **train: Any,
) -> BoomOutcome:
    """Run BOOM end to end and publish the merged model (plus, with bls_repo, the BLS baseline)."""
    check_repo_id(publish)
    get_method(method)
    org, name = publish.split("/")
    prefix = bag_prefix or f"{org}/bag"
    check_repo_id(prefix)
    if bls_repo:
        check_repo_id(bls_repo)
    if bls_repo and 1.0 not in (ratios or (1.0,)):
        raise UserError("--bls needs the ratio 1.0 bag (batch-level shuffling on the full corpus)")
    bags = train_bags(
        corpus,
        base=base,
        ratios=ratios,
        push_to=prefix,
        experiment=name,
        out=out / "bags",
        hub=hub,
        token=token,
        progress=progress,
        **train,
    )
    out.mkdir(parents=True, exist_ok=True)
    recipe = out / f"{name}.yaml"
    recipe.write_text(boom_recipe(method, base, name, publish, task_dirs), encoding="utf-8")
    target = out / "merged"
    if target.exists():
        shutil.rmtree(target)  # a previous run's output: the published revision is the record
    merged = merge(recipe, out=target, publish=True, hub=hub, token=token, progress=progress)
    bls = _publish_bls(bags, bls_repo, hub, token) if bls_repo else None
    return BoomOutcome(bags, recipe, merged, bls)


def _publish_bls(bags: list[BagOutcome], repo: str, hub: str | None, token: str | None) -> str:
    """The ratio-1.0 bag *is* batch-level shuffling on the full corpus: publish it under repo too."""
    from zoo.hub import client
    from zoo.hub.session import open_hub
    from zoo.pipelines.members import push
    from zoo.types import ModelRef

    full = next(b for b in bags if b.ratio == 1.0)
    with open_hub(hub, token) as h:
        folder = (
            full.path if full.result else client.pull_member(h, ModelRef.parse(full.published)).path
        )
        sha, _ = push(
            h, folder, repo, meta_kv={"role": "bls-baseline", "same_weights_as": full.published}
        )
    return f"{repo}@{sha}"
