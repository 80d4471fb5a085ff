"""The `zoo merge` job: its options and the loaded, checked recipe (or lock) it runs.

Plain data shared by the merge pipeline (merging), its inputs (merge_inputs) and a multi-merge's
earlier merges (multi_merge); no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo.recipe.lock import Lock
from zoo.recipe.multi import Step
from zoo.recipe.schema import Recipe, split_model_ref
from zoo.types import is_local_ref


@dataclass(frozen=True)
class MergeOptions:
    """How to run a merge (the `zoo merge` flags)."""

    out: Path | None = None  # None: merged/<name>, replaced by a later run of the same recipe
    publish: bool = False
    pr: bool = False  # with publish: open a pull request on the target repo, not a push to main
    dry_run: bool = False
    search: bool = False  # run the recipe's zoo.search and merge its best candidate
    push_inputs: bool = False  # push local inputs to the Hub first, pinned, for the lineage
    device: str = "cpu"
    threads: int | None = None  # compute threads; None: every core (same bytes for any count)
    allow_pickle: bool = False
    progress: bool = True


@dataclass(frozen=True)
class MergeJob:
    """A loaded, checked merge: the recipe (a multi-merge's final one, with the whole text), its
    lock (when re-running one), the options, and a multi-merge's earlier merges and final name."""

    recipe: Recipe
    lock: Lock | None
    options: MergeOptions
    steps: tuple[Step, ...] = ()
    name: str | None = None

    def refs(self) -> list[str]:
        """The inputs as the lock pins them or the recipe names them (not the selected ones, not
        the earlier merges of a multi-merge); both parts of a 'model+adapter'."""
        if self.lock:
            return [i.pinned for i in self.lock.all_inputs()]
        names = {s.name for s in self.steps}
        refs = [r for s in self.steps for r in _recipe_refs(s.recipe)] + _recipe_refs(self.recipe)
        return [r for r in dict.fromkeys(refs) if r not in names]

    @property
    def writes_hub(self) -> bool:
        """True when the merge pushes to the Hub (its directory is then created if missing)."""
        o = self.options
        return (o.publish or o.push_inputs) and not o.dry_run

    @property
    def needs_hub(self) -> bool:
        """True when the merge talks to a Hub: it writes, selects, or has a Hub input."""
        recipes = [self.recipe, *(s.recipe for s in self.steps)]
        selects = any(r.zoo.select is not None for r in recipes) and self.lock is None
        return self.writes_hub or selects or any(not is_local_ref(r) for r in self.refs())


def _recipe_refs(recipe: Recipe) -> list[str]:
    """Every model the recipe names (models, slices, a modules: form, the base); both parts of
    a 'model+adapter'."""
    data = recipe.merge
    parts = [data, *(data.get("modules") or {}).values()]
    refs = [str(m["model"]) for part in parts for m in part.get("models") or []]
    refs += [
        str(src["model"])
        for part in parts
        for sl in part.get("slices") or []
        for src in sl.get("sources") or []
    ]
    refs += [
        str(sl["base_model"])
        for part in parts
        for sl in part.get("slices") or []
        if sl.get("base_model")
    ]
    refs += [str(data["base_model"])] if data.get("base_model") else []
    return [part for r in refs for part in _parts(r)]


def _parts(ref: str) -> list[str]:
    """Both parts of a 'model+adapter' ref (one for a plain ref or a folder named with '+')."""
    try:
        return [p for p in split_model_ref(ref) if p]
    except ValueError:  # refused when the recipe loads; nothing to open a Hub for
        return [ref]
