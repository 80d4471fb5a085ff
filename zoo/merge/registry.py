"""The explicit registry of merge methods: mergekit's methods plus zoo-native ones.

Adding a method = one kernel function + one entry in `_METHODS`; the parametrised kernel test
then checks it against an independent formula. linear, multislerp, task_arithmetic and ties also
carry a zoo row-chunked kernel (`chunked=`), used for tensors too large to merge whole; every
other method merges each tensor whole with its own kernel. Names are unique; look-ups suggest
the closest name.

Building the registry imports no torch and no mergekit: kernels are named "module:function"
(zoo.lazy.Ref) and imported when a tensor is first merged with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from zoo.errors import UserError
from zoo.lazy import Ref
from zoo.merge.kernels import mergekit_kernels as mk
from zoo.merge.method import DeltaScale, MergeMethod, mergekit_method, zoo_method
from zoo.suggest import unknown_name

_CHUNKED = "zoo.merge.kernels.chunked:"
_CONSENSUS = "https://arxiv.org/abs/2405.07813"

__all__ = ["MergeMethod", "Registry", "REGISTRY", "get_method", "list_methods"]

_METHODS: tuple[MergeMethod, ...] = (
    mergekit_method(
        "linear",
        identity_on_equal=mk.normalized_weights("weight", "normalize"),
        scratch=(0.0, 2.0),
        chunked=Ref(_CHUNKED + "LinearChunks"),
        chunk_scratch=(0.0, 2.0),
    ),
    mergekit_method(
        "multislerp",
        identity_on_equal=mk.normalized_weights("weight", "normalize_weights", base_counts=True),
        scratch=(4.0, 2.0),
        chunked=Ref(_CHUNKED + "MultiSlerpChunks"),
        chunk_scratch=(2.0, 5.0),
    ),
    mergekit_method("slerp", scratch=(0.0, 2.0)),
    mergekit_method("nuslerp", scratch=(2.0, 3.0)),
    mergekit_method("karcher", scratch=(1.0, 3.0)),
    mergekit_method(
        "task_arithmetic",
        scratch=(1.0, 2.0),
        chunked=Ref(_CHUNKED + "TaskArithmeticChunks"),
        chunk_scratch=(1.0, 3.0),
    ),
    mergekit_method(  # torch's path: deltas, keys, digits and float64 weights per input
        "ties",
        chunked=Ref("zoo.merge.kernels.ties:TiesChunks"),
        chunk_scratch=(2.0, 8.0),
        fused_chunk_scratch=(0.25, 2.0),
    ),
    mergekit_method("dare_ties", stochastic=True),
    mergekit_method("dare_linear", stochastic=True),
    mergekit_method("breadcrumbs"),
    mergekit_method("breadcrumbs_ties"),
    mergekit_method("della", stochastic=True),
    mergekit_method("della_linear", stochastic=True),
    mergekit_method("model_stock", scratch=(1.0, 4.0)),
    mergekit_method("sce"),
    mergekit_method("passthrough", identity_on_equal=mk.unit_scale, scratch=(0.0, 1.0)),
    # arcee_fusion samples 1e6 importance scores for its quantiles in tensors larger than that:
    # stochastic, so zoo seeds it per tensor like DARE (smaller tensors are deterministic).
    mergekit_method("arcee_fusion", stochastic=True, scratch=(1.0, 6.0)),
    mergekit_method("nearswap", scratch=(0.0, 5.0)),
    mergekit_method("ram", scratch=(4.0, 3.0)),
    mergekit_method("ramplus_tl", scratch=(5.0, 3.0)),
    zoo_method(
        "zoo.merge.kernels.consensus:consensus_ta",
        name="consensus_ta",
        pretty_name="Consensus Task Arithmetic (TALL masks)",
        reference_url=_CONSENSUS,
        base="required",
        min_non_base=1,
        scratch=(1.0, 5.0),
    ),
    zoo_method(
        "zoo.merge.kernels.consensus:consensus_ties",
        name="consensus_ties",
        pretty_name="Consensus TIES (TALL masks)",
        reference_url=_CONSENSUS,
        base="required",
        min_non_base=1,
    ),
    zoo_method(
        "zoo.merge.kernels.opcm:opcm",
        name="opcm",
        pretty_name="OPCM (orthogonal projection continual merging)",
        reference_url="https://arxiv.org/abs/2501.09522",
        base="required",
        min_non_base=1,
        delta_scale=DeltaScale(
            stats=Ref("zoo.merge.kernels.opcm:opcm_stats"),
            scale=Ref("zoo.merge.kernels.opcm:opcm_scale"),
        ),
        scratch=(1.0, 7.0),
    ),
)


class Registry:
    """Merge methods by name; registering a name twice is an error."""

    def __init__(self, methods: Iterable[MergeMethod] = ()):
        self._methods: dict[str, MergeMethod] = {}
        for method in methods:
            self.register(method)

    def register(self, method: MergeMethod) -> None:
        """Add method; raise ValueError if its name is taken (plugins never shadow each other)."""
        if method.name in self._methods:
            raise ValueError(f"merge method {method.name!r} is already registered")
        self._methods[method.name] = method

    def get(self, name: str) -> MergeMethod:
        """Return the method called name; raise UserError with the closest name otherwise."""
        try:
            return self._methods[name]
        except (KeyError, TypeError):
            raise UserError(unknown_name("merge method", name, self._methods)) from None

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._methods)

    @property
    def methods(self) -> Mapping[str, MergeMethod]:
        return MappingProxyType(self._methods)


REGISTRY = Registry(_METHODS)


def get_method(name: str) -> MergeMethod:
    """Return the registered merge method `name`; raise UserError suggesting the closest name."""
    return REGISTRY.get(name)


def list_methods() -> list[str]:
    """Return the names of every registered merge method, sorted."""
    return REGISTRY.names()
