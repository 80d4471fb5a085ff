"""What merge parameter values mean: the range each one must lie in, and the rules that tie
several together (a kept fraction is in (0, 1], normalised weights must not sum to zero, ...).

Pure data plus the checks that read it. `RANGES` gives a parameter's range by name, with
`OVERRIDES` where a method gives the same name another meaning (nearswap's `t` is a distance,
ram's `epsilon` a threshold). Every numeric parameter of every registered method has an entry
(tests enforce it), `ANY` where every value means something (a negative `lambda` or `weight`
subtracts a task vector, as mergekit allows). `RULES` are the checks across parameters or models;
they run on resolved values, once at load time where the settings are plain numbers and again on
each tensor's resolved values (gradients and filters vary them per tensor).

These are the values where mergekit itself is silent or wrong: `ties` with `density: 1.5` keeps
everything without a word; `linear` with weights summing to zero divides by zero; `della` with
density +/- epsilon outside (0, 1) stops mid-merge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """An interval of allowed values, with what a value in it is (for messages)."""

    what: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        left = "(" if self.low_open or self.low == -math.inf else "["
        right = ")" if self.high_open or self.high == math.inf else "]"
        return f"{left}{_num(self.low)}, {_num(self.high)}{right}"

    def problem(self, value: Any) -> str | None:
        """Return '<value> is not <what> in <range>' when value is outside, else None."""
        return None if value in self else f"{value!r} is not {self.what} in {self}"


def _num(x: float) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"


ANY = Range("a number")
KEPT_FRACTION = Range("a fraction", 0.0, 1.0, low_open=True)
NON_NEGATIVE = Range("a non-negative number", 0.0)

RANGES: dict[str, Range] = {
    "weight": ANY,
    "lambda": ANY,
    "scale": ANY,
    "density": KEPT_FRACTION,
    "select_topk": KEPT_FRACTION,
    "gamma": Range("a fraction", 0.0, 1.0, high_open=True),
    "epsilon": Range("a fraction", 0.0, 0.5, high_open=True),  # della: half-width around density
    "t": Range("an interpolation factor", 0.0, 1.0),
    "eps": NON_NEGATIVE,
    "tol": NON_NEGATIVE,
    "max_iter": Range("an iteration count", 1),
    "k": Range("a model count", 1),
    "tall_lambda": NON_NEGATIVE,
    "alpha": Range("a fraction", 0.0, 1.0),  # opcm: the energy kept out of the projection
}
OVERRIDES: dict[tuple[str, str], Range] = {
    ("nearswap", "t"): Range("a distance", 0.0),
    ("ram", "epsilon"): NON_NEGATIVE,
    ("ramplus_tl", "epsilon"): Range("a positive number", 0.0, low_open=True),
    ("ramplus_tl", "r"): NON_NEGATIVE,
    ("ramplus_tl", "alpha"): NON_NEGATIVE,
}


def value_range(method: str, param: str) -> Range | None:
    """Return the range of `param` of `method` (None for flags and unknown names)."""
    return OVERRIDES.get((method, param), RANGES.get(param))


# ---- rules across parameters and models: fn(values) -> problems ---------------------------
# values: {param: value} for shared parameters, {param: {input index: value}} per input.
Values = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    """A check over several resolved parameters (all of `needs` must be known to run it)."""

    needs: tuple[str, ...]
    check: Callable[[Values], list[str]]


def _weights_sum(flag: str | None) -> Rule:
    def check(values: Values) -> list[str]:
        if flag is not None and not values[flag]:
            return []
        weights = values["weight"]
        total = sum(weights.values())
        if abs(total) >= 1e-8:
            return []
        listed = ", ".join(f"model {i + 1}: {w!r}" for i, w in sorted(weights.items()))
        return [f"weight: the weights sum to {total:g} ({listed}), and normalising divides by that"]

    return Rule(("weight",) if flag is None else ("weight", flag), check)


def _della_band(values: Values) -> list[str]:
    problems = []
    for i, density in sorted(values["density"].items()):
        eps = values["epsilon"].get(i)
        if eps is not None and 0 < density < 1 and not (0 < density - eps and density + eps < 1):
            problems.append(
                f"model {i + 1} epsilon: density {density:g} +/- epsilon {eps:g} leaves (0, 1)"
            )
    return problems


def _k_at_most_models(values: Values) -> list[str]:
    n = len(values["weight"])
    if values["k"] <= n:
        return []
    return [f"k: {values['k']} models must agree but only {n} are merged; nothing would be kept"]


_GTA_NORMALIZED = (_weights_sum("normalize"),)
RULES: dict[str, tuple[Rule, ...]] = {
    "linear": (_weights_sum("normalize"),),
    "multislerp": (_weights_sum("normalize_weights"),),
    "nuslerp": (_weights_sum(None),),
    "della": (*_GTA_NORMALIZED, Rule(("density", "epsilon"), _della_band)),
    "della_linear": (*_GTA_NORMALIZED, Rule(("density", "epsilon"), _della_band)),
    "consensus_ta": (Rule(("weight", "k"), _k_at_most_models),),
    "consensus_ties": (Rule(("weight", "k"), _k_at_most_models),),
    **{
        name: _GTA_NORMALIZED
        for name in (
            "task_arithmetic",
            "ties",
            "dare_ties",
            "dare_linear",
            "breadcrumbs",
            "breadcrumbs_ties",
        )
    },
}


def rule_problems(method: str, values: Values) -> list[str]:
    """Return the problems of every rule of `method` whose parameters are all in values."""
    return [
        problem
        for rule in RULES.get(method, ())
        if all(name in values for name in rule.needs)
        for problem in rule.check(values)
    ]
