"""Extract a LoRA adapter from a full fine-tune (`zoo extract-lora`), and publish a full bag as
one (`zoo push --as-lora R`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.metadata import Adapter, ZooMetadata, parse_metadata
from zoo.hub.session import Hub
from zoo.merge.extract import ExtractReport, ExtractSettings
from zoo.merge.extract_write import extract_lora
from zoo.pipelines.members import member_metadata, push
from zoo.types import ModelRef

# The labels an extracted adapter is published with (the card reads them).
LABEL_FROM, LABEL_RANK, LABEL_ENERGY = "extracted_from", "lora_rank", "retained_energy"


def extract(
    finetuned: Path,
    base: Path,
    out: Path,
    settings: ExtractSettings,
    *,
    base_name: str | None = None,
) -> ExtractReport:
    """Write the LoRA adapter of finetuned over base into out; return what it kept.

    Local folders only. base_name (default: base's absolute path) is the adapter's
    base_model_name_or_path.
    """
    finetuned, base = Path(finetuned), Path(base)
    for what, path in (("FINETUNED", finetuned), ("--base", base)):
        if not path.is_dir():
            raise UserError(f"{what}: {path} is not a model folder")
    return extract_lora(
        finetuned, base, Path(out), settings, base_name=base_name or str(base.resolve())
    )


def push_as_lora(
    hub: Hub,
    folder: Path,
    repo_id: str,
    rank: int,
    *,
    base: Path | None = None,
    kind: str | None = None,
    private: bool = False,
    meta_kv: dict[str, str] | None = None,
    tag: str | None = None,
) -> tuple[str, ZooMetadata, ExtractReport]:
    """Publish the full fine-tune in folder as a rank-`rank` LoRA adapter over its base_model.

    The base is `base` (a local folder) or the member base_model names, pulled from the Hub.
    The metadata keeps the fine-tune's (training, scores, labels) with adapter = the LoRA's peft
    config and the labels extracted_from, lora_rank and retained_energy. Nothing is written to
    folder; the adapter is built in a temporary folder and pushed in one commit.
    """
    settings = ExtractSettings(rank=rank)
    if (Path(folder) / "adapter_config.json").is_file():
        raise UserError(f"--as-lora: {folder} is already a LoRA adapter")
    meta = member_metadata(Path(folder), kind, meta_kv or {})
    if not meta.base_model:
        raise UserError(
            "--as-lora: the fine-tune's base model is unknown; give it in zoo.json or "
            "--meta base_model=ORG/NAME@SHA"
        )
    with tempfile.TemporaryDirectory(prefix="zoo-extract-") as tmp:
        base_dir = base or client.pull_member(hub, ModelRef.parse(meta.base_model)).path
        out = Path(tmp) / "adapter"
        report = extract(folder, base_dir, out, settings, base_name=meta.base_model.split("@")[0])
        lora = _lora_metadata(meta, out, report, Path(folder).resolve().name)
        sha, lora = push(hub, out, repo_id, private=private, tag=tag, meta=lora)
    return sha, lora, report


def _lora_metadata(
    meta: ZooMetadata, adapter: Path, report: ExtractReport, source: str
) -> ZooMetadata:
    data = meta.model_dump(mode="json")
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    data["adapter"] = Adapter(type="lora", peft_config=config).model_dump(mode="json")
    labels = data["labels"]
    labels.setdefault(LABEL_FROM, source)
    labels[LABEL_RANK] = str(report.rank)
    labels[LABEL_ENERGY] = f"{report.retained:.6f}"
    return parse_metadata(data, where="metadata")
