"""The zoo metadata schema: what a published member is, what it was trained on, and from what.

Stored twice in every member repo: as `zoo.json` (the authority) and under the `zoo:` key of the
model card's YAML front matter, so that `list_models(cardData=True)` finds members in one call.
The schema is versioned; unknown fields are refused so a typo never passes silently.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from zoo import __version__
from zoo.errors import UserError
from zoo.schema import KINDS as KINDS  # re-exported: the CLI's --kind choices
from zoo.schema import Frozen, Kind
from zoo.types import PINNED_RE

SCHEMA_VERSION = 1
Scalar = str | int | float | bool | None


def _check_pinned(value: str) -> str:
    if not PINNED_RE.match(value):
        raise ValueError(f"{value!r} must be pinned as 'org/name@<40-hex commit>'")
    return value


class Adapter(Frozen):
    """How the weights are stored: a full checkpoint or a LoRA adapter over base_model."""

    type: Literal["full", "lora"] = Field(description="'full' checkpoint or 'lora' adapter")
    peft_config: dict[str, Any] | None = Field(
        default=None,
        description="the adapter's peft config (adapter_config.json) when type is lora",
    )

    @model_validator(mode="after")
    def _lora_needs_config(self) -> Adapter:
        if self.type == "lora" and not self.peft_config:
            raise ValueError("adapter.peft_config is required when adapter.type is 'lora'")
        return self


class DatasetUse(Frozen):
    """One dataset of a training run, exactly: where it came from and which rows were used."""

    name: str
    source: str = Field(description="local path, task folder or hub dataset 'org/name@sha'")
    revision: str | None = Field(default=None, description="source revision or content hash")
    fingerprint: str = Field(description="fingerprint of the normalised dataset")
    size: int | None = Field(default=None, ge=0, description="rows in the dataset sampled from")
    count: int = Field(ge=0, description="rows used")
    indices_sha256: str = Field(description="sha256 of the sorted selected row indices")
    role: Literal["train", "replay"] = Field(
        default="train",
        description="'train': drawn as a bag (ratio, seed); 'replay': a seeded "
        "sample of the rows the model's lineage was trained on",
    )


class Training(Frozen):
    """What a bag or update model was trained on, and how."""

    experiment: str | None = Field(
        default=None, description="experiment name shared by sibling bags"
    )
    corpus_manifest_hash: str = Field(description="sha256 of the whole sampling manifest")
    datasets: tuple[DatasetUse, ...] = Field(description="per-dataset sources and selections")
    ratio: float | None = Field(default=None, gt=0, le=1, description="bag sampling ratio")
    seed: int = Field(description="seed for sampling and training")
    bootstrap: bool = Field(default=False, description="sampled with replacement")
    subset_hash: str | None = Field(default=None, description="sha256 over the selected subset")
    hyperparameters: dict[str, Scalar] = Field(default_factory=dict)
    examples_seen: int = Field(ge=0)
    wall_time_s: float = Field(ge=0)
    replay: float | None = Field(
        default=None, gt=0, le=1, description="update models: the fraction of the history replayed"
    )
    corpus_spec: dict[str, Any] | None = Field(
        default=None,
        description="the corpus spec entries of the datasets used, sources as "
        "written (how to load the exact rows again)",
    )


class ZooMetadata(Frozen):
    """The zoo metadata of one member (zoo.json)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Kind = Field(description="base | bag | update | merged")
    base_model: str | None = Field(default=None, description="the base model as 'org/name@sha'")
    adapter: Adapter = Field(default=Adapter(type="full"))
    training: Training | None = None
    parents: tuple[str, ...] = Field(
        default=(), description="merged/updated from, as 'org/name@sha'"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="free KEY=VALUE labels (--meta)"
    )
    scores: dict[str, float] = Field(
        default_factory=dict, description="evaluation main scores by task"
    )
    zoo_version: str = __version__
    created_at: str = Field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    )

    @field_validator("base_model")
    @classmethod
    def _base_pinned(cls, v: str | None) -> str | None:
        return None if v is None else _check_pinned(v)

    @field_validator("parents")
    @classmethod
    def _parents_pinned(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_pinned(p) for p in v)

    @model_validator(mode="after")
    def _kind_rules(self) -> ZooMetadata:
        if self.kind in ("bag", "update") and self.training is None:
            raise ValueError(f"kind={self.kind} needs a 'training' record")
        if self.kind != "base" and not self.base_model:
            raise ValueError(f"kind={self.kind} needs base_model as 'org/name@sha'")
        if self.kind == "merged" and not self.parents:
            raise ValueError("kind=merged needs its parents as 'org/name@sha'")
        if self.adapter.type == "lora" and not self.base_model:
            raise ValueError("a lora adapter needs base_model")
        return self

    @property
    def experiment(self) -> str | None:
        """The experiment name of a trained member, else its 'experiment' label."""
        return self.training.experiment if self.training else self.labels.get("experiment")

    def to_json(self) -> str:
        """Serialise deterministically (sorted keys, trailing newline)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    def flat(self) -> dict[str, Any]:
        """Flatten to dotted keys (training.ratio, labels.x, ...) for metadata queries."""
        return _flatten(self.model_dump(mode="json"))


def parse_metadata(data: str | bytes | dict, *, where: str = "zoo.json") -> ZooMetadata:
    """Validate zoo metadata; raise UserError listing every problem with its field."""
    try:
        raw = json.loads(data) if isinstance(data, (str, bytes)) else data
        return ZooMetadata.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValidationError as exc:
        raise UserError(f"{where}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    """One line naming every invalid field."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(obj, dict):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        out.update(
            _flatten(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}")
        )
    return out


def matches(meta: ZooMetadata, query: dict[str, str]) -> bool:
    """True when every KEY=VALUE of the query matches a field (dotted or by its last name).

    Values compare as strings, numbers numerically ('ratio=0.4' matches 0.4), lists by membership.
    """
    flat = meta.flat()
    return all(_match_one(flat, key, want) for key, want in query.items())


def _match_one(flat: dict[str, Any], key: str, want: str) -> bool:
    hits = [v for k, v in flat.items() if k == key or k.endswith("." + key)]
    return any(_equal(v, want) for v in hits)


def _equal(value: Any, want: str) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_equal(v, want) for v in value)
    if isinstance(value, bool) or value is None:
        return str(value).lower() == want.lower()
    if isinstance(value, (int, float)):
        try:
            return float(want) == float(value)
        except ValueError:
            return False
    return str(value) == want
