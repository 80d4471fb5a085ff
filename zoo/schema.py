"""What every zoo schema shares: the strict pydantic bases, the model kinds, the YAML load errors.

Plain definitions, no zoo imports: every layer may import this module.
"""

from __future__ import annotations

from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict

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
