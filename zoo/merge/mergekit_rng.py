"""The random masks of `mergekit-yaml --random-seed N`, reproduced tensor by tensor.

mergekit seeds torch's global generator once (MergeOptions.random_seed -> set_seed) and runs its
merge tasks in one schedule: a lexicographic topological sort keyed by each task's group label,
the tensor's name. So the tensors are merged in sorted name order, and each DARE/DELLA kernel
draws one Bernoulli mask per non-base input, in input order, skipping inputs whose density is
>= 1 or <= 0 (mergekit's sparsify returns early there). A CPU Bernoulli draw advances the
generator by an amount that depends on the mask's shape, not on its probabilities, so replaying
those draws on dummy probabilities gives the generator state each tensor's kernel starts from,
without reading a weight. With these states (MergeMethod.merge(rng_state=...)) every tensor can
be merged in any order, streamed, and still equal mergekit-yaml's bit for bit.

Holds on the CPU for float32/float64 compute (mergekit draws bfloat16 masks in bfloat16) and for
`models:` recipes, whose tensor names are the inputs' names. zoo's default stays its per-tensor
seed (`zoo.seed`), which needs no knowledge of the other tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# one tensor: (name, shape, the density of each non-base input in input order)
Draws = tuple[str, tuple[int, ...], Sequence[float]]


def mergekit_rng_states(seed: int, tensors: Sequence[Draws]) -> dict[str, torch.Tensor]:
    """Return {tensor name: the CPU generator state its kernel starts from} under mergekit's
    `--random-seed seed`. The caller's generator state is restored. Imports torch (the states
    are its generator's); planning without a seed does not call this."""
    import torch

    states: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # what set_seed does to torch's CPU generator
        for name, shape, densities in sorted(tensors, key=lambda t: t[0]):
            states[name] = torch.get_rng_state()
            for density in densities:
                if 0 < density < 1:
                    torch.bernoulli(torch.full(shape, 0.5))
    return states


def draws_of(name: str, shape: Sequence[int], params: Mapping[str, object]) -> Draws:
    """Return one tensor's Draws from its resolved kernel parameters ({input: density})."""
    densities: Mapping = params["density"]  # type: ignore[assignment]
    return name, tuple(shape), [densities[i] for i in sorted(densities)]
