"""The recipe: a mergekit MergeConfiguration plus one `zoo:` block, validated strictly.

mergekit's part is checked against zoo's own copy of its schema (zoo.recipe.mergekit_schema), so
loading a recipe imports no mergekit.

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
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from zoo.errors import UserError
from zoo.merge.registry import list_methods
from zoo.recipe.mergekit_schema import (
    InputModelDefinition,
    InputSliceDefinition,
    MergeConfiguration,
    OutputModuleDefinition,
    OutputSliceDefinition,
)
from zoo.schema import KINDS, YAML_ERRORS, Frozen
from zoo.suggest import unknown_name
from zoo.types import is_local_ref


class Select(Frozen):
    """Pick recipe inputs from the Hub by their zoo metadata; expands into `models:` entries."""

    kind: str | None = Field(default="bag", description="member kind: base | bag | update | merged")
    experiment: str | None = Field(default=None, description="experiment name shared by the bags")
    tags: tuple[str, ...] = Field(default=(), description="Hub tags every selected repo must carry")
    base_model: str | None = Field(default=None, description="only members of this base (repo id)")
    meta: dict[str, str] = Field(
        default_factory=dict, description="KEY=VALUE metadata queries (AND)"
    )
    order_by: str = Field(
        default="repo_id", description="metadata field to sort by, e.g. training.ratio"
    )
    descending: bool = False
    limit: int | None = Field(default=None, ge=1, description="keep the first N after sorting")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="per-model merge parameters"
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str | None) -> str | None:
        if kind is not None and kind not in KINDS:
            raise ValueError(unknown_name("member kind", kind, KINDS))
        return kind


class Publish(Frozen):
    """Where the merged model goes."""

    repo_id: str = Field(description="target repo 'namespace/name'")
    private: bool = False
    tag: str | None = Field(default=None, description="tag for the new commit (default: next vN)")


class EvalSpec(Frozen):
    """Evaluation to run after the merge, before publishing."""

    tasks: tuple[str, ...] = Field(default=(), description="MTEB task or benchmark names")
    task_dirs: tuple[str, ...] = Field(default=(), description="local task folders")


class SearchSpec(Frozen):
    """Evaluation-driven weight search, run by `zoo merge --search`: every candidate is merged
    and scored on dev task folders (mean main score); the best one is merged and published."""

    task_dirs: tuple[str, ...] = Field(min_length=1, description="dev task folders to score on")
    parameter: str = Field(default="weight", description="the per-model parameter searched")
    grid: tuple[tuple[float, ...], ...] = Field(
        default=(), description="candidates: one list per candidate, one value per model"
    )
    greedy: bool = Field(
        default=False,
        description="greedy soup: models in order of their own dev "
        "score, each kept if the soup does not get worse",
    )

    @model_validator(mode="after")
    def _one_strategy(self) -> SearchSpec:
        if bool(self.grid) == self.greedy:
            raise ValueError("give either grid (candidate values) or greedy: true")
        return self


class CardSpec(Frozen):
    """How the card is rendered."""

    template: str = Field(default="merged", description="template name in zoo/cards/templates/")


class ZooBlock(Frozen):
    """zoo's extension of a mergekit recipe."""

    select: Select | None = None
    publish: Publish | None = None
    eval: EvalSpec | None = None
    search: SearchSpec | None = None
    card: CardSpec = CardSpec()
    seed: int = Field(default=0, description="seed of stochastic methods (dare, della, ...)")
    random_seed: int | None = Field(
        default=None,
        ge=0,
        description="draw DARE/DELLA masks exactly as `mergekit-yaml --random-seed N` does "
        "(same bytes as mergekit); default: zoo's per-tensor seed (seed)",
    )


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
    except YAML_ERRORS as exc:
        detail = _first_line(str(exc) or type(exc).__name__)
        raise UserError(f"{source}: not valid YAML ({detail})") from None
    return recipe_from_data(data, text, source)


def load_documents(path_or_text: str | Path) -> tuple[str, str, list[Any]]:
    """Read a recipe file (or YAML text) that may hold several YAML documents (mergekit-multi);
    return (text, source name, the documents, empty ones left out)."""
    text, source = _read(path_or_text)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except YAML_ERRORS as exc:
        detail = _first_line(str(exc) or type(exc).__name__)
        raise UserError(f"{source}: not valid YAML ({detail})") from None
    return text, source, docs


def recipe_from_data(data: Any, text: str, source: str) -> Recipe:
    """Validate one parsed recipe document (data is not changed); raise one UserError."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: a recipe is a YAML mapping with merge_method and models")
    data = dict(data)
    problems: list[str] = []
    raw_zoo = data.pop("zoo", None)
    zoo = _zoo_block({} if raw_zoo is None else raw_zoo, problems)
    problems += _structure_problems(data, zoo)
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))
    return Recipe(text=text, merge=data, zoo=zoo, source=source)


def _read(path_or_text: str | Path) -> tuple[str, str]:
    """Return (text, source name); a string holding a line break is YAML text, else a path."""
    if not isinstance(path_or_text, Path) and "".join(path_or_text.splitlines()) != path_or_text:
        return path_or_text, "<recipe>"
    path = Path(path_or_text)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8") from None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError):  # NUL in path
        raise UserError(f"recipe not found: {_printable(path)}") from None
    except OSError as exc:
        raise UserError(f"{_printable(path)}: cannot read ({exc.strerror or exc})") from None


def _first_line(text: str) -> str:
    return (text.splitlines() or [""])[0]


def _printable(part: object) -> str:
    """Return `part` as text, quoted and escaped if it holds a line break or control character."""
    return str(part) if str(part).isprintable() else repr(part)


def _where(loc: tuple) -> str:
    return ".".join(_printable(p) for p in loc)


def _zoo_block(raw: Any, problems: list[str]) -> ZooBlock:
    try:
        return ZooBlock.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(_field_problem(("zoo", *err["loc"]), err, _zoo_known(err["loc"])))
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


def _field_problem(loc: tuple, err: dict, known: list[str]) -> str:
    if err["type"] == "extra_forbidden":
        return unknown_name(f"key in {_where(loc[:-1])}:", loc[-1], known)
    if err["type"] == "value_error":  # our own validators: their message, without pydantic's prefix
        return f"{_where(loc)}: {_first_line(str(err['ctx']['error']))}"
    return f"{_where(loc)}: {_first_line(err['msg'])}"


_TOP = set(MergeConfiguration.model_fields) | {"zoo"}
_MODEL_KEYS = set(InputModelDefinition.model_fields)
_SLICE_KEYS = set(OutputSliceDefinition.model_fields)
_SOURCE_KEYS = set(InputSliceDefinition.model_fields)
_MODULE_KEYS = set(OutputModuleDefinition.model_fields)


def _structure_problems(data: dict, zoo: ZooBlock) -> list[str]:
    problems = [unknown_name("key", k, _TOP) for k in data if k not in _TOP]
    method = data.get("merge_method")
    if not method:
        problems.append("merge_method is required")
    elif method not in list_methods():
        problems.append("merge_method: " + unknown_name("merge method", method, list_methods()))
    problems += _inputs_problems(data, zoo)
    if not problems:
        problems += _mergekit_problems(data, zoo)
    return problems


def _inputs_problems(data: dict, zoo: ZooBlock) -> list[str]:
    problems = _models_problems("models", data.get("models"))
    for i, sl in enumerate(_entries(data.get("slices"), "slices", problems)):
        problems += _slice_problems(i, sl)
    has_inputs = bool(data.get("models") or data.get("slices") or data.get("modules"))
    if not has_inputs and zoo.select is None:
        problems.append("no inputs: give models:, slices: or zoo.select:")
    if data.get("models") and zoo.select is not None:
        problems.append("give either models: or zoo.select:, not both")
    if (data.get("slices") or data.get("modules")) and zoo.select is not None:
        problems.append("zoo.select expands into models:; it cannot fill slices: or modules:")
    if (data.get("slices") or data.get("modules")) and zoo.search is not None:
        problems.append("zoo.search searches the per-model weights of models:, not slices:")
    problems += _modules_problems(data.get("modules"))
    return problems


def _models_problems(where: str, models: Any) -> list[str]:
    """The problems of a `models:` list (at where): entries, their keys, their model refs."""
    problems: list[str] = []
    for i, entry in enumerate(_entries(models, where, problems)):
        if not isinstance(entry, dict) or "model" not in entry:
            problems.append(f"{where}[{i}]: expected a mapping with 'model'")
            continue
        problems += _unknown_keys(f"{where}[{i}]", entry, _MODEL_KEYS)
        try:
            split_model_ref(str(entry["model"]))
        except ValueError as exc:
            problems.append(f"{where}[{i}].model: {exc}")
    return problems


def _modules_problems(modules: Any) -> list[str]:
    if modules is None:
        return []
    if not isinstance(modules, dict):
        return [f"modules: expected a mapping of module name to slices/models, got {modules!r}"]
    problems = []
    for name, module in modules.items():
        if not isinstance(module, dict):
            problems.append(f"modules.{_printable(name)}: expected a mapping with slices or models")
            continue
        where = f"modules.{_printable(name)}"
        problems += _unknown_keys(where, module, _MODULE_KEYS)
        problems += _models_problems(f"{where}.models", module.get("models"))
        for i, sl in enumerate(_entries(module.get("slices"), f"{where}.slices", problems)):
            problems += [f"{where}." + p for p in _slice_problems(i, sl)]
    return problems


def split_model_ref(text: str) -> tuple[str, str | None]:
    """(model, adapter or None) of 'MODEL' or mergekit's 'MODEL+ADAPTER'; a local folder whose
    name holds '+' is a MODEL. Raise ValueError on any other use of '+'."""
    if "+" not in text or is_local_ref(text):
        return text, None
    parts = text.split("+")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ValueError(f"{text!r}: expected MODEL or MODEL+LORA_ADAPTER (one '+')")
    return parts[0], parts[1]


def _slice_problems(i: int, sl: Any) -> list[str]:
    if not isinstance(sl, dict):
        return [f"slices[{i}]: expected a mapping with 'sources'"]
    problems = _unknown_keys(f"slices[{i}]", sl, _SLICE_KEYS)
    if not sl.get("sources"):
        problems.append(f"slices[{i}].sources: give at least one source (model + layer_range)")
    for j, src in enumerate(_entries(sl.get("sources"), f"slices[{i}].sources", problems)):
        if not isinstance(src, dict):
            problems.append(f"slices[{i}].sources[{j}]: expected a mapping with 'model'")
            continue
        problems += _unknown_keys(f"slices[{i}].sources[{j}]", src, _SOURCE_KEYS)
    return problems


def _unknown_keys(where: str, mapping: dict, known: set[str]) -> list[str]:
    """One did-you-mean problem per key of mapping that is not in known."""
    return [unknown_name(f"key in {where}:", k, known) for k in mapping if k not in known]


def _entries(value: Any, where: str, problems: list[str]) -> list:
    """Return `value` as a list (empty if unset); note a problem if it is not a list."""
    if value and not isinstance(value, list):
        problems.append(f"{where}: expected a list, got {type(value).__name__}")
    return value if isinstance(value, list) else []


def _mergekit_problems(data: dict, zoo: ZooBlock) -> list[str]:
    """What mergekit's MergeConfiguration refuses in data (zoo's mirror of it), one line each."""
    probe = dict(data)
    if zoo.select is not None:
        probe["models"] = [{"model": "select/placeholder"}]
    try:
        MergeConfiguration.model_validate(probe)
    except ValidationError as exc:
        return list(dict.fromkeys(_mergekit_problem(err) for err in exc.errors()))
    return []


_SETTING_SHAPES = (
    "a number, flag or string, a list of them (a gradient) or {value, filter} conditions"
)


def _mergekit_problem(err: Any) -> str:
    """One line for one error: the field, then the message (our validators' own words). A bad
    parameter setting fails every shape a setting may take: it is one problem, said once."""
    setting = _setting_field(err["loc"])
    if setting is not None:
        return f"{_where(setting)}: expected {_SETTING_SHAPES}"
    text = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
    if not err["loc"]:
        return f"not a valid mergekit configuration: {_first_line(text)}"
    return f"{_where(err['loc'])}: {_first_line(text)}"


def _setting_field(loc: tuple) -> tuple | None:
    """The location of the parameter setting an error lies inside (…parameters.NAME), or None."""
    for i, part in enumerate(loc[:-1]):
        if part == "parameters" and (i == 0 or loc[i - 1] != "modules"):
            return loc[: i + 2]
    return None
