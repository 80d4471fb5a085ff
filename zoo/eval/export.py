"""Reports out: plain model-index dicts for the cards layer, and mteb's results-folder layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mteb.cache import ResultCache
from mteb.models.model_meta import ModelMeta
from mteb.results import TaskResult

from zoo.errors import UserError
from zoo.eval.report import EvalReport
from zoo.tasks import hub_task


def eval_result_dicts(report: EvalReport) -> list[dict[str, Any]]:
    """One dict per task, with exactly the keyword arguments of huggingface_hub.EvalResult.

    task_type (HF task category), task_name (mteb type), dataset_type (Hub dataset path, or
    `zoo-task/<name>` for a folder), dataset_name, dataset_config, dataset_split,
    dataset_revision (the dataset revision, or the folder's content hash), metric_type and
    metric_name (the main score), metric_value (0..1, as mteb reports it, rounded to 6
    decimals), source_name and source_url (mteb's, as its get_hf_eval_results writes them).
    The cards layer builds `EvalResult(**d)`; pure, deterministic, in report order.
    """
    out = []
    for t in report.tasks:
        dataset_type, _, dataset_rev = t.dataset.partition(",")[0].partition("@")
        out.append(
            {
                "task_type": hub_task(t.mteb_type),
                "task_name": t.mteb_type,
                "dataset_type": dataset_type,
                "dataset_name": t.name,
                "dataset_config": "default",
                "dataset_split": t.split,
                "dataset_revision": dataset_rev or t.content_hash,
                "metric_type": t.main_score,
                "metric_name": t.main_score,
                "metric_value": round(t.score, 6),
                "source_name": "MTEB",
                "source_url": "https://github.com/embeddings-benchmark/mteb",
            }
        )
    return out


def mteb_results_folder(
    report: EvalReport,
    out: str | Path,
    model_name: str,
    revision: str,
    model_meta: dict[str, Any] | None = None,
) -> Path:
    """Write the report as mteb results: out/results/<org__name>/<revision>/<Task>.json.

    Uses mteb's own ResultCache.save_to_cache, so the files are exactly what `mteb run`
    writes (TaskResult JSON, model_meta.json, run_settings.jsonl) and
    `mteb.ResultCache(out).load_results(...)` reads them back. `model_meta` is a stub from
    model_meta_stub(); its name and revision are replaced by the arguments. Returns the
    revision folder. Needs the in-memory report (its TaskResults are not in to_json()).
    """
    meta = _model_meta(model_name, revision, model_meta or {})
    cache = ResultCache(cache_path=Path(out))
    for task in report.tasks:
        if not task.mteb_result:
            raise UserError(f"task {task.name!r} has no mteb result to write (report from JSON?)")
        cache.save_to_cache(TaskResult.model_validate(task.mteb_result), meta)
    return Path(out) / "results" / meta.model_name_as_path() / revision


def _model_meta(name: str, revision: str, stub: dict[str, Any]) -> ModelMeta:
    fields = {k: v for k, v in stub.items() if k not in ("name", "revision")}
    if fields.get("training_datasets") is not None:
        fields["training_datasets"] = set(fields["training_datasets"])
    fields.update(
        name=name,
        revision=revision,
        framework=["Sentence Transformers", "PyTorch"],
        modalities=["text"],
    )
    return ModelMeta.create_empty(overwrites=fields)
