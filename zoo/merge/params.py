"""Merge parameters: check raw recipe settings, then resolve them tensor by tensor.

Settings follow mergekit's ParameterSetting (zoo.merge.settings): a scalar, a gradient (a list
of numbers interpolated over the layers by t = layer / (layers - 1):
zoo.merge.slices.LayerSlice.position), or {value, filter} conditions matched as substrings of
the tensor name. Per-model settings take precedence over global ones.
Values are checked against their meaning too (zoo.merge.constraints): each leaf against its
parameter's range at load time, the rules across parameters at load time where the settings are
plain numbers and on every tensor's resolved values.

A global parameter set per model (della's `lambda` under a model) is what mergekit 0.1.5
accepts and ignores: it reads global parameters with no model (ConfigReader.parameter_sources
(None)). zoo does the same, and says so in one warning line naming the field. Likewise a
non-base parameter given to the base model. Everything else here is pure and deterministic.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from zoo.errors import UserError
from zoo.merge import constraints
from zoo.merge.kernels.spec import ParamSpec
from zoo.merge.method import MergeMethod
from zoo.merge.settings import SETTING, evaluate_setting, leaves
from zoo.suggest import unknown_name

Settings = Mapping[str, Any]
_WARNED: set[str] = set()  # each warning once per process (recipes are checked more than once)


def check_params(
    method: MergeMethod,
    global_params: Settings | Sequence[Settings],
    input_params: Sequence[Settings],
    base_index: int | None = None,
) -> None:
    """Raise one UserError listing every unknown, invalid or missing parameter; warn once (one
    line on stderr) about a global parameter set per model, which is ignored as in mergekit.

    input_params holds one mapping per merge input; base_index marks the base among them.
    global_params: one mapping, or several scopes highest precedence first (a slice's, then
    the recipe's).
    """
    scopes = _scopes(global_params)
    problems = []
    names = ("slice parameters",) * (len(scopes) - 1) + ("parameters",)
    for scope, where in zip(scopes, names):
        problems += _check_scope(method, scope, where, per_model=False)
    for i, params in enumerate(input_params):
        where = f"model {i + 1} parameters"
        problems += _check_scope(method, params, where, per_model=True, base=i == base_index)
    merged = _merged(scopes)
    problems += _missing(method, merged, input_params, base_index)
    if not problems:
        problems += constraints.rule_problems(
            method.name, _plain_values(method, merged, input_params, base_index)
        )
    if problems:
        raise UserError(f"{method.name}: " + "; ".join(problems))


def _scopes(settings: Settings | Sequence[Settings]) -> tuple[Settings, ...]:
    """Return settings as a tuple of scopes, highest precedence first."""
    return tuple(settings) if isinstance(settings, (tuple, list)) else (settings,)


def _merged(scopes: Sequence[Settings]) -> dict[str, Any]:
    return {k: v for scope in reversed(scopes) for k, v in scope.items()}


# Parameters older mergekit recipes carry that mergekit 0.1.5 no longer has (it ignores them).
_REMOVED = {
    "embed_slerp": "removed from mergekit before 0.1.5 (its tokenizer merging replaced it; "
    "see tokenizer_source / tokenizer:); delete it",
}


def _check_scope(
    method: MergeMethod, params: Settings, where: str, per_model: bool, base: bool = False
) -> list[str]:
    known = [p.name for p in method.param_specs]
    problems = []
    for key, value in params.items():
        spec = method.param(key)
        if spec is None and key in _REMOVED:
            problems.append(f"{where}.{key}: {_REMOVED[key]}")
        elif spec is None:
            problems.append(unknown_name(f"parameter in {where}:", key, known))
        elif per_model and spec.scope == "shared":
            warn(
                f"{method.name}: {where}.{key} is a global parameter: ignored per model (as "
                "mergekit does); set it under parameters:"
            )
        elif base and spec.scope == "non_base" and method.uses_base:
            warn(f"{method.name}: {where}.{key} is ignored: the base model takes no {key!r}")
        else:
            errors = _leaf_errors(spec, value, constraints.value_range(method.name, key))
            problems += [f"{where}.{key}: {err}" for err in errors]
    return problems


def warn(message: str) -> None:
    """Print a one-line warning on stderr (once per process): accepted, but not what it may
    look like."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"zoo: warning: {message}", file=sys.stderr)


def _leaf_errors(spec: ParamSpec, value: Any, meaning: constraints.Range | None) -> list[str]:
    try:
        setting = SETTING.validate_python(value)
    except ValidationError:
        return [f"expected {spec.type} or a gradient/filter list, got {value!r}"]
    errors = []
    for leaf in leaves(setting):
        try:
            checked = spec.validate(leaf)
        except ValidationError as err:
            errors.append(
                f"{leaf!r} is not a valid {getattr(spec.type, '__name__', spec.type)}"
                f" ({err.errors()[0]['msg']})"
            )
            continue
        problem = None if meaning is None or checked is None else meaning.problem(checked)
        errors += [problem] if problem else []
    return errors


def _missing(method, global_params, input_params, base_index) -> list[str]:
    problems = []
    for spec in method.param_specs:
        if not spec.required or spec.name in global_params:
            continue
        if spec.scope == "shared":
            problems.append(f"missing required parameter {spec.name!r}")
            continue
        lacking = [
            str(i + 1)
            for i, params in enumerate(input_params)
            if spec.name not in params and (spec.scope == "input" or i != base_index)
        ]
        if lacking:
            problems.append(
                f"missing required parameter {spec.name!r} for model(s) {', '.join(lacking)}"
            )
    return problems


def _plain_values(method, global_params, input_params, base_index) -> dict[str, Any]:
    """Return each parameter's value where every setting it takes is a plain number or flag
    (what the cross-parameter rules can check before any tensor is known)."""
    values: dict[str, Any] = {}
    for spec in method.param_specs:
        if spec.scope == "shared":
            value = _plain(spec, (global_params,))
        else:
            found = {
                i: _plain(spec, (params, global_params))
                for i, params in enumerate(input_params)
                if spec.scope == "input" or i != base_index
            }
            value = None if None in found.values() else found
        if value is not None:
            values[spec.name] = value
    return values


def _plain(spec: ParamSpec, scopes: Sequence[Settings]) -> Any:
    for scope in scopes:
        if spec.name in scope:
            value = scope[spec.name]
            return spec.validate(value) if isinstance(value, (int, float)) else None
    return None if spec.required else spec.validate(spec.default)


def resolve_params(
    method: MergeMethod,
    global_params: Settings | Sequence[Settings],
    input_params: Sequence[Settings],
    *,
    base_index: int | None,
    name: str,
    t: float,
) -> dict[str, Any]:
    """Return the values one tensor's kernel gets: shared scalars and {input index: value} maps.

    Assumes check_params passed; raises UserError when a rule across parameters fails on this
    tensor's resolved values (zoo.merge.constraints). base_index is the kernel's base (None
    for base-less methods).
    """
    scopes = _scopes(global_params)
    out: dict[str, Any] = {}
    for spec in method.param_specs:
        if spec.scope == "shared":
            out[spec.name] = _value(spec, scopes, name, t)
            continue
        out[spec.name] = {
            i: _value(spec, (params, *scopes), name, t)
            for i, params in enumerate(input_params)
            if spec.scope == "input" or i != base_index
        }
    problems = constraints.rule_problems(method.name, out)
    if problems:
        raise UserError(f"{method.name}: tensor {name!r}: " + "; ".join(problems))
    return out


def _value(spec: ParamSpec, scopes: Sequence[Settings], name: str, t: float) -> Any:
    for scope in scopes:
        if spec.name in scope:
            setting = SETTING.validate_python(scope[spec.name])
            value = evaluate_setting(name, setting, t, validate=spec.validate)
            if value is not None:
                return value
    if spec.required:
        raise UserError(f"parameter {spec.name!r} has no value for tensor {name!r} (check filters)")
    return spec.validate(spec.default)
