"""A recipe's parameter settings, and the value one setting takes for one tensor.

The recipe language is mergekit 0.1.5's; zoo owns its schema so that reading a recipe imports
neither mergekit nor the peft/transformers stack behind `mergekit.config`. A setting is
- a scalar (bool, int, float or str),
- a gradient: a list of scalars spread evenly over the layers, read at the layer position t in
  [0, 1] (numbers interpolate linearly between their two neighbours; any other list picks the
  entry at or before t),
- a condition {value, filter}, or a list of them: the first whose filter is unset, "*" or a
  substring of the tensor name gives the value (a scalar or a gradient).
Mergekit's own type and function (ParameterSetting, evaluate_setting) behave the same; a test
compares them on a table of settings, so a drift shows up as a failing test. Pure functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter

# The unions keep mergekit's order (bool before int before float before str): pydantic's smart
# mode then keeps True a bool and "1e-3" a string, as mergekit does.
Scalar = bool | int | float | str
ScalarOrGradient = Scalar | list[Scalar]


class ConditionalParameter(BaseModel):
    """One condition: `value` applies to the tensors whose name holds `filter` (all if unset).

    Unknown keys are ignored, as mergekit ignores them (community recipes load unchanged).
    """

    value: ScalarOrGradient
    filter: str | None = None


ParameterSetting = ConditionalParameter | list[ConditionalParameter] | ScalarOrGradient
SETTING = TypeAdapter(ParameterSetting)
_SCALARS = (bool, int, float, str)


def evaluate_setting(
    tensor_name: str, setting: Any, t: float = 0.0, *, validate: Callable[[Any], Any]
) -> Any:
    """Return the value of a validated setting (SETTING) for one tensor at layer position t,
    each value passed through `validate` (the parameter's type); None when no condition
    matches or the list is empty. Raise TypeError on a value that is not a setting."""
    if isinstance(setting, ConditionalParameter):
        setting = [setting]
    if isinstance(setting, _SCALARS):
        return validate(setting)
    if not isinstance(setting, list):
        raise TypeError(f"not a parameter setting: {setting!r}")
    if not setting:
        return None
    if all(isinstance(item, _SCALARS) for item in setting):
        return _gradient([validate(item) for item in setting], t, validate)
    for condition in setting:
        if _matches(condition.filter, tensor_name):
            return evaluate_setting(tensor_name, condition.value, t, validate=validate)
    return None


def _gradient(values: list[Any], t: float, validate: Callable[[Any], Any]) -> Any:
    """The value at t of evenly spaced values: linear between numbers, else the one at or
    before t."""
    position = t * (len(values) - 1)
    low = int(position)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return values[low]
    high = min(len(values) - 1, low + 1)
    frac = position - low
    # this exact expression (not low + frac * (high - low)): the same float bits as mergekit
    return validate((1 - frac) * values[low] + frac * values[high])


def _matches(pattern: str | None, tensor_name: str) -> bool:
    return pattern is None or pattern == "*" or bool(tensor_name) and pattern in tensor_name


def leaves(setting: Any) -> list[Any]:
    """Return every scalar a validated setting can take (conditions and gradients unpacked)."""
    if isinstance(setting, ConditionalParameter):
        return leaves(setting.value)
    if isinstance(setting, list):
        return [leaf for item in setting for leaf in leaves(item)]
    return [setting]
