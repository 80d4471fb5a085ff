"""The recipe: a mergekit MergeConfiguration plus one `zoo:` block, validated strictly.

mergekit accepts unknown keys and misspelt parameters silently; zoo refuses them at load time,
reporting every problem in one error with did-you-mean hints. A community mergekit YAML (no zoo
block) loads unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mergekit.config import InputModelDefinition, InputSliceDefinition, MergeConfiguration, OutputSliceDefinition
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoo.errors import UserError
from zoo.merge.registry import list_methods, unknown_name

KINDS = ("base", "bag", "update", "merged")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Select(_Strict):
    """Pick recipe inputs from the Hub by their zoo metadata; expands into `models:` entries."""

    kind: str | None = Field(default="bag", description="member kind: base | bag | update | merged")
    experiment: str | None = Field(default=None, description="experiment name shared by the bags")
    tags: tuple[str, ...] = Field(default=(), description="Hub tags every selected repo must carry")
    base_model: str | None = Field(default=None, description="only members of this base (repo id)")
    meta: dict[str, str] = Field(default_factory=dict, description="KEY=VALUE metadata queries (AND)")
    order_by: str = Field(default="repo_id", description="metadata field to sort by, e.g. training.ratio")
    descending: bool = False
    limit: int | None = Field(default=None, ge=1, description="keep the first N after sorting")
    parameters: dict[str, Any] = Field(default_factory=dict, description="per-model merge parameters")


class Publish(_Strict):
    """Where the merged model goes."""

    repo_id: str = Field(description="target repo 'namespace/name'")
    private: bool = False
    tag: str | None = Field(default=None, description="tag for the new commit (default: next vN)")


class EvalSpec(_Strict):
    """Evaluation to run after the merge, before publishing."""

    tasks: tuple[str, ...] = Field(default=(), description="MTEB task or benchmark names")
    task_dirs: tuple[str, ...] = Field(default=(), description="local task folders")


class SearchSpec(_Strict):
    """Evaluation-driven weight search, run by `zoo merge --search`: every candidate is merged
    and scored on dev task folders (mean main score); the best one is merged and published."""

    task_dirs: tuple[str, ...] = Field(min_length=1, description="dev task folders to score on")
    parameter: str = Field(default="weight", description="the per-model parameter searched")
    grid: tuple[tuple[float, ...], ...] = Field(
        default=(), description="candidates: one list per candidate, one value per model")
    greedy: bool = Field(default=False, description="greedy soup: models in order of their own dev "
                                                    "score, each kept if the soup does not get worse")

    @model_validator(mode="after")
    def _one_strategy(self) -> "SearchSpec":
        if bool(self.grid) == self.greedy:
            raise ValueError("give either grid (candidate values) or greedy: true")
        return self


class CardSpec(_Strict):
    """How the card is rendered."""

    template: str = Field(default="merged", description="template name in model_cards/")


class ZooBlock(_Strict):
    """zoo's extension of a mergekit recipe."""

    select: Select | None = None
    publish: Publish | None = None
    eval: EvalSpec | None = None
    search: SearchSpec | None = None
    card: CardSpec = CardSpec()
    seed: int = Field(default=0, description="seed of stochastic methods (dare, della, ...)")


@dataclass(frozen=True)
class Recipe:
    """A loaded recipe: the text as written, the mergekit part, and the zoo block."""

    text: str
    merge: dict[str, Any]
    zoo: ZooBlock
    source: str = "<recipe>"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def method(self) -> str:
        return self.merge["merge_method"]


def load_recipe(path_or_text: str | Path) -> Recipe:
    """Read and validate a recipe file (or YAML text); raise one UserError naming every problem."""
    text, source = _read(path_or_text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: a recipe is a YAML mapping with merge_method and models")
    problems: list[str] = []
    zoo = _zoo_block(data.pop("zoo", None) or {}, problems)
    problems += _structure_problems(data, zoo)
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))
    return Recipe(text=text, merge=data, zoo=zoo, source=source)


def _read(path_or_text: str | Path) -> tuple[str, str]:
    if isinstance(path_or_text, Path) or "\n" not in str(path_or_text):
        path = Path(path_or_text)
        if not path.is_file():
            raise UserError(f"recipe not found: {path}")
        return path.read_text(encoding="utf-8"), str(path)
    return str(path_or_text), "<recipe>"


def _zoo_block(raw: Any, problems: list[str]) -> ZooBlock:
    try:
        return ZooBlock.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(_field_problem(f"zoo.{loc}", err, _zoo_known(err["loc"])))
        return ZooBlock()


def _zoo_known(loc: tuple) -> list[str]:
    model: type[BaseModel] = ZooBlock
    for part in loc[:-1]:
        annotation = model.model_fields.get(str(part))
        inner = getattr(annotation, "annotation", None)
        candidates = [a for a in getattr(inner, "__args__", (inner,)) if isinstance(a, type)]
        model = next((c for c in candidates if issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _field_problem(where: str, err: dict, known: list[str]) -> str:
    if err["type"] == "extra_forbidden":
        parent, _, key = where.rpartition(".")
        return unknown_name(f"key in {parent}:", key, known)
    return f"{where}: {err['msg']}"


_TOP = set(MergeConfiguration.model_fields) | {"zoo"}
_MODEL_KEYS = set(InputModelDefinition.model_fields)
_SLICE_KEYS = set(OutputSliceDefinition.model_fields)
_SOURCE_KEYS = set(InputSliceDefinition.model_fields)


def _structure_problems(data: dict, zoo: ZooBlock) -> list[str]:
    problems = [unknown_name("key", k, _TOP) for k in data if k not in _TOP]
    method = data.get("merge_method")
    if not method:
        problems.append("merge_method is required")
    elif method not in list_methods():
        problems.append(unknown_name("merge method", method, list_methods()))
    problems += _inputs_problems(data, zoo)
    if not problems:
        problems += _mergekit_problems(data, zoo)
    return problems


def _inputs_problems(data: dict, zoo: ZooBlock) -> list[str]:
    problems = []
    for i, entry in enumerate(data.get("models") or []):
        if not isinstance(entry, dict) or "model" not in entry:
            problems.append(f"models[{i}]: expected a mapping with 'model'")
            continue
        problems += [unknown_name(f"key in models[{i}]:", k, _MODEL_KEYS) for k in entry if k not in _MODEL_KEYS]
    for i, sl in enumerate(data.get("slices") or []):
        problems += [unknown_name(f"key in slices[{i}]:", k, _SLICE_KEYS) for k in sl if k not in _SLICE_KEYS]
        for j, src in enumerate(sl.get("sources") or []):
            problems += [unknown_name(f"key in slices[{i}].sources[{j}]:", k, _SOURCE_KEYS)
                         for k in src if k not in _SOURCE_KEYS]
    has_inputs = bool(data.get("models") or data.get("slices") or data.get("modules"))
    if not has_inputs and zoo.select is None:
        problems.append("no inputs: give models:, slices: or zoo.select:")
    if data.get("models") and zoo.select is not None:
        problems.append("give either models: or zoo.select:, not both")
    return problems


def _mergekit_problems(data: dict, zoo: ZooBlock) -> list[str]:
    probe = dict(data)
    if zoo.select is not None:
        probe["models"] = [{"model": "select/placeholder"}]
    try:
        MergeConfiguration.model_validate(probe)
    except (ValidationError, RuntimeError, ValueError) as exc:
        return [f"not a valid mergekit configuration: {str(exc).splitlines()[0]}"]
    return []
