"""Stream a fine-tune and its base into a peft LoRA adapter folder (zoo.merge.extract's plan).

Tensors are read lazily, a module at a time (zoo.merge.io.Checkpoint); only the low-rank factors
(the adapter's LoRA part) are held until the end, then written with everything saved whole
re-read from the fine-tune, so peak memory is a few tensors plus the factors. The folder is a
standard peft adapter (adapter_config.json + adapter_model.safetensors) that
`peft.PeftModel.from_pretrained(base, folder)` and zoo's LoRA folding load; from a
sentence-transformers fine-tune it also carries the other ST files and module folders (Pooling,
Dense, ...) taken from the fine-tune, as sentence-transformers saves a LoRA model.
The adapter's names are the base's (the model it is applied to).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from zoo.errors import UserError
from zoo.merge.extract import (
    RESIZED,
    Decision,
    ExtractReport,
    ExtractSettings,
    Factors,
    MatrixReport,
    decide,
    group_modules,
    low_rank,
)
from zoo.merge.io import WEIGHT_SUFFIXES, Checkpoint, align_names
from zoo.merge.package import building, finish
from zoo.merge.writer import Entry, StreamWriter

REPORT = "extract_lora.json"
_PREFIX = "base_model.model."
# Root files never copied into the adapter: a config.json would make it look like a full model.
_NOT_COPIED = {"config.json", "README.md", "zoo.json", "adapter_config.json", REPORT}


@dataclass(frozen=True)
class _Planned:
    """One module's outcome: its decision and, for LoRA, the factors."""

    decision: Decision
    factors: Factors | None = None


def extract_lora(
    finetuned: Path, base: Path, out: Path, settings: ExtractSettings, *, base_name: str
) -> ExtractReport:
    """Write the LoRA adapter taking base to finetuned into out (created; must not exist).

    base_name goes into adapter_config.json's base_model_name_or_path. Deterministic: the same
    inputs give the same bytes. Writes extract_lora.json (the report) next to the adapter.
    """
    out = Path(out)
    if out.exists():
        raise UserError(f"--out {out} already exists; choose a new folder")
    with Checkpoint(finetuned, "fine-tune") as ft, Checkpoint(base, "base") as bs:
        names = _pair_names(ft, bs)
        report = ExtractReport(settings.rank)
        planned = [_plan(m, ft, bs, settings, report) for m in group_modules(names)]
        planned = [p for p in planned if p is not None]
        _st_modules(ft, bs, report)
        if not planned and not report.saved_whole:
            raise UserError(f"fine-tune: {finetuned} does not differ from the base {base}")
        with building(out) as tmp:  # removed on failure; a killed run's leftovers cleaned
            _write_weights(tmp, planned, ft)
            _copy_side_files(ft, tmp)
            config = adapter_config(planned, base_name, ft.config)
            _write_json(tmp / "adapter_config.json", config)
            _write_json(tmp / REPORT, report.to_dict())
            finish(tmp, out)
    return report


def _pair_names(ft: Checkpoint, bs: Checkpoint) -> dict[str, str]:
    """{base root name: fine-tune root name}, every root tensor on both sides matched."""
    ft_root = [k for k in ft.tensors if "/" not in k]
    bs_root = [k for k in bs.tensors if "/" not in k]
    names = align_names(ft_root, bs_root, "fine-tune")
    # buffers such as BERT's integer position_ids: transformers 5 no longer saves them
    missing = sorted(k for k in set(bs_root) - set(names) if bs.tensors[k].dtype.is_floating_point)
    if missing:
        raise UserError(f"fine-tune: lacks {missing[0]!r}, which the base has")
    if extra := sorted(set(ft_root) - set(names.values())):
        raise UserError(f"fine-tune: has {extra[0]!r}, which the base lacks")
    return {b: f for b, f in names.items() if bs.tensors[b].dtype.is_floating_point}


def _plan(module, ft, bs, settings: ExtractSettings, report: ExtractReport) -> _Planned | None:
    """Decide one module, read it, and record it in report; None when nothing is saved."""
    decision = decide(module, settings, lambda b, f: (bs.tensors[b].shape, ft.tensors[f].shape))
    if decision.why != RESIZED and all(_equal(bs, ft, *n) for n in module.params.values()):
        report.unchanged += 1
        return None
    if decision.how == "dropped":
        report.dropped[module.name] = decision.why
        return None
    if decision.how == "whole":
        report.saved_whole[module.name] = decision.why
        return _Planned(decision)
    factors = _factors(module, decision, ft, bs, settings)
    report.matrices.append(MatrixReport(module.name, factors.rank, factors.kept, factors.total))
    return _Planned(decision, factors)


def _factors(module, decision: Decision, ft, bs, settings: ExtractSettings) -> Factors:
    """The truncated SVD of the module's weight delta, factors in the fine-tune's dtype."""
    base_name, ft_name = module.params["weight"]
    delta = ft.read(ft_name, torch.float64) - bs.read(base_name, torch.float64)
    found = low_rank(
        delta.T if decision.how == "embedding" else delta,
        settings.rank,
        sv_epsilon=settings.sv_epsilon,
        distribute_scale=settings.distribute_scale,
    )
    dtype = ft.tensors[ft_name].dtype
    return Factors(found.a.to(dtype), found.b.to(dtype), found.kept, found.total)


def _st_modules(ft: Checkpoint, bs: Checkpoint, report: ExtractReport) -> None:
    """Report the ST modules (Dense, ...) whose weights differ: copied whole from the fine-tune."""
    for key in sorted(k for k in ft.tensors if "/" in k):
        module = key.split("/")[0]
        same = key in bs.tensors and bs.tensors[key].shape == ft.tensors[key].shape
        if not (same and _equal(bs, ft, key, key)):
            report.saved_whole[module] = "sentence-transformers module, copied from the fine-tune"


def _equal(bs: Checkpoint, ft: Checkpoint, base_name: str, ft_name: str) -> bool:
    return torch.equal(bs.read(base_name), ft.read(ft_name).to(bs.tensors[base_name].dtype))


def _tensors(planned: _Planned) -> list[tuple[str, str | torch.Tensor]]:
    """(adapter key, fine-tune tensor name or computed tensor) for one module."""
    module, how = planned.decision.module, planned.decision.how
    prefix = _PREFIX + module.name
    if how == "whole":
        return [(f"{prefix}.{p}", ft_name) for p, (_, ft_name) in sorted(module.params.items())]
    f = planned.factors
    if how == "embedding":
        return [(f"{prefix}.lora_embedding_A", f.a), (f"{prefix}.lora_embedding_B", f.b)]
    out: list[tuple[str, str | torch.Tensor]] = [
        (f"{prefix}.lora_A.weight", f.a),
        (f"{prefix}.lora_B.weight", f.b),
    ]
    if "bias" in module.params:
        out.append((f"{prefix}.base_layer.bias", module.params["bias"][1]))
    return out


def _write_weights(folder: Path, planned: list[_Planned], ft: Checkpoint) -> None:
    items = sorted(t for p in planned for t in _tensors(p))
    entries = [
        Entry(key, ft.tensors[v].dtype, ft.tensors[v].shape)
        if isinstance(v, str)
        else Entry(key, v.dtype, tuple(v.shape))
        for key, v in items
    ]
    writer = StreamWriter(folder, entries, stem="adapter_model")
    try:
        for key, value in items:  # sorted: the writer's file order
            writer.write(key, ft.read(value) if isinstance(value, str) else value)
        writer.close()
    except BaseException:
        writer.abort()
        raise


def adapter_config(planned: list[_Planned], base_name: str, model_config: dict | None) -> dict:
    """The peft LoraConfig of the extracted adapter (scale 1 for every module: alpha = r)."""
    lora = [p for p in planned if p.factors is not None]
    ranks = {p.decision.module.name: p.factors.rank for p in lora}
    r = max(ranks.values(), default=1)
    patterns = {re.escape(m): k for m, k in sorted(ranks.items()) if k != r}
    whole = sorted(p.decision.module.name for p in planned if p.decision.how == "whole")
    biased = any("bias" in p.decision.module.params for p in lora)
    causal = any(a.endswith("ForCausalLM") for a in (model_config or {}).get("architectures", []))
    return {
        "base_model_name_or_path": base_name,
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM" if causal else None,
        "r": r,
        "lora_alpha": r,
        "rank_pattern": patterns,
        "alpha_pattern": dict(patterns),
        "target_modules": sorted(ranks),
        "modules_to_save": whole or None,
        "bias": "lora_only" if biased else "none",
        "lora_dropout": 0.0,
        "fan_in_fan_out": False,
        "use_rslora": False,
        "init_lora_weights": True,
        "inference_mode": True,
    }


def _copy_side_files(ft: Checkpoint, folder: Path) -> None:
    """Copy the fine-tune's tokenizer and ST files, and its ST module folders, into folder."""
    for path in sorted(ft.path.iterdir()):
        if path.is_file() and path.name not in _NOT_COPIED and not _is_weights(path.name):
            shutil.copy2(path, folder / path.name)
    for module in ft.module_dirs() if ft.is_st else []:
        if module and (ft.path / module).is_dir():
            shutil.copytree(ft.path / module, folder / module)


def _is_weights(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES) or name.endswith(".index.json")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
