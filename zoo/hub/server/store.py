"""HubStore: one directory holding everything the embedded Hub serves.

```
<root>/hub.json            layout marker {"format": "zoo-hub", "version": 1}
<root>/admin.token         the admin token (0600): the directory's owner acts as admin
<root>/auth/               hashed tokens, signing secret, namespace claims (see auth.py)
<root>/objects/ab/<sha256> file contents, content-addressed and verified (see objects.py)
<root>/commits/ab/<id>.json immutable commits (see commits.py)
<root>/repos/<type>/<key>.json repo state: refs, owner, visibility, linked LFS oids (see repos.py)
<root>/discussions/ab/<uid>.json discussions and pull requests of a repo (see discussions.py)
<root>/xet/                verified xorbs, shards and per-repo links (see xet_store.py)
<root>/locks/<key>.lock    per-repo flock files
<root>/tmp/                uploads in flight (swept after a day)
```
Several processes may open the same root: all writes are atomic and serialised by file locks.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from zoo.hub.server.auth import AuthStore
from zoo.hub.server.cards import CardError, card_tags, parse_front_matter, plain_card
from zoo.hub.server.discussions import DiscussionStore
from zoo.hub.server.fsutil import create_exclusive, dump_json, read_json, sweep_stale_tmp
from zoo.hub.server.model_meta import config_tags
from zoo.hub.server.objects import ObjectStore
from zoo.hub.server.repos import RepoStore
from zoo.hub.server.xet_store import XetStore

FORMAT = {"format": "zoo-hub", "version": 1}
_README_MAX = 4 << 20


class HubStore:
    """The embedded Hub's storage; creates the layout on first use (idempotent, concurrent-safe)."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser().resolve()
        # 0700 when we create it: file contents of private repos live here in the clear.
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = self.root / "hub.json"
        if not create_exclusive(marker, dump_json(FORMAT)) and read_json(marker) != FORMAT:
            raise ValueError(f"{self.root} holds an unknown hub format: {read_json(marker)}")
        self.objects = ObjectStore(self.root)
        self.auth = AuthStore(self.root)
        self.repos = RepoStore(self.root, self.objects)
        self.discussions = DiscussionStore(self.root, self.repos)
        self.xet = XetStore(self.root, self.objects, self.repos.link_lfs)
        self._cards: OrderedDict[str, tuple[dict, list[str]]] = OrderedDict()
        self._cards_lock = threading.Lock()

    def sweep(self) -> int:
        """Delete staging files left by crashed writers (older than a day); return the count."""
        dirs = [self.root, self.auth.dir, self.auth.dir / "namespaces"]
        dirs += [self.root / "repos" / t for t in ("model", "dataset")]
        dirs += [p for p in (self.root / "commits").iterdir() if p.is_dir()]
        dirs += [p for p in self.discussions.dir.iterdir() if p.is_dir()]
        return sweep_stale_tmp(dirs) + self.objects.sweep_tmp()

    def add_token(self, name: str, write: bool) -> str:
        """Create a token for user `name` and return its plaintext once; only a hash is stored."""
        return self.auth.add_token(name, write)

    def admin_token(self) -> str:
        """Return the admin token (read from `<root>/admin.token`)."""
        return self.auth.admin_token()

    def card(self, repo_type: str, commit: dict) -> tuple[dict, list[str]]:
        """Return (cardData, tags) of a commit's README.md; ({}, tags from files) if it has none.

        A README whose front matter does not parse counts as having none (the commit was
        accepted before validate-yaml ran, e.g. by an old client). Cached per commit.
        """
        with self._cards_lock:
            hit = self._cards.get(commit["id"])
        if hit is not None:
            return hit
        card = self._read_card(commit["tree"].get("README.md"))
        tags = card_tags(card, repo_type, list(commit["tree"]))
        if repo_type == "model":
            tags = list(dict.fromkeys(tags + config_tags(self.objects, commit["tree"])))
        result = (card, tags)
        with self._cards_lock:
            self._cards[commit["id"]] = result
            while len(self._cards) > 2048:
                self._cards.popitem(last=False)
        return result

    def _read_card(self, entry: dict | None) -> dict:
        if entry is None or entry["size"] > _README_MAX:
            return {}
        try:
            text = self.objects.path(entry["sha256"]).read_text("utf-8")
            return plain_card(parse_front_matter(text))  # cardData is always valid JSON
        except (CardError, UnicodeDecodeError, FileNotFoundError):
            return {}
