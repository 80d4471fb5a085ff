"""Members on the Hub: push (one commit), find (by zoo metadata), pull (pinned and verified), show.

Every function takes an open Hub (zoo.hub.session.open_hub) and talks to it only through the
official huggingface_hub client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from zoo.errors import IntegrityError, UserError
from zoo.hashing import git_blob_id, sha256_file
from zoo.hub.metadata import ZooMetadata, matches, parse_metadata
from zoo.hub.session import Hub, hub_errors, retrying
from zoo.types import ModelRef

GENERATED = ("README.md", "zoo.json")
_SKIP_DIRS = {".git", ".cache", "__pycache__", ".ipynb_checkpoints"}
_CARRIED_CARD_KEYS = ("license", "language", "datasets", "license_name", "license_link")


@dataclass(frozen=True)
class Member:
    """A zoo member as listed on the Hub."""

    repo_id: str
    sha: str
    meta: ZooMetadata
    private: bool = False
    last_modified: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.repo_id}@{self.sha}"


@dataclass
class Pulled:
    """A member pulled to disk: where, at which commit, and how many bytes were verified."""

    path: Path
    repo_id: str
    sha: str
    verified_files: int
    meta: ZooMetadata | None = None
    redownloaded: list[str] = field(default_factory=list)


def local_files(folder: Path) -> list[tuple[str, Path]]:
    """The files of a folder as sorted (path_in_repo, path) pairs, without generated/hidden ones."""
    if not folder.is_dir():
        raise UserError(f"folder not found: {folder}")
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not _SKIP_DIRS & set(rel.split("/")) and rel not in GENERATED:
            files.append((rel, path))
    if not files:
        raise UserError(f"folder {folder} holds no files to push")
    return files


def source_card_data(folder: Path) -> dict[str, Any]:
    """Fields worth keeping (license, language, datasets) from the folder's README front matter."""
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    return carried_card_data(readme.read_text(encoding="utf-8", errors="replace"))


def carried_card_data(text: str) -> dict[str, Any]:
    """Fields worth keeping (license, language, datasets) from a card's front matter."""
    if not text.startswith("---"):
        return {}
    try:
        data = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return {}
    return {k: data[k] for k in _CARRIED_CARD_KEYS if isinstance(data, dict) and k in data}


def push_member(
    hub: Hub,
    folder: Path,
    repo_id: str,
    meta: ZooMetadata,
    card: str,
    *,
    private: bool = False,
    tag: str | None = None,
    message: str | None = None,
) -> str:
    """Publish folder + README.md (card) + zoo.json to repo_id in one commit; return its sha.

    Files present at the head but absent from folder are deleted in the same commit, so the repo
    mirrors the folder. The commit names its parent: a concurrent push makes this one fail cleanly.
    """
    with hub_errors(hub, f"push {repo_id}"):
        info = _commit_member(hub, folder, repo_id, meta, card, private, message, None)
        if tag:
            hub.api.create_tag(repo_id, tag=tag, revision=info.oid)
    return info.oid


def open_member_pr(
    hub: Hub,
    folder: Path,
    repo_id: str,
    meta: ZooMetadata,
    card: str,
    *,
    description: str,
    private: bool = False,
    message: str | None = None,
) -> tuple[str, str]:
    """Propose folder + card + zoo.json to repo_id as a pull request; (its commit, its URL).

    The same commit push_member would make, on refs/pr/N instead of main: main moves only when
    the pull request is merged. The repo is created first if missing (its main stays empty).
    """
    with hub_errors(hub, f"open a pull request on {repo_id}"):
        info = _commit_member(hub, folder, repo_id, meta, card, private, message, description)
    return info.oid, info.pr_url


def _commit_member(
    hub: Hub,
    folder: Path,
    repo_id: str,
    meta: ZooMetadata,
    card: str,
    private: bool,
    message: str | None,
    pr_description: str | None,
) -> Any:
    files = local_files(folder)
    hub.api.create_repo(repo_id, private=private, exist_ok=True)
    head = hub.api.model_info(repo_id)
    ops = _member_operations(files, meta, card, {s.rfilename for s in head.siblings or []})
    return hub.api.create_commit(
        repo_id,
        ops,
        commit_message=message or f"zoo: publish {meta.kind}",
        commit_description=pr_description,
        parent_commit=head.sha,
        create_pr=pr_description is not None,
    )


def _member_operations(
    files: list[tuple[str, Path]], meta: ZooMetadata, card: str, at_head: set[str]
) -> list[Any]:
    """The commit's operations: the folder's files, the card, zoo.json, deletions of the rest."""
    keep = {r for r, _ in files} | set(GENERATED) | {".gitattributes"}
    ops: list[Any] = [CommitOperationAdd(path_in_repo=r, path_or_fileobj=str(p)) for r, p in files]
    ops += [
        CommitOperationAdd("README.md", card.encode()),
        CommitOperationAdd("zoo.json", meta.to_json().encode()),
    ]
    return ops + [CommitOperationDelete(path_in_repo=r) for r in sorted(at_head - keep)]


def find_members(
    hub: Hub,
    *,
    kind: str | None = None,
    tags: Iterable[str] = (),
    query: dict[str, str] | None = None,
) -> list[Member]:
    """List zoo members, newest first, filtered by kind, Hub tags and KEY=VALUE metadata queries."""
    filters = ["zoo", *([f"zoo-{kind}"] if kind else []), *tags]
    out = []
    with hub_errors(hub, "list members"):
        for info in hub.api.list_models(filter=filters, full=True, cardData=True):
            meta = _card_meta(info)
            if meta is not None and matches(meta, query or {}):
                modified = info.last_modified.isoformat() if info.last_modified else None
                out.append(Member(info.id, info.sha, meta, bool(info.private), modified))
    return sorted(out, key=lambda m: (m.meta.created_at, m.repo_id), reverse=True)


def _card_meta(info: Any) -> ZooMetadata | None:
    card = info.card_data.to_dict() if info.card_data else {}
    try:
        return parse_metadata(card["zoo"]) if "zoo" in card else None
    except UserError:
        return None  # a repo tagged 'zoo' by hand, without valid metadata, is not a member


def resolve(hub: Hub, ref: ModelRef) -> str:
    """The 40-hex commit that ref (branch, tag, sha or default branch) points to now."""
    with hub_errors(hub, f"resolve {ref}"):
        return hub.api.model_info(ref.repo_id, revision=ref.revision).sha


def read_metadata(hub: Hub, repo_id: str, sha: str) -> ZooMetadata | None:
    """zoo.json of repo_id at commit sha, or None when the repo has none (not a zoo member)."""
    with hub_errors(hub, f"read {repo_id}@{sha[:8]}"):
        if not hub.api.file_exists(repo_id, "zoo.json", revision=sha):
            return None
        path = hf_hub_download(
            repo_id, "zoo.json", revision=sha, endpoint=hub.endpoint, token=hub.token
        )
    return parse_metadata(
        Path(path).read_text(encoding="utf-8"), where=f"{repo_id}@{sha[:8]}/zoo.json"
    )


def main_head(hub: Hub, repo_id: str) -> str | None:
    """The commit of repo_id's main, or None when the repo does not exist."""
    with hub_errors(hub, f"read {repo_id}"):
        if not hub.api.repo_exists(repo_id):
            return None
        return hub.api.model_info(repo_id).sha


def pull_member(hub: Hub, ref: ModelRef, to: Path | None = None) -> Pulled:
    """Download ref at its pinned commit and verify every file against the Hub's hashes.

    LFS files are checked by sha256, regular files by git blob id. A file that fails is fetched
    once more (it may be a stale cache entry); a second failure raises IntegrityError. A hub that
    goes away mid-pull is retried with backoff (session.retrying); the download resumes.
    """
    return retrying(f"pull {ref}", lambda: _pull_once(hub, ref, to))


def _pull_once(hub: Hub, ref: ModelRef, to: Path | None) -> Pulled:
    with hub_errors(hub, f"pull {ref}"):
        info = hub.api.model_info(ref.repo_id, revision=ref.revision, files_metadata=True)
        path = Path(
            snapshot_download(
                ref.repo_id, revision=info.sha, endpoint=hub.endpoint, token=hub.token, local_dir=to
            )
        )
        bad = _mismatches(path, info.siblings or [])
        for name in bad:
            hf_hub_download(
                ref.repo_id,
                name,
                revision=info.sha,
                endpoint=hub.endpoint,
                token=hub.token,
                local_dir=to,
                force_download=True,
            )
    still = _mismatches(path, [s for s in info.siblings or [] if s.rfilename in bad])
    if still:
        raise IntegrityError(
            f"pull {ref}: {still[0]} does not match its hash on {hub.label} "
            f"({len(still)} file(s) corrupt); the hub's copy is damaged"
        )
    meta_file = path / "zoo.json"
    meta = parse_metadata(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else None
    return Pulled(path, ref.repo_id, info.sha, len(info.siblings or []), meta, bad)


def _mismatches(folder: Path, siblings: list[Any]) -> list[str]:
    bad = []
    for s in siblings:
        local = folder / s.rfilename
        if not local.is_file():
            bad.append(s.rfilename)
        elif s.lfs is not None:
            if sha256_file(local) != s.lfs.sha256:
                bad.append(s.rfilename)
        elif s.blob_id and git_blob_id(local) != s.blob_id:
            bad.append(s.rfilename)
    return bad


def show_member(hub: Hub, ref: ModelRef) -> dict[str, Any]:
    """Everything zoo knows about ref: commit, metadata, branches and tags, history, lineage."""
    sha = resolve(hub, ref)
    with hub_errors(hub, f"show {ref}"):
        refs = hub.api.list_repo_refs(ref.repo_id)
        commits = hub.api.list_repo_commits(ref.repo_id, revision=sha)
    meta = read_metadata(hub, ref.repo_id, sha)
    return {
        "repo_id": ref.repo_id,
        "revision": ref.revision or "main",
        "sha": sha,
        "meta": meta.model_dump(mode="json") if meta else None,
        "branches": {b.name: b.target_commit for b in refs.branches},
        "tags": {t.name: t.target_commit for t in refs.tags},
        "commits": [
            {"id": c.commit_id, "title": c.title, "date": c.created_at.isoformat()} for c in commits
        ],
        "lineage": lineage(hub, f"{ref.repo_id}@{sha}", meta),
    }


def lineage(hub: Hub, node: str, meta: ZooMetadata | None = None, depth: int = 8) -> list[dict]:
    """Edges child -> parent (base_model and parents) up to depth levels, each node 'repo@sha'.

    Parents are read at their pinned commits, so a lineage never changes once published.
    """
    edges: list[dict] = []
    kinds: dict[str, str | None] = {}
    frontier = [(node, meta)]
    for _ in range(depth):
        nxt = []
        for child, child_meta in frontier:
            for parent, relation in _parents_of(child_meta):
                if parent not in kinds:
                    repo, _, sha = parent.partition("@")
                    pmeta = read_metadata(hub, repo, sha)
                    kinds[parent] = pmeta.kind if pmeta else None
                    nxt.append((parent, pmeta))
                edges.append(
                    {"child": child, "parent": parent, "relation": relation, "kind": kinds[parent]}
                )
        frontier = nxt
    return edges


def _parents_of(meta: ZooMetadata | None) -> list[tuple[str, str]]:
    if meta is None:
        return []
    out = [(p, "parent") for p in meta.parents]
    if meta.base_model and meta.base_model not in meta.parents:
        out.append((meta.base_model, "base"))
    return out


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")


def pull_skeleton(hub: Hub, ref: ModelRef, to: Path) -> tuple[str, dict[str, int]]:
    """Fetch ref without its weights: small files in full, safetensors as header + sparse hole.

    The result has every file at its real size, so header readers (safe_open metadata, merge
    planning) work, but no weight byte is downloaded or stored. Returns (sha, {file: size}).
    """
    with hub_errors(hub, f"inspect {ref}"):
        info = hub.api.model_info(ref.repo_id, revision=ref.revision, files_metadata=True)
        siblings = info.siblings or []
        small = [s.rfilename for s in siblings if not s.rfilename.endswith(WEIGHT_SUFFIXES)]
        snapshot_download(
            ref.repo_id,
            revision=info.sha,
            endpoint=hub.endpoint,
            token=hub.token,
            local_dir=to,
            allow_patterns=small or ["README.md"],
        )
        for s in siblings:
            if s.rfilename.endswith(".safetensors"):
                _write_header_skeleton(hub, ref.repo_id, info.sha, s.rfilename, s.size, to)
    return info.sha, {s.rfilename: s.size for s in siblings}


def _write_header_skeleton(
    hub: Hub, repo_id: str, sha: str, name: str, size: int, to: Path
) -> None:
    url = hf_hub_url(repo_id, name, revision=sha, endpoint=hub.endpoint)
    headers = build_hf_headers(token=hub.token or False)
    first = _range(url, headers, 0, 7)
    length = int.from_bytes(first, "little")
    header = _range(url, headers, 8, 8 + length - 1)
    path = to / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(first + header)
        f.truncate(size)


def _range(url: str, headers: dict, start: int, end: int) -> bytes:
    response = get_session().get(
        url, headers={**headers, "Range": f"bytes={start}-{end}"}, follow_redirects=True
    )
    hf_raise_for_status(response)
    return response.content[: end - start + 1]


def next_version_tag(hub: Hub, repo_id: str) -> str:
    """'v<N+1>' where vN is the highest version tag of repo_id ('v1' for a new repo)."""
    with hub_errors(hub, f"tags of {repo_id}"):
        if not hub.api.repo_exists(repo_id):
            return "v1"
        tags = [t.name for t in hub.api.list_repo_refs(repo_id).tags]
    numbers = [int(t[1:]) for t in tags if t[:1] == "v" and t[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1}"


def push_dataset(
    hub: Hub,
    folder: Path,
    repo_id: str,
    *,
    private: bool = False,
    message: str = "zoo: publish dataset",
) -> str:
    """Publish folder as a dataset repo in one commit (files mirrored as in push_member)."""
    files = local_files(folder)
    with hub_errors(hub, f"push dataset {repo_id}"):
        hub.api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        ops = [CommitOperationAdd(path_in_repo=r, path_or_fileobj=str(p)) for r, p in files]
        readme = folder / "README.md"
        if readme.is_file():
            ops.append(CommitOperationAdd("README.md", str(readme)))
        info = hub.api.create_commit(repo_id, ops, repo_type="dataset", commit_message=message)
    return info.oid


def pull_dataset(hub: Hub, ref: ModelRef) -> tuple[Path, str]:
    """Download a dataset repo at its pinned commit (retried like pull_member): (folder, sha)."""
    return retrying(f"pull dataset {ref}", lambda: _pull_dataset_once(hub, ref))


def dataset_resolver(hub: Hub | None) -> Callable[[str], tuple[Path, str]] | None:
    """The resolver a corpus spec's `hub:` sources take: 'repo[@rev]' -> pull_dataset's
    (folder, sha). None without a Hub (a spec with such a source then fails, naming it)."""
    if hub is None:
        return None
    return lambda ref: pull_dataset(hub, ModelRef.parse(ref))


def _pull_dataset_once(hub: Hub, ref: ModelRef) -> tuple[Path, str]:
    with hub_errors(hub, f"pull dataset {ref}"):
        info = hub.api.dataset_info(ref.repo_id, revision=ref.revision)
        path = snapshot_download(
            ref.repo_id,
            repo_type="dataset",
            revision=info.sha,
            endpoint=hub.endpoint,
            token=hub.token,
        )
    return Path(path), info.sha


def read_text(hub: Hub, repo_id: str, sha: str, name: str) -> str | None:
    """A text file of repo_id at commit sha, or None when it does not exist."""
    with hub_errors(hub, f"read {repo_id}@{sha[:8]}/{name}"):
        if not hub.api.file_exists(repo_id, name, revision=sha):
            return None
        path = hf_hub_download(repo_id, name, revision=sha, endpoint=hub.endpoint, token=hub.token)
    return Path(path).read_text(encoding="utf-8")


def _add_ops(files: dict[str, bytes]) -> list[CommitOperationAdd]:
    return [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=data)
        for name, data in sorted(files.items())
    ]


def commit_files(
    hub: Hub, repo_id: str, files: dict[str, bytes], *, parent: str, message: str
) -> str:
    """Add or replace files in one commit on top of parent (a concurrent change fails cleanly)."""
    with hub_errors(hub, f"commit to {repo_id}"):
        return hub.api.create_commit(
            repo_id, _add_ops(files), commit_message=message, parent_commit=parent
        ).oid


def open_files_pr(
    hub: Hub, repo_id: str, files: dict[str, bytes], *, parent: str, message: str, description: str
) -> tuple[str, str]:
    """The commit commit_files would make, opened as a pull request; (its commit, its URL)."""
    with hub_errors(hub, f"open a pull request on {repo_id}"):
        info = hub.api.create_commit(
            repo_id,
            _add_ops(files),
            commit_message=message,
            commit_description=description,
            parent_commit=parent,
            create_pr=True,
        )
    return info.oid, info.pr_url


def read_eval_results(hub: Hub, repo_id: str, sha: str) -> dict[str, str]:
    """The `.eval_results/*.yaml` files of repo_id at commit sha: {path in repo: text}."""
    out = {}
    with hub_errors(hub, f"read {repo_id}@{sha[:8]}/.eval_results"):
        info = hub.api.model_info(repo_id, revision=sha)
        for s in info.siblings or []:
            name = s.rfilename
            if name.startswith(".eval_results/") and name.endswith(".yaml"):
                path = hf_hub_download(
                    repo_id, name, revision=sha, endpoint=hub.endpoint, token=hub.token
                )
                out[name] = Path(path).read_text(encoding="utf-8", errors="replace")
    return out
