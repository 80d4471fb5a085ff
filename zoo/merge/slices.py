"""Layer slices: merge, stack, repeat or drop transformer layers (mergekit's `slices:`).

An output model is a list of output slices. Each output slice takes the same number of layers
from each of its sources (a layer range per source, possibly of models of different depths) and
merges them layer by layer into consecutive output layers. As in mergekit, the weights before
the layers (embeddings) are merged from the first slice's sources, the weights after them
(final norm, LM head, pooler, sentence-transformers heads) from the last slice's, and a
gradient's position t runs over the layers of one slice: layer k of n has t = k / (n - 1).

A `LayerView` shows one source through one slice: its layers in the range, renumbered to their
output positions, plus the weights before or after the layers when the slice is first or last.
The engine then merges views exactly as it merges whole models. Pure apart from the reads it
delegates to the checkpoint it wraps; no tensor data is read here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError

if TYPE_CHECKING:
    import torch

_LAYER = re.compile(r"(?:^|\.)(?:layers?|h|blocks?)\.(\d+)\.")
# Weights before the first layer (mergekit's pre_weights); every other non-layer weight is after.
_PRE = re.compile(r"(^|\.)(embed\w*|\w*embeddings?|wte|wpe|shared)(\.|$)")
# config.json keys that hold the layer count, per architecture family.
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


@dataclass(frozen=True)
class LayerSlice:
    """Source layers [start, stop) shown as output layers offset.., with the weights before the
    layers (pre) and after them (post) included when the slice is first or last."""

    start: int
    stop: int
    offset: int
    pre: bool = True
    post: bool = True

    @property
    def length(self) -> int:
        return self.stop - self.start

    def position(self, name: str) -> float:
        """Return the gradient position t of output tensor `name` within this slice."""
        index = layer_index(name)
        if index is None:
            return 0.0
        if self.length <= 1:
            return 1.0
        return (index - self.offset) / (self.length - 1)


def layer_index(name: str) -> int | None:
    """Return the transformer layer a tensor name belongs to, or None outside the layers."""
    if "/" in name:  # weights of a later sentence-transformers module
        return None
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def renumber(name: str, index: int) -> str:
    """Return `name` with its layer number replaced by index."""
    match = _LAYER.search(name)
    assert match is not None, name
    return name[: match.start(1)] + str(index) + name[match.end(1) :]


def is_pre_weight(name: str) -> bool:
    """True for non-layer weights that come before the layers (embeddings and their norm)."""
    return "/" not in name and bool(_PRE.search(name))


def num_layers(config: Mapping[str, Any] | None, tensors: Sequence[str]) -> int:
    """Return a model's layer count: its config's, else 1 + the highest layer in its names."""
    for key in LAYER_KEYS:
        if config and isinstance(config.get(key), int):
            return config[key]
    found = [i for i in map(layer_index, tensors) if i is not None]
    return max(found) + 1 if found else 0


class LayerView:
    """A checkpoint seen through one LayerSlice: only its tensors, under their output names."""

    def __init__(self, inner: Any, layers: LayerSlice):
        self.inner = inner
        self.layers = layers
        self.path = inner.path
        self.label = f"{inner.label} layers {layers.start}-{layers.stop}"
        self.modules = inner.modules
        self.config = inner.config
        self._names = self._rename(inner.tensors)
        self.tensors = {out: inner.tensors[name] for out, name in self._names.items()}

    def _rename(self, tensors: Mapping[str, Any]) -> dict[str, str]:
        s, names = self.layers, {}
        for name in sorted(tensors):
            index = layer_index(name)
            if index is None:
                if s.pre if is_pre_weight(name) else s.post:
                    names[name] = name
            elif s.start <= index < s.stop:
                names[renumber(name, index - s.start + s.offset)] = name
        return names

    @property
    def is_st(self) -> bool:
        return self.modules is not None

    @property
    def tokenizer_dir(self):
        return self.inner.tokenizer_dir

    def module_dirs(self) -> list[str]:
        return self.inner.module_dirs()

    def read(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        return self.inner.read(self._names[key], dtype)

    def read_rows(
        self,
        key: str,
        start: int,
        stop: int,
        dtype: torch.dtype | None = None,
        out: torch.Tensor | None = None,
    ):
        return self.inner.read_rows(self._names[key], start, stop, dtype, out)

    def can_read_rows(self, key: str) -> bool:
        return self.inner.can_read_rows(self._names[key])

    def close(self) -> None:
        self.inner.close()


def check_slice_inputs(
    where: str, ranges: Sequence[tuple[int, int]], base: Any, base_among: bool
) -> None:
    """Raise UserError (prefixed with where) unless a slice's layer ranges all have the same,
    positive length and its base (when there is one) is among its sources."""
    if base is not None and not base_among:
        raise UserError(
            f"{where}the base model {base} is not one of the slice's sources; "
            "add it with a layer_range"
        )
    if not ranges:
        raise UserError(f"{where}give at least one source (model + layer_range)")
    if len({b - a for a, b in ranges}) > 1 or min(b - a for a, b in ranges) < 1:
        raise UserError(
            f"{where}every source of a slice gives the same number of layers (at least one); "
            "got " + ", ".join(f"{a}-{b}" for a, b in ranges)
        )


def check_slice(sources: Any) -> None:
    """Raise UserError when a source's layer range leaves its model's layers (sources: the
    opened Sources of one slice, each item a LayerView)."""
    for j, view in enumerate(sources.items):
        depth = num_layers(view.inner.config, list(view.inner.tensors))
        start, stop = view.layers.start, view.layers.stop
        if not 0 <= start < stop <= depth:
            raise UserError(
                f"sources[{j}].layer_range: [{start}, {stop}] is not within the {depth} layers "
                f"of {view.inner.label} (0 <= start < stop <= {depth})"
            )


def layer_lists(config: Mapping[str, Any] | None) -> set[str]:
    """Return the keys of config that hold the layer count or one value per layer."""
    if not config:
        return set()
    depth = num_layers(config, ())
    keys = {k for k in LAYER_KEYS if k in config}
    return keys | {
        k
        for k, v in config.items()
        if isinstance(v, list) and v and len(v) == depth and k not in _NOT_LAYERS
    }


def sliced_config(
    config: Mapping[str, Any], picks: Sequence[tuple[Mapping[str, Any] | None, int]]
) -> dict[str, Any]:
    """Return config for the output layers: picks[k] = (the config of output layer k's first
    source, its layer there). The layer count is set, and every per-layer list (a list as long
    as its model's layer count, e.g. Gemma 3's layer_types) is rebuilt layer by layer."""
    out = dict(config)
    for key in LAYER_KEYS:
        if isinstance(out.get(key), int):
            out[key] = len(picks)
    for key in layer_lists(config) - set(LAYER_KEYS):
        out[key] = [_per_layer(src or config, key, layer, config[key]) for src, layer in picks]
    return out


# Lists in config.json that may happen to be as long as the layer count but are not per layer.
_NOT_LAYERS = {"architectures", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens"}


def _per_layer(config: Mapping[str, Any], key: str, layer: int, fallback: list) -> Any:
    values = config.get(key)
    if isinstance(values, list) and layer < len(values):
        return values[layer]
    return fallback[min(layer, len(fallback) - 1)]
