"""Orchestration only: each function is one user-level job built from the components.

members: push, ls, show, pull.  merging: merge (recipe -> select -> lock -> pull -> merge -> publish).
"""

from zoo.pipelines.members import ls, member_metadata, pull, push, show
from zoo.pipelines.merging import MergeOutcome, merge

__all__ = ["MergeOutcome", "ls", "member_metadata", "merge", "pull", "push", "show"]
