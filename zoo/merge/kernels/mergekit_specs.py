"""mergekit 0.1.5's merge methods as plain data: names, papers, parameters, input contracts.

These are the facts `mergekit.merge_methods.get(name).spec` reports, written down so that the
registry (and every recipe check) needs neither mergekit nor torch; mergekit's kernels are
imported only when a tensor is merged with one (zoo.merge.kernels.mergekit_kernels).
tests/merge/test_mergekit_specs.py compares every entry with mergekit's own spec, so a mergekit
upgrade that changes one fails there. `pretty_name` and `reference_url` are None where mergekit
gives none (the registry fills them in).
"""

from __future__ import annotations

from typing import NamedTuple

from zoo.merge.kernels.spec import REQUIRED, ParamSpec


class MethodFacts(NamedTuple):
    """One mergekit method: what its MergeMethodSpec and InputContract say."""

    pretty_name: str | None
    reference_url: str | None
    params: tuple[ParamSpec, ...]
    base: str = "ignored"
    min_inputs: int = 1
    max_inputs: int | None = None
    min_non_base: int | None = None
    max_non_base: int | None = None


def _shared(name: str, type_: type, default=REQUIRED) -> ParamSpec:
    return ParamSpec(name, type_, "shared", default)


def _non_base(name: str, type_: type, default=REQUIRED) -> ParamSpec:
    return ParamSpec(name, type_, "non_base", default)


def _sparsify(
    *, normalize: bool, rescale: bool, extra: tuple[ParamSpec, ...] = ()
) -> tuple[ParamSpec, ...]:
    """The parameters of mergekit's generalized task arithmetic family, in its order."""
    return (
        _shared("int8_mask", bool, False),
        _shared("normalize", bool, normalize),
        _shared("rescale", bool, rescale),
        _shared("lambda", float, 1.0),
        _non_base("weight", float),
        _non_base("density", float, 1.0),
        *extra,
    )


_GAMMA = (_non_base("gamma", float, 0.01),)
_EPSILON = (_non_base("epsilon", float, 0.15),)
_ARXIV = "https://arxiv.org/abs/"

MERGEKIT_METHODS: dict[str, MethodFacts] = {
    "multislerp": MethodFacts(
        "Multi-SLERP",
        "https://goddard.blog/posts/multislerp-wow-what-a-cool-idea",
        (
            _non_base("weight", float),
            _shared("normalize_weights", bool, True),
            _shared("eps", float, 1e-08),
        ),
        base="optional",
        min_non_base=1,
    ),
    "nearswap": MethodFacts(
        "NearSwap",
        "https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001",
        (_shared("t", float),),
        base="required",
        min_inputs=2,
        max_inputs=2,
    ),
    "ram": MethodFacts(
        "Reinforced Agent Merging",
        _ARXIV + "2601.13572",
        (_shared("epsilon", float, 1e-05),),
        base="required",
    ),
    "ramplus_tl": MethodFacts(
        "Reinforced Agent Merging Plus (Tensor-Local)",
        _ARXIV + "2601.13572",
        (_shared("r", float, 0.1), _shared("alpha", float, 0.2), _shared("epsilon", float, 1e-05)),
        base="required",
    ),
    "sce": MethodFacts(
        "SCE",
        _ARXIV + "2408.07990",
        (_shared("int8_mask", bool, False), _shared("select_topk", float, 1.0)),
        base="required",
    ),
    "linear": MethodFacts(
        "Linear",
        _ARXIV + "2203.05482",
        (ParamSpec("weight", float, "input"), _shared("normalize", bool, True)),
    ),
    "slerp": MethodFacts(
        "SLERP",
        "https://en.wikipedia.org/wiki/Slerp",
        (_shared("t", float),),
        base="required",
        min_inputs=2,
        max_inputs=2,
    ),
    "nuslerp": MethodFacts(
        "NuSLERP",
        None,
        (
            _non_base("weight", float),
            _shared("nuslerp_row_wise", bool, False),
            _shared("nuslerp_flatten", bool, True),
        ),
        base="optional",
        min_non_base=2,
        max_non_base=2,
    ),
    "passthrough": MethodFacts(
        "Passthrough", None, (ParamSpec("scale", float | None, "input", None),), max_inputs=1
    ),
    "model_stock": MethodFacts(
        "Model Stock",
        _ARXIV + "2403.19522",
        (_shared("filter_wise", bool, False),),
        base="required",
        min_inputs=3,
    ),
    "arcee_fusion": MethodFacts(
        "Arcee Fusion", "https://arcee.ai", (), base="required", min_inputs=2, max_inputs=2
    ),
    "karcher": MethodFacts(
        "Karcher Mean",
        _ARXIV + "2603.04972",
        (_shared("max_iter", int, 10), _shared("tol", float, 1e-05)),
    ),
    "task_arithmetic": MethodFacts(
        "Task Arithmetic",
        _ARXIV + "2212.04089",
        _sparsify(normalize=False, rescale=False),
        base="required",
    ),
    "ties": MethodFacts(
        "TIES", _ARXIV + "2306.01708", _sparsify(normalize=True, rescale=False), base="required"
    ),
    "dare_ties": MethodFacts(
        "DARE TIES",
        _ARXIV + "2311.03099",
        _sparsify(normalize=False, rescale=True),
        base="required",
    ),
    "dare_linear": MethodFacts(
        "Linear DARE",
        _ARXIV + "2311.03099",
        _sparsify(normalize=False, rescale=True),
        base="required",
    ),
    "breadcrumbs": MethodFacts(
        "Model Breadcrumbs",
        _ARXIV + "2312.06795",
        _sparsify(normalize=False, rescale=False, extra=_GAMMA),
        base="required",
    ),
    "breadcrumbs_ties": MethodFacts(
        "Model Breadcrumbs with TIES",
        _ARXIV + "2312.06795",
        _sparsify(normalize=False, rescale=False, extra=_GAMMA),
        base="required",
    ),
    "della": MethodFacts(
        "DELLA",
        _ARXIV + "2406.11617",
        _sparsify(normalize=True, rescale=True, extra=_EPSILON),
        base="required",
    ),
    "della_linear": MethodFacts(
        "Linear DELLA",
        _ARXIV + "2406.11617",
        _sparsify(normalize=False, rescale=True, extra=_EPSILON),
        base="required",
    ),
}
