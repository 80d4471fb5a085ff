"""`zoo data suite build`: build the offline real-data suite; optionally publish it as a dataset."""

from __future__ import annotations

from pathlib import Path

from zoo.data.suite import build_suite as _build
from zoo.hub import client
from zoo.hub.session import open_hub
from zoo.types import check_repo_id

SIZES = ("tiny", "small", "full")


def build_suite(
    size: str,
    out: Path,
    *,
    push: str | None = None,
    hub: str | None = None,
    token: str | None = None,
) -> tuple[Path, str | None]:
    """Build the suite into out; with push, publish it as a dataset repo in one commit."""
    if push:
        check_repo_id(push)
    path = _build(size, out)
    if not push:
        return path, None
    with open_hub(hub, token, create=True) as h:
        sha = client.push_dataset(h, path, push, message=f"zoo data suite ({size})")
    return path, f"{push}@{sha}"
