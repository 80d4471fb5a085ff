"""Extract a LoRA adapter from a full fine-tune and its base: the maths and the per-module plan.

For a 2-D linear weight, delta = W_ft - W_base = U S V^T (SVD in float64). Rank k keeps the k
largest singular values: B = U_k sqrt(S_k), A = sqrt(S_k) V_k^T, so B @ A is the best rank-k
approximation of delta in Frobenius norm (Eckart-Young), written as peft's lora_A / lora_B with
lora_alpha = r (scale 1). Its retained energy is sum(s_1..s_k ^ 2) / ||delta||_F^2.

What is not a linear weight follows mergekit-extract-lora's rules: embeddings (input and output)
are saved whole in modules_to_save unless embed_lora (then an embedding LoRA of the transposed
delta); other modules that changed (LayerNorm, RMSNorm, conv, ...) are saved whole, or dropped with
skip_undecomposable. Unlike mergekit, modules the fine-tune left unchanged are not saved, and the
bias of a LoRA-targeted linear layer is saved whole (peft's bias="lora_only"), which both peft and
zoo's LoRA folding load; mergekit writes a lora_B.bias that peft loads only with lora_bias.
Pure: no I/O here (the streaming lives in zoo.merge.extract_write).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from zoo.errors import UserError

# Module names (last component) of input embeddings, and of output embeddings (the LM head).
_EMBEDDING = re.compile(r"(embed|^wte$|^wpe$|^shared$)")
_OUTPUT = {"lm_head", "embed_out"}
RESIZED = "vocabulary size differs from the base"


@dataclass(frozen=True)
class ExtractSettings:
    """How to extract (mergekit-extract-lora's options, zoo spelling)."""

    rank: int
    embed_lora: bool = False
    save_modules: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sv_epsilon: float = 0.0
    distribute_scale: bool = True
    skip_undecomposable: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise UserError(f"rank: must be a whole number >= 1, not {self.rank!r}")
        if not self.sv_epsilon >= 0:
            raise UserError(f"sv_epsilon: must be >= 0, not {self.sv_epsilon!r}")
        for option, patterns in (("include_regex", self.include), ("exclude_regex", self.exclude)):
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as err:
                    raise UserError(f"{option}: {pattern!r} is not a regex ({err})") from None


@dataclass(frozen=True)
class Factors:
    """A low-rank update B @ A and how much of the delta's energy it keeps."""

    a: torch.Tensor
    b: torch.Tensor
    kept: float
    total: float

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


def low_rank(
    delta: torch.Tensor, rank: int, *, sv_epsilon: float = 0.0, distribute_scale: bool = True
) -> Factors:
    """Return the rank-`rank` truncated SVD of a 2-D delta as LoRA factors (A: k x in, B: out x k).

    k = min(rank, min(delta.shape)), lowered to the singular values above sv_epsilon (at least
    1; an all-zero delta gives zero factors of rank 1). Factors come back in delta's dtype.
    """
    u, s, vh = torch.linalg.svd(delta.to(torch.float64), full_matrices=False)
    k = min(rank, s.numel())
    if sv_epsilon > 0:
        k = min(k, int((s > sv_epsilon).sum()))
    k = max(k, 1)
    if distribute_scale:
        root = s[:k].sqrt()
        a, b = root[:, None] * vh[:k], u[:, :k] * root
    else:
        a, b = s[:k, None] * vh[:k], u[:, :k]
    total, kept = float((s**2).sum()), float((s[:k] ** 2).sum())
    return Factors(a.to(delta.dtype), b.to(delta.dtype), kept, total)


@dataclass(frozen=True)
class Module:
    """One module of the root model: its name and {parameter: (base name, fine-tune name)}."""

    name: str
    params: dict[str, tuple[str, str]]

    @property
    def last(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class Decision:
    """What the adapter does with one module: lora, embedding (LoRA), whole, dropped."""

    module: Module
    how: str
    why: str = ""


def group_modules(names: dict[str, str]) -> list[Module]:
    """Group {base name: fine-tune name} by module (the name up to the last dot)."""
    grouped: dict[str, dict[str, tuple[str, str]]] = {}
    for base_name, ft_name in sorted(names.items()):
        module, _, param = base_name.rpartition(".")
        grouped.setdefault(module, {})[param] = (base_name, ft_name)
    return [Module(m, p) for m, p in sorted(grouped.items())]


def decide(
    module: Module,
    settings: ExtractSettings,
    shape_of: Callable[[str, str], tuple[tuple[int, ...], tuple[int, ...]]],
) -> Decision:
    """Choose how module's change goes into the adapter (mergekit-extract-lora's rules).

    shape_of(base name, fine-tune name) -> (base shape, fine-tune shape).
    """
    shapes = {p: shape_of(*names) for p, names in module.params.items()}
    kind = _kind(module, shapes)
    resized = any(b != f for b, f in shapes.values())
    if resized and kind not in ("embedding", "output"):
        param = next(p for p, (b, f) in shapes.items() if b != f)
        b, f = shapes[param]
        raise UserError(
            f"{module.name}.{param}: shape {f} in the fine-tune, {b} in the base "
            "(only embeddings may change size)"
        )
    if resized:
        return Decision(module, "whole", RESIZED)
    if module.name in settings.save_modules or module.last in settings.save_modules:
        return Decision(module, "whole", "--save-module")
    if kind == "other":  # no 2-D weight, or parameters besides weight and bias
        if settings.skip_undecomposable:
            return Decision(module, "dropped", "not a linear layer (--skip-undecomposable)")
        return Decision(module, "whole", "not a linear layer")
    if kind in ("embedding", "output") and not settings.embed_lora:
        return Decision(module, "whole", "embedding (no --embed-lora)")
    if not _selected(module.name, settings):
        return Decision(module, "dropped", "excluded by --include-regex/--exclude-regex")
    return Decision(module, "embedding" if kind == "embedding" else "lora")


def _kind(module: Module, shapes: dict) -> str:
    weight = shapes.get("weight")
    if weight is None or len(weight[0]) != 2 or set(module.params) - {"weight", "bias"}:
        return "other"
    if module.last in _OUTPUT:  # before the embedding test: GPT-NeoX's embed_out is a Linear
        return "output"
    if _EMBEDDING.search(module.last) and "bias" not in module.params:
        return "embedding"
    return "linear"


def _selected(name: str, settings: ExtractSettings) -> bool:
    if settings.include and not any(re.search(r, name) for r in settings.include):
        return False
    return not any(re.search(r, name) for r in settings.exclude)


@dataclass(frozen=True)
class MatrixReport:
    """One decomposed matrix: the rank kept and its delta's energy (squared Frobenius norm)."""

    name: str
    rank: int
    kept: float
    total: float

    @property
    def retained(self) -> float:
        return self.kept / self.total if self.total > 0 else 1.0


@dataclass
class ExtractReport:
    """What an extraction kept: per matrix energy, modules saved whole, changes dropped."""

    requested_rank: int
    matrices: list[MatrixReport] = field(default_factory=list)
    saved_whole: dict[str, str] = field(default_factory=dict)  # module -> why
    dropped: dict[str, str] = field(default_factory=dict)  # module -> why
    unchanged: int = 0

    @property
    def rank(self) -> int:
        """The adapter's r: the largest rank kept."""
        return max((m.rank for m in self.matrices), default=0)

    @property
    def retained(self) -> float:
        """Kept energy over the decomposed matrices' whole delta energy (1.0 when none)."""
        total = sum(m.total for m in self.matrices)
        return sum(m.kept for m in self.matrices) / total if total > 0 else 1.0

    def to_dict(self) -> dict:
        """Plain data, as saved in the adapter folder (extract_lora.json)."""
        return {
            "requested_rank": self.requested_rank,
            "rank": self.rank,
            "retained_energy": self.retained,
            "matrices": {
                m.name: {"rank": m.rank, "retained_energy": m.retained, "delta_energy": m.total}
                for m in self.matrices
            },
            "saved_whole": dict(sorted(self.saved_whole.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "unchanged_modules": self.unchanged,
        }
