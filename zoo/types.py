"""Small frozen value objects shared by all layers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import UserError

_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID_RE = re.compile(rf"^{_PART}/{_PART}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
# A reference pinned to a commit, 'org/name@<40-hex>' (zoo.json's base_model and parents).
PINNED_RE = re.compile(r"^([A-Za-z0-9][\w.-]*/[\w.-]+)@([0-9a-f]{40})$")
# How a lineage graph (mermaid) draws a node of each kind: a card's graph and the Hub's model tree.
LINEAGE_SHAPES = {"base": ('(["', '"])'), "merged": ('{{"', '"}}'), None: ('["', '"]')}
_BAD_REV = re.compile(r"(^/|/$|//|\.\.|[\s~^:?*\[\\])")


def check_repo_id(repo_id: str) -> str:
    """Return repo_id unchanged if it is a valid `namespace/name`, else raise UserError."""
    if not REPO_ID_RE.match(repo_id or "") or ".." in repo_id or "--" in repo_id:
        raise UserError(
            f"invalid repo id {repo_id!r}: expected 'namespace/name' "
            "(letters, digits, '.', '_', '-'; no '..' or '--')"
        )
    return repo_id


def check_revision(rev: str) -> str:
    """Return rev unchanged if it can name a branch, tag or commit, else raise UserError."""
    if not rev or len(rev) > 200 or _BAD_REV.search(rev):
        raise UserError(f"invalid revision {rev!r}: expected a branch, tag or 40-hex commit")
    return rev


@dataclass(frozen=True)
class ModelRef:
    """A Hub model reference `namespace/name[@revision]`; revision None means the default branch."""

    repo_id: str
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse `org/name` or `org/name@rev`; raise UserError naming what is wrong."""
        repo_id, sep, rev = text.partition("@")
        check_repo_id(repo_id)
        if sep:
            check_revision(rev)
        return cls(repo_id, rev if sep else None)

    def pinned(self, sha: str) -> ModelRef:
        """Return the same repo at commit sha."""
        return ModelRef(self.repo_id, sha)

    def __str__(self) -> str:
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id


def is_local_ref(ref: str | Path) -> bool:
    """True when a REF names a local model folder rather than a Hub repo (`~` is expanded)."""
    return Path(ref).expanduser().is_dir()


def ratio_name(ratio: float) -> str:
    """A bag ratio as it appears in names: 0.4 -> '0.4', 1.0 -> '1.0' (always a decimal point)."""
    text = f"{ratio:g}"
    return text if "." in text else f"{text}.0"
