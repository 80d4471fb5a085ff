"""The lock: every merge input pinned to a commit with the sha256 of every file it uses.

`zoo merge --lock FILE` re-runs a merge from its lock alone (the recipe as written is inside) and
gives byte-identical weights. Same inputs, same lock bytes: keys sorted, no sets, no clocks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_serializer

from zoo import __version__
from zoo.errors import UserError
from zoo.recipe.plan import MergeSpec, SliceSource, SliceSpec, Source, tokenizer_refs
from zoo.schema import Frozen

LOCK_FILE = "zoo.lock.json"
MERGE_PREFIX = "merge:"  # the pinned ref of an earlier merge's output


class LockedInput(Frozen):
    """One input: as the recipe named it, pinned, and the files it used with their sha256."""

    requested: str = Field(description="the reference as written or selected")
    pinned: str = Field(
        description="'org/name@<40-hex>' for Hub inputs, the path for local ones, "
        "'merge:<name>' for an earlier merge of the same recipe"
    )
    files: dict[str, str] = Field(description="path in repo -> sha256")
    params: dict[str, Any] = Field(default_factory=dict)
    adapter: LockedInput | None = Field(
        default=None, description="the peft LoRA adapter folded into this model (model+adapter)"
    )

    @model_serializer(mode="wrap")
    def _without_unset_adapter(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if data.get("adapter") is None:
            data.pop("adapter", None)
        return data

    @property
    def ref(self) -> str:
        """The pinned input as one reference ('pinned' or 'pinned+adapter-pinned')."""
        return f"{self.pinned}+{self.adapter.pinned}" if self.adapter else self.pinned


class LockedSliceSource(Frozen):
    """One source of an output slice: its pinned reference and the layers it gives."""

    model: str = Field(description="the pinned reference (as in models)")
    layer_range: tuple[int, int]
    params: dict[str, Any] = Field(default_factory=dict)


class LockedSlice(Frozen):
    """One output slice, every model pinned."""

    sources: tuple[LockedSliceSource, ...]
    base: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    def spec(self) -> SliceSpec:
        return SliceSpec(
            tuple(SliceSource(s.model, s.layer_range, dict(s.params)) for s in self.sources),
            self.base,
            dict(self.params),
        )


class LockedMerge(Frozen):
    """One merge, every input pinned."""

    name: str | None = Field(default=None, description="the merge's name in a multi-merge")
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    base: LockedInput | None = None
    models: tuple[LockedInput, ...]
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    seed: int = 0
    random_seed: int | None = None
    slices: tuple[LockedSlice, ...] = ()
    module_params: dict[str, Any] = Field(default_factory=dict)
    tokenizer: dict[str, Any] | None = None
    chat_template: str | None = None

    def spec(self) -> MergeSpec:
        """The merge spec with every input pinned (the tokenizer settings' models too)."""
        spec = MergeSpec(
            method=self.method,
            models=tuple(
                Source(m.pinned, dict(m.params), m.adapter.pinned if m.adapter else None)
                for m in self.models
            ),
            base=self.base.pinned if self.base else None,
            params=dict(self.params),
            dtype=self.dtype,
            out_dtype=self.out_dtype,
            tokenizer_source=self.tokenizer_source,
            seed=self.seed,
            random_seed=self.random_seed,
            slices=tuple(sl.spec() for sl in self.slices),
            module_params=dict(self.module_params),
            tokenizer=self.tokenizer,
            chat_template=self.chat_template,
        )
        items = ([self.base] if self.base else []) + list(self.models)
        pinned = {m.requested: m.pinned for m in items}
        pinned |= {ref: ref for ref in spec.refs()}
        source, tokenizer = tokenizer_refs(spec, pinned.__getitem__, pinned)
        return replace(spec, tokenizer_source=source, tokenizer=tokenizer)

    def merges(self) -> list[LockedMerge]:
        """Every merge in the order it runs (a Lock: its steps, then itself)."""
        return [self]

    def inputs(self) -> list[LockedInput]:
        """Every distinct locked input (adapters too), base first."""
        seen: dict[str, LockedInput] = {}
        for item in ([self.base] if self.base else []) + list(self.models):
            seen.setdefault(item.pinned, item)
        for item in self.models:
            if item.adapter is not None:
                seen.setdefault(item.adapter.pinned, item.adapter)
        return list(seen.values())


class LockedStep(LockedMerge):
    """A merge before the final one in a multi-merge, and the files it wrote."""

    name: str
    outputs: dict[str, str] = Field(description="file of its output -> sha256")


class Lock(LockedMerge):
    """A fully pinned merge; for a multi-merge, the final one, after the merges it uses."""

    lock_version: Literal[1] = 1
    recipe: str = Field(description="the recipe exactly as written")
    recipe_sha256: str
    steps: tuple[LockedStep, ...] = Field(
        default=(), description="a multi-merge's earlier merges, in the order they run"
    )
    zoo_version: str = __version__

    def to_json(self) -> str:
        """Deterministic serialisation (sorted keys, trailing newline); a merge of one document
        has no name or steps keys."""
        data = self.model_dump(mode="json")
        for key in ("name", "steps"):
            if not data[key]:
                data.pop(key)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def merges(self) -> list[LockedMerge]:
        """Every merge in the order it runs, this (the final) one last."""
        return [*self.steps, self]

    def parents(self) -> list[str]:
        """The pinned models (adapters too) of every merge that are not an earlier merge's
        output: what a published merge names as its parents, in the order the merges use them."""
        refs = [
            ref
            for merge in self.merges()
            for m in merge.models
            for ref in (m.pinned, *([m.adapter.pinned] if m.adapter else []))
        ]
        return [r for r in dict.fromkeys(refs) if not r.startswith(MERGE_PREFIX)]

    def all_inputs(self) -> list[LockedInput]:
        """Every distinct input of every merge that is not an earlier merge's output."""
        seen: dict[str, LockedInput] = {}
        for merge in self.merges():
            for item in merge.inputs():
                if not item.pinned.startswith(MERGE_PREFIX):
                    seen.setdefault(item.pinned, item)
        return list(seen.values())


Pins = dict[str, tuple[str, dict[str, str]]]


def locked_merge(spec: MergeSpec, pinned: Pins, name: str | None = None) -> dict[str, Any]:
    """The fields of a LockedMerge for spec: pinned maps each requested ref (adapters too) to
    (pinned ref, {file: sha256})."""

    def locked(ref: str, params: dict, adapter: str | None = None) -> LockedInput:
        target, files = pinned[ref]
        return LockedInput(
            requested=ref,
            pinned=target,
            files=dict(sorted(files.items())),
            params=params,
            adapter=locked(adapter, {}) if adapter else None,
        )

    return dict(
        name=name,
        method=spec.method,
        params=spec.params,
        base=locked(spec.base, {}) if spec.base else None,
        models=tuple(locked(m.ref, m.params, m.adapter) for m in spec.models),
        dtype=spec.dtype,
        out_dtype=spec.out_dtype,
        tokenizer_source=spec.tokenizer_source,
        seed=spec.seed,
        random_seed=spec.random_seed,
        slices=tuple(_locked_slice(sl, pinned) for sl in spec.slices),
        module_params=spec.module_params,
        tokenizer=spec.tokenizer,
        chat_template=spec.chat_template,
    )


def build_lock(
    spec: MergeSpec,
    recipe_text: str,
    recipe_sha256: str,
    pinned: Pins,
    *,
    name: str | None = None,
    steps: tuple[LockedStep, ...] = (),
) -> Lock:
    """Pin spec (the final merge); steps: the earlier merges of a multi-merge, already locked."""
    return Lock(
        recipe=recipe_text,
        recipe_sha256=recipe_sha256,
        steps=steps,
        **locked_merge(spec, pinned, name),
    )


def _locked_slice(sl: SliceSpec, pinned: dict[str, tuple[str, dict[str, str]]]) -> LockedSlice:
    sources = tuple(
        LockedSliceSource(model=pinned[s.ref][0], layer_range=s.layer_range, params=s.params)
        for s in sl.sources
    )
    base = pinned[sl.base][0] if sl.base else None
    return LockedSlice(sources=sources, base=base, params=sl.params)


def load_lock(path: Path) -> Lock:
    """Read a lock file; raise UserError naming the problem."""
    if not Path(path).is_file():
        raise UserError(f"lock file not found: {path}")
    try:
        return Lock.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise UserError(f"{path}: invalid lock ({where}: {first['msg']})") from None


def check_files(item: LockedInput, actual: dict[str, str]) -> None:
    """Raise UserError unless every locked file is present with its locked sha256."""
    for name, sha in item.files.items():
        if name not in actual:
            raise UserError(f"{item.pinned}: locked file {name} is missing")
        if actual[name] != sha:
            raise UserError(
                f"{item.pinned}: {name} has sha256 {actual[name][:12]}…, the lock says {sha[:12]}…"
            )
