"""The MergeMethod value: one merge algorithm, its parameter schema and its per-tensor kernel.

Building one imports no torch and no mergekit: mergekit's methods are described by data
(zoo.merge.kernels.mergekit_specs) and zoo's kernels are named "module:function", imported when
their schema is first asked for or their first tensor is merged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from zoo.errors import UserError
from zoo.lazy import Ref
from zoo.merge.kernels import mergekit_kernels
from zoo.merge.kernels.spec import ParamSpec, python_name, specs_from_signature

if TYPE_CHECKING:
    import torch

    # run(tensors, base_index, name, params) -> merged tensor; per-input params: {index: value}.
    Runner = Callable[[Sequence[torch.Tensor], int | None, str, Mapping[str, Any]], torch.Tensor]

BasePolicy = Literal["required", "optional", "ignored"]


def _always(params: Mapping[str, Any], has_base: bool) -> bool:
    return True


@dataclass(frozen=True)
class DeltaScale:
    """A model-level rescaling of the merged task vector, known only once every tensor is merged.

    `stats(tensors, base_index, merged)` returns additive per-tensor statistics; the engine sums
    them over the model and writes `base + scale(totals) * (merged - base)` in a second
    streaming pass.
    """

    stats: Callable[[Sequence[torch.Tensor], int, torch.Tensor], dict[str, float]]
    scale: Callable[[Mapping[str, float]], float]


@dataclass(frozen=True)
class MergeMethod:
    """A merge method: pretty name, paper link, parameter schema, input contract and kernel.

    `schema` is the parameter schema, or a function returning it (called once, on first use of
    `param_specs`). `params` is a frozen pydantic model (extra="forbid") over the resolved,
    per-tensor values; raw recipe settings (gradients, filters) are checked by
    `zoo.merge.params.check_params`. `identity_on_equal(params, has_base)` says whether
    identical inputs give that input back.
    """

    name: str
    pretty_name: str
    reference_url: str
    schema: tuple[ParamSpec, ...] | Callable[[], tuple[ParamSpec, ...]] = field(repr=False)
    run: Runner = field(repr=False)
    base: BasePolicy = "ignored"
    min_inputs: int = 1
    max_inputs: int | None = None
    min_non_base: int | None = None
    max_non_base: int | None = None
    stochastic: bool = False
    identity_on_equal: Callable[[Mapping[str, Any], bool], bool] = field(
        default=_always, repr=False
    )
    delta_scale: DeltaScale | None = field(default=None, repr=False)
    source: Literal["mergekit", "zoo"] = "zoo"
    # Kernel working set beyond its inputs, in tensor-sizes, as (a, b) for a*K + b with K models;
    # measured on CPU (float32, K = 3 and 5) and used only for plan()'s memory estimate.
    scratch: tuple[float, float] = (4.0, 2.0)
    # Optional row-chunked kernel for large tensors: chunked(params, base_index, Shape) returns a
    # per-tensor ChunkedKernel (zoo.merge.kernels.chunked); chunk_scratch is its working set
    # beyond the input chunks, in chunk-sizes, as (a, b) for a*K + b.
    chunked: Callable[..., Any] | None = field(default=None, repr=False)
    chunk_scratch: tuple[float, float] = (2.0, 4.0)
    # the same for the compiled loops' path (zoo.merge.kernels.fused), where it differs
    fused_chunk_scratch: tuple[float, float] | None = None

    def chunk_working_set(self, fused: bool) -> tuple[float, float]:
        """The chunked kernel's scratch on the fused path (fused) or torch's."""
        return (self.fused_chunk_scratch or self.chunk_scratch) if fused else self.chunk_scratch

    def __post_init__(self) -> None:
        if not self.reference_url:
            raise ValueError(f"merge method {self.name!r} needs a reference_url")

    @cached_property
    def param_specs(self) -> tuple[ParamSpec, ...]:
        return tuple(self.schema if isinstance(self.schema, tuple) else self.schema())

    @cached_property
    def params(self) -> type[BaseModel]:
        return _params_model(self.name, self.param_specs)

    @property
    def needs_base(self) -> bool:
        return self.base == "required"

    @property
    def uses_base(self) -> bool:
        """True when a given base model is the kernel's reference point, not just another input."""
        return self.base != "ignored"

    def param(self, name: str) -> ParamSpec | None:
        """Return the schema entry called name, or None."""
        return next((p for p in self.param_specs if p.name == name), None)

    def check_inputs(self, n_inputs: int, has_base: bool) -> None:
        """Raise UserError unless n_inputs models (the base included) suit this method."""
        has_base = has_base and self.uses_base
        if self.needs_base and not has_base:
            raise UserError(f"merge method {self.name!r} needs a base model; set base_model")
        non_base = n_inputs - int(has_base)
        for what, count, low, high in (
            ("models", n_inputs, self.min_inputs, self.max_inputs),
            ("non-base models", non_base, self.min_non_base, self.max_non_base),
        ):
            if low is not None and count < low or high is not None and count > high:
                want = f"exactly {low}" if low == high else f"{low or 0} to {high or 'any'}"
                raise UserError(f"merge method {self.name!r} takes {want} {what}; got {count}")

    def merge(
        self,
        tensors: Sequence[torch.Tensor],
        base_index: int | None,
        params: Mapping[str, Any],
        *,
        name: str = "",
        seed: int = 0,
        rng_state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Merge one tensor; stochastic kernels draw from an RNG seeded by (seed, name) only,
        or, given rng_state, from that CPU generator state (zoo.merge.mergekit_rng).

        Deterministic for a given device type; the caller's global RNG state is restored.
        """
        import torch  # tensors are torch's: torch is loaded already

        if not self.stochastic:
            return self.run(tensors, base_index, name, params)
        devices = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
        with torch.random.fork_rng(devices=devices):
            if rng_state is None:
                torch.manual_seed(tensor_seed(seed, name))
            else:
                torch.set_rng_state(rng_state)
            return self.run(tensors, base_index, name, params)


def tensor_seed(seed: int, name: str) -> int:
    """Return the RNG seed for one tensor: independent of merge order, sharding and streaming."""
    digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def mergekit_method(name: str, *, scratch=(3.5, 2.0), **options: Any) -> MergeMethod:
    """Build the MergeMethod of mergekit's registered method `name`; options are zoo's own
    fields (identity rule, stochastic, scratch, an equal row-chunked kernel `chunked`)."""
    return MergeMethod(**mergekit_kernels.describe(name), scratch=scratch, **options)


def zoo_method(kernel: str | Callable[..., Any], **options: Any) -> MergeMethod:
    """Build a MergeMethod from a zoo kernel ("module:function", imported on first use, or the
    function) whose typed signature is its parameter schema."""
    zoo_kernel = ZooKernel(Ref(kernel) if isinstance(kernel, str) else kernel)
    return MergeMethod(schema=zoo_kernel.specs, run=zoo_kernel, source="zoo", **options)


@dataclass(frozen=True)
class ZooKernel:
    """A zoo kernel as a MergeMethod runner: recipe names in, the function's keywords out."""

    function: Callable[..., Any]

    def specs(self) -> tuple[ParamSpec, ...]:
        return specs_from_signature(self._loaded())

    def __call__(self, tensors, base_index, name, params):
        fn = self._loaded()
        keywords = _keywords(fn)
        return fn(tensors, base_index, name, **{keywords[k]: v for k, v in params.items()})

    def _loaded(self) -> Callable[..., Any]:
        return self.function.load() if isinstance(self.function, Ref) else self.function


@cache
def _keywords(fn: Callable[..., Any]) -> dict[str, str]:
    """{schema name: the keyword fn takes} (`lambda` -> `lambda_`), worked out once per kernel."""
    return {spec.name: python_name(spec.name, fn) for spec in specs_from_signature(fn)}


def _params_model(method: str, specs: Sequence[ParamSpec]) -> type[BaseModel]:
    fields = {}
    for spec in specs:
        default = ... if spec.required else spec.default
        desc = spec.description or f"{spec.scope} parameter of {method}"
        key = spec.name if spec.name.isidentifier() and spec.name != "lambda" else spec.name + "_"
        fields[key] = (spec.type, Field(default, alias=spec.name, description=desc))
    config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    title = "".join(part.title() for part in method.split("_")) + "Params"
    return create_model(title, __config__=config, **fields)
