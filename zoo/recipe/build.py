"""Recipes written by zoo itself (`zoo boom`, `zoo update`): one builder, validated like a user's.

Pure apart from `write_recipe`: same arguments, same YAML bytes (keys in a fixed order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from zoo.merge.registry import get_method
from zoo.recipe.schema import Recipe, load_recipe


def build_recipe(
    method: str,
    *,
    publish: str,
    base: str | None = None,
    models: Sequence[tuple[str, float]] = (),
    select: Mapping[str, Any] | None = None,
    task_dirs: Sequence[str | Path] = (),
    private: bool = False,
    header: str = "",
) -> Recipe:
    """A merge recipe of models (ref, weight) or of a zoo.select query, published to `publish`.

    base is written only when the method uses one; weights (1.0 for every selected member) only
    when the method takes a `weight`. header: comment lines put first. Raises UserError (from
    load_recipe) if the result is not a valid recipe.
    """
    spec = get_method(method)
    weighted = spec.param("weight") is not None
    data: dict[str, Any] = {"merge_method": method}
    if spec.uses_base and base:
        data["base_model"] = base
    if models:
        data["models"] = [
            {"model": ref, **({"parameters": {"weight": w}} if weighted else {})}
            for ref, w in models
        ]
    data["zoo"] = _zoo_block(select, weighted, publish, private, task_dirs)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return load_recipe(comment + yaml.safe_dump(data, sort_keys=False))


def _zoo_block(
    select: Mapping[str, Any] | None,
    weighted: bool,
    publish: str,
    private: bool,
    task_dirs: Sequence[str | Path],
) -> dict[str, Any]:
    zoo: dict[str, Any] = {}
    if select is not None:
        zoo["select"] = {**select, **({"parameters": {"weight": 1.0}} if weighted else {})}
    zoo["publish"] = {"repo_id": publish, **({"private": True} if private else {})}
    if task_dirs:
        zoo["eval"] = {"task_dirs": [str(d) for d in task_dirs]}
    return zoo


def write_recipe(recipe: Recipe, path: Path) -> Recipe:
    """Write recipe's text to path (creating its folder); return it with path as its source."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(recipe.text, encoding="utf-8")
    return dataclasses.replace(recipe, source=str(path))
