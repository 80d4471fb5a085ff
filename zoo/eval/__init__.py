"""Evaluation: mteb on standard tasks and local task folders, cached by model and task content.

    evaluate(model, tasks=..., task_dirs=...) -> EvalReport      (zoo.eval.runner)
    format_report(report) -> str, EvalReport, TaskScore          (zoo.eval.report; no mteb)
    eval_result_dicts(report), mteb_results_folder(report, ...)  (zoo.eval.export)
    model_meta_stub(model, name=..., revision=...)               (zoo.eval.model)

mteb is imported only inside this package, and only when one of the mteb-backed names is
first used (importing mteb takes seconds), so `from zoo.eval import format_report` is cheap.
"""

from zoo.eval.report import EvalReport, TaskScore, format_report
from zoo.lazy import lazy_exports

_LAZY = {
    "evaluate": "zoo.eval.runner",
    "eval_result_dicts": "zoo.eval.export",
    "mteb_results_folder": "zoo.eval.export",
    "model_meta_stub": "zoo.eval.model",
}
__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "EvalReport",
    "TaskScore",
    "eval_result_dicts",
    "evaluate",
    "format_report",
    "model_meta_stub",
    "mteb_results_folder",
]
