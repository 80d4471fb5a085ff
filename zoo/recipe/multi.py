"""Multi-merges (mergekit-multi): several named merges in one recipe, later ones using earlier ones.

The format is mergekit-multi's: a multi-document YAML, each document a merge configuration with a
`name:`; a model reference whose path is another merge's name means that merge's output (also as
the base of a `name+adapter` reference). zoo also reads one mapping `merges: [document, ...]`,
the same documents in a list. The final merge is the one with `zoo.publish`, else the unnamed one
(as in mergekit-multi), else the last; it must use every other merge, directly or not, and no
merge may use it. Pure: no weights, no network.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from zoo.errors import UserError
from zoo.recipe.lock import MERGE_PREFIX
from zoo.recipe.schema import Recipe, load_documents, recipe_from_data, split_model_ref
from zoo.suggest import unknown_name
from zoo.types import is_local_ref

_REF_KEYS = ("model", "base_model", "tokenizer_source", "source")
_CHECKED = ("model", "base_model")  # refs that must be a merge, a folder or a hub repo
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # also a folder name: no '/', no '..'
_FINAL_ONLY = ("eval", "search")
K = TypeVar("K")


@dataclass(frozen=True)
class Step:
    """One merge before the final one: its name, its recipe, the merges it uses."""

    name: str
    recipe: Recipe
    needs: tuple[str, ...]


@dataclass(frozen=True)
class MultiRecipe:
    """A loaded recipe of one or more merges: the final one (its text is the whole file), its
    name (None when unnamed), and the merges before it in dependency order."""

    final: Recipe
    name: str | None = None
    steps: tuple[Step, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)


def step_ref(name: str) -> str:
    """The pinned ref of an earlier merge's output in a lock: 'merge:<name>'."""
    return MERGE_PREFIX + name


def label(name: str | None) -> str:
    """A merge as error messages name it."""
    return "(the unnamed merge)" if name is None else repr(name)


def load_multi(path_or_text: str | Path) -> MultiRecipe:
    """Read a recipe of one merge (as load_recipe does) or of several named merges."""
    text, source, docs = load_documents(path_or_text)
    docs = _unwrap(docs, source)
    if len(docs) == 1 and not (isinstance(docs[0], dict) and "name" in docs[0]):
        return MultiRecipe(recipe_from_data(docs[0], text, source))
    named = _named(docs, source)
    recipes = {n: recipe_from_data(d, text, f"{source}: merge {label(n)}") for n, d in named}
    names = [n for n in recipes if n is not None]
    needs = {n: tuple(_needs(d, names, f"{source}: merge {label(n)}")) for n, d in named}
    final = _final(recipes, source)
    order = dependency_order(needs, final, source)
    steps = tuple(Step(n, recipes[n], needs[n]) for n in order[:-1])
    for step in steps:
        _check_intermediate(step, source)
    return MultiRecipe(dataclasses.replace(recipes[final], source=source), final, steps)


def _unwrap(docs: list[Any], source: str) -> list[Any]:
    """The documents; one mapping holding `merges:` stands for its list of documents."""
    if not docs:
        raise UserError(f"{source}: empty recipe; a recipe is a YAML mapping with merge_method")
    if len(docs) != 1 or not isinstance(docs[0], dict) or "merges" not in docs[0]:
        return docs
    extra = sorted(str(k) for k in docs[0] if k != "merges")
    if extra:
        raise UserError(f"{source}: {extra[0]}: a recipe with merges: holds only that list")
    merges = docs[0]["merges"]
    if not isinstance(merges, list) or not merges:
        raise UserError(f"{source}: merges: expected a list of named merge configurations")
    return merges


def _named(docs: list[Any], source: str) -> list[tuple[str | None, dict]]:
    """(name, document without its name) for each document; names checked, at most one None."""
    out: list[tuple[str | None, dict]] = []
    for i, doc in enumerate(docs):
        where = f"{source}: merge {i + 1}"
        if not isinstance(doc, dict):
            raise UserError(f"{where}: a merge is a YAML mapping with name and merge_method")
        doc = dict(doc)
        name = doc.pop("name", None)
        if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
            raise UserError(
                f"{where}: name: {name!r} is not a merge name "
                "(letters, digits, '.', '_', '-'; a letter or digit first)"
            )
        if name in [n for n, _ in out]:
            what = f"two merges are named {name!r}" if name else "only one merge may be unnamed"
            raise UserError(f"{where}: {what}")
        out.append((name, doc))
    return out


def model_refs(data: Any) -> list[tuple[str, str]]:
    """(where, ref) for every model reference in a merge document, in document order."""
    out: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                at = f"{where}.{key}" if where else str(key)
                if key in _REF_KEYS and isinstance(item, str):
                    out.append((at, item))
                elif key != "zoo":
                    walk(item, at)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    walk(data, "")
    return out


def _model_of(ref: str) -> str:
    """The model of a 'model+adapter' ref (a local folder named with '+' is one model); a ref
    that is not valid stays whole (the recipe's own check names it)."""
    try:
        return split_model_ref(ref)[0]
    except ValueError:
        return ref


def _needs(data: dict, names: Sequence[str], where: str) -> list[str]:
    """The merges a document uses (a ref, or the base of a 'ref+adapter', that is a name)."""
    used: list[str] = []
    for at, ref in model_refs(data):
        head = _model_of(ref)
        if head in names:
            used.append(head)
        elif at.rsplit(".", 1)[-1] in _CHECKED and "/" not in head and not is_local_ref(head):
            hint = unknown_name("merge", head, list(names))
            raise UserError(f"{where}: {at}: {hint} (nor a local folder or a hub 'org/name')")
    return list(dict.fromkeys(used))


def _final(recipes: Mapping[str | None, Recipe], source: str) -> str | None:
    """The merge that is published: the one with zoo.publish, else the unnamed, else the last."""
    publishing = [n for n, r in recipes.items() if r.zoo.publish is not None]
    if len(publishing) > 1:
        a, b = (label(n) for n in publishing[:2])
        raise UserError(f"{source}: merges {a} and {b} both have zoo.publish; one merge is final")
    if publishing and None in recipes and publishing[0] is not None:
        raise UserError(
            f"{source}: merge {label(publishing[0])} has zoo.publish, so it is the final merge; "
            "the unnamed merge would be lost: give it a name"
        )
    if publishing:
        return publishing[0]
    return None if None in recipes else list(recipes)[-1]


def dependency_order(needs: Mapping[K, Sequence[K]], final: K, source: str = "<recipe>") -> list[K]:
    """The merges `final` uses, each after the merges it uses, final last.

    Among merges free to go in any order, the order they are first used in. Raise UserError
    naming the merge on a cycle, on a merge that uses the final one, or on one never used.
    """
    order: list[K] = []

    def visit(name: K, path: list[K]) -> None:
        if name in order:
            return
        if name in path:
            cycle = " -> ".join(label(n) for n in [*path[path.index(name) :], name])
            raise UserError(f"{source}: merge {label(name)} depends on itself ({cycle})")
        for dep in needs[name]:
            visit(dep, [*path, name])
        order.append(name)

    visit(final, [])
    for name, deps in needs.items():
        if final in deps:
            raise UserError(
                f"{source}: merge {label(name)} uses {label(final)}, the final merge "
                "(the one published, or the last); reorder the documents"
            )
        if name not in order:
            raise UserError(
                f"{source}: merge {label(name)} is not used by the final merge {label(final)} "
                "(zoo writes one model: use it, or run it as a recipe of its own)"
            )
    return order


def _check_intermediate(step: Step, source: str) -> None:
    for field in _FINAL_ONLY:
        if getattr(step.recipe.zoo, field) is not None:
            raise UserError(
                f"{source}: merge {label(step.name)}: zoo.{field} belongs to the final merge "
                "(the earlier ones are not evaluated or searched)"
            )
