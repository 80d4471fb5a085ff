"""Parameter schemas for merge kernels, derived from typed signatures (mergekit's own pattern).

A zoo kernel is a function `kernel(tensors, base_index, name, **params) -> Tensor`. Parameters
annotated `PerInput[T]` take one value per input (the base included), `PerNonBase[T]` one value per
non-base input; plain annotations are shared by all inputs. A trailing underscore in a Python
name is dropped in the schema (`lambda_` is the parameter `lambda`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter

Scope = Literal["shared", "input", "non_base"]
T = TypeVar("T")


class _ScopeMarker:
    def __init__(self, scope: Scope):
        self.scope = scope


PerInput = Annotated[T, _ScopeMarker("input")]
PerNonBase = Annotated[T, _ScopeMarker("non_base")]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
KERNEL_ARGS = ("tensors", "base_index", "name")


@dataclass(frozen=True)
class ParamSpec:
    """One merge parameter: its name, value type, scope and default (REQUIRED when none)."""

    name: str
    type: Any
    scope: Scope = "shared"
    default: Any = REQUIRED
    description: str = ""
    _adapter: TypeAdapter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_adapter", TypeAdapter(self.type))

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def validate(self, value: Any) -> Any:
        """Return value coerced to this parameter's type; raise pydantic.ValidationError if not."""
        return self._adapter.validate_python(value)


def specs_from_signature(fn: Callable[..., Any]) -> tuple[ParamSpec, ...]:
    """Return the parameter schema of a zoo kernel from its keyword-only typed arguments."""
    hints = get_type_hints(fn, include_extras=True)
    specs = []
    for arg in inspect.signature(fn).parameters.values():
        if arg.name in KERNEL_ARGS:
            continue
        if arg.kind is not inspect.Parameter.KEYWORD_ONLY or arg.name not in hints:
            raise TypeError(f"kernel parameter {arg.name!r} must be keyword-only and annotated")
        value_type, scope = _split_annotation(hints[arg.name])
        default = REQUIRED if arg.default is inspect.Parameter.empty else arg.default
        specs.append(ParamSpec(arg.name.rstrip("_"), value_type, scope, default))
    return tuple(specs)


def _split_annotation(annotation: Any) -> tuple[Any, Scope]:
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        markers = [m for m in meta if isinstance(m, _ScopeMarker)]
        if markers:
            rest = [m for m in meta if not isinstance(m, _ScopeMarker)]
            return (Annotated[(base, *rest)] if rest else base), markers[0].scope
    return annotation, "shared"


def python_name(spec_name: str, fn: Callable[..., Any]) -> str:
    """Return the keyword a kernel takes for a schema name (`lambda` -> `lambda_`)."""
    params = inspect.signature(fn).parameters
    return spec_name if spec_name in params else spec_name + "_"
