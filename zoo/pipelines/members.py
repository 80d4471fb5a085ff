"""Members on the Hub: push a folder, list, show and pull members."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.cards.member import member_card
from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.metadata import Adapter, ZooMetadata, parse_metadata
from zoo.hub.session import Hub
from zoo.merge.io import first_nonfinite
from zoo.types import ModelRef, check_repo_id

# --meta keys that set schema fields; every other key becomes a free label.
_FIELD_KEYS = {"base_model", "parents"}


def member_metadata(folder: Path, kind: str | None, meta_kv: dict[str, str]) -> ZooMetadata:
    """The metadata to publish folder with: its zoo.json if present, else from kind + --meta."""
    if not folder.is_dir():
        raise UserError(f"folder not found: {folder}")
    base: dict[str, Any] = {}
    if (folder / "zoo.json").is_file():
        base = parse_metadata(
            (folder / "zoo.json").read_text(encoding="utf-8"), where=str(folder / "zoo.json")
        ).model_dump(mode="json")
        base.pop("created_at", None)
    if kind:
        base["kind"] = kind
    base.setdefault("kind", "base")
    fields = {k: v for k, v in meta_kv.items() if k in _FIELD_KEYS}
    if "parents" in fields:
        fields["parents"] = [p for p in fields["parents"].split(",") if p]
    base.update(fields)
    base["labels"] = {
        **base.get("labels", {}),
        **{k: v for k, v in meta_kv.items() if k not in _FIELD_KEYS},
    }
    if (folder / "adapter_config.json").is_file() and "adapter" not in base:
        base["adapter"] = adapter_of(folder).model_dump(mode="json")
    return parse_metadata(base, where="metadata")


def adapter_of(folder: Path) -> Adapter:
    """How folder stores its weights: a LoRA adapter (its adapter_config.json) or full weights."""
    config = folder / "adapter_config.json"
    if config.is_file():
        return Adapter(type="lora", peft_config=json.loads(config.read_text()))
    return Adapter(type="full")


def push(
    hub: Hub,
    folder: Path,
    repo_id: str,
    *,
    kind: str | None = None,
    private: bool = False,
    meta_kv: dict[str, str] | None = None,
    tag: str | None = None,
    meta: ZooMetadata | None = None,
) -> tuple[str, ZooMetadata]:
    """Publish a local model folder as a zoo member in one commit; return (commit sha, metadata).

    meta: the metadata already built in memory (a pipeline's record); else member_metadata's.
    """
    check_repo_id(repo_id)
    if meta is None:
        meta = member_metadata(folder, kind, meta_kv or {})
    if bad := first_nonfinite(folder):
        raise UserError(f"{folder} holds NaN or Inf weights ({bad}); refusing to publish them")
    card = member_card(repo_id, meta.model_dump(mode="json"), client.source_card_data(folder))
    sha = client.push_member(hub, folder, repo_id, meta, card, private=private, tag=tag)
    return sha, meta


def ls(
    hub: Hub,
    *,
    kind: str | None = None,
    tags: tuple[str, ...] = (),
    query: dict[str, str] | None = None,
) -> list[client.Member]:
    """Members on the Hub matching kind, tags and metadata query."""
    return client.find_members(hub, kind=kind, tags=tags, query=query)


def show(hub: Hub, ref: str) -> dict[str, Any]:
    """What zoo knows of one member at one revision."""
    return client.show_member(hub, ModelRef.parse(ref))


def pull(hub: Hub, ref: str, to: Path | None = None) -> client.Pulled:
    """Download a member at its pinned commit, verified; return where it is."""
    if to is not None and to.exists() and not to.is_dir():
        raise UserError(f"--to {to} exists and is not a directory")
    return client.pull_member(hub, ModelRef.parse(ref), to)
