"""`zoo data suite build`: build the offline real-data suite; optionally publish it as a dataset."""

from __future__ import annotations

from pathlib import Path

from zoo.data.suite import build_suite as _build
from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.types import check_repo_id

SIZES = ("tiny", "small", "full")


def build_suite(
    hub: Hub | None, size: str, out: Path, *, push: str | None = None
) -> tuple[Path, str | None]:
    """Build the suite into out; with push, publish it to `hub` as a dataset repo in one commit."""
    if push:
        check_repo_id(push)
        if hub is None:
            raise UserError(f"--push {push} needs a Hub")
    path = _build(size, out)
    if not push:
        return path, None
    sha = client.push_dataset(hub, path, push, message=f"zoo data suite ({size})")
    return path, f"{push}@{sha}"
