"""Orchestration only: each function is one user-level job built from the components.

members: push, ls, show, pull.  merging: merge (recipe -> select -> lock -> pull -> merge ->
publish). Submodules load on first use (zoo.lazy), so `zoo ls` does not pay for torch and mergekit.
boom() and update() are reached through their modules (zoo.pipelines.boom.boom): a package
attribute of the same name as a submodule is replaced by the submodule once it is imported.
"""

from zoo.lazy import lazy_exports

_EXPORTS = {
    "push": "zoo.pipelines.members",
    "ls": "zoo.pipelines.members",
    "show": "zoo.pipelines.members",
    "pull": "zoo.pipelines.members",
    "member_metadata": "zoo.pipelines.members",
    "prepare_merge": "zoo.pipelines.merging",
    "merge": "zoo.pipelines.merging",
    "MergeOptions": "zoo.pipelines.merge_job",
    "MergeJob": "zoo.pipelines.merge_job",
    "MergeOutcome": "zoo.pipelines.merging",
    "build_suite": "zoo.pipelines.data",
    "prepare_bags": "zoo.pipelines.bags",
    "train_bags": "zoo.pipelines.bags",
    "BagOptions": "zoo.pipelines.bags",
    "BoomOptions": "zoo.pipelines.boom",
    "UpdateOptions": "zoo.pipelines.update",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
