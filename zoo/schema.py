"""What every zoo schema shares: the strict pydantic bases, the model kinds, reading YAML files.

Plain definitions (zoo.errors aside, no zoo imports): every layer may import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict

from zoo.errors import UserError

# What a published model is: the base it starts from, a bag or update trained on it, or a merge.
Kind = Literal["base", "bag", "update", "merged"]
KINDS: tuple[str, ...] = get_args(Kind)

# PyYAML's safe constructors raise plain Python errors on bad tags, impossible dates, huge ints.
YAML_ERRORS = (yaml.YAMLError, ValueError, TypeError, AttributeError, LookupError, RecursionError)


class Frozen(BaseModel):
    """Base of every record a user writes or zoo publishes: unknown keys refused, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Strict(Frozen):
    """A Frozen record whose values are never coerced ('1' is not 1, 1.0 is not 1): for data
    files whose types are part of the format (task.yaml, corpus specs, bag manifests)."""

    model_config = ConfigDict(strict=True)


def read_yaml(path: Path, label: str, missing: str | None = None) -> Any:
    """Parse a YAML file with the safe loader; raise UserError '<label>: <what went wrong>'.

    `missing`, when given, is the message for a file that does not exist. Reads only.
    """
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        if missing is not None and isinstance(exc, FileNotFoundError):
            raise UserError(f"{label}: {missing}") from None
        raise UserError(f"{label}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UserError(f"{label}: not valid UTF-8") from None
    except YAML_ERRORS as exc:
        raise UserError(f"{label}: invalid YAML ({exc})".replace("\n", " ")) from None
