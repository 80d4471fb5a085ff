"""A repo's LFS objects: list them (`GET .../lfs-files`) and permanently delete them
(`POST .../lfs-files/batch`), as the Hub's storage settings do.

Listing walks every branch (main first) and names, for each LFS object linked to the repo, the
path, branch and date of the oldest commit holding it. Deleting unlinks the objects from the repo
(the download route serves only linked LFS objects, so no old commit reaches them either) and,
with rewriteHistory, rebuilds every branch and tag without the files that pointed at them. The
bytes stay in the content-addressed store when another repo links them.
"""

from __future__ import annotations

from zoo.hub.server import commits as C
from zoo.hub.server.repos import RepoStore


def _walk(repos: RepoStore, head: str):
    commit = repos.get_commit(head)
    while commit is not None:
        yield commit
        commit = repos.get_commit(commit["parents"][0]) if commit["parents"] else None


def listing(repos: RepoStore, state: dict) -> list[dict]:
    """One item per linked LFS object: fileOid, oid, filename, ref, pushedAt, size."""
    found: dict[str, dict] = {}
    linked = set(state["lfs"])
    branches = sorted(state["branches"].items(), key=lambda kv: (kv[0] != "main", kv[0]))
    for ref, head in branches:
        for commit in _walk(repos, head):  # newest first: the last one seen is the oldest
            for path, entry in sorted(commit["tree"].items()):
                sha = entry["sha256"]
                if entry["lfs"] and sha in linked and found.get(sha, {}).get("ref") in (None, ref):
                    found[sha] = {
                        "fileOid": sha,
                        "oid": entry["oid"],
                        "filename": path,
                        "ref": ref,
                        "pushedAt": commit["date"],
                        "size": entry["size"],
                    }
    return [found[sha] for sha in sorted(found)]


def _rewrite(repos: RepoStore, uid: str, cid: str, doomed: set[str], memo: dict) -> str:
    """The id of commit `cid` rebuilt without LFS entries in `doomed` (itself when untouched)."""
    chain = []
    while cid not in memo:
        commit = repos.get_commit(cid)
        chain.append(commit)
        if not commit["parents"]:
            break
        cid = commit["parents"][0]
    for commit in reversed(chain):  # oldest first, so each parent is rewritten already
        parents = [memo.get(p, p) for p in commit["parents"]]
        tree = {p: e for p, e in commit["tree"].items() if not (e["lfs"] and e["sha256"] in doomed)}
        if parents == commit["parents"] and len(tree) == len(commit["tree"]):
            memo[commit["id"]] = commit["id"]
            continue
        new = C.make_commit(
            uid, parents, tree, commit["title"], commit["message"], commit["author"]
        )
        repos.put_commit(new)
        memo[commit["id"]] = new["id"]
    return memo[chain[0]["id"]] if chain else memo[cid]


def delete(repos: RepoStore, state: dict, shas: list[str], rewrite_history: bool) -> int:
    """Unlink `shas` from `state` (mutated: run it under the repo lock); return how many were."""
    doomed = set(shas) & set(state["lfs"])
    state["lfs"] = sorted(set(state["lfs"]) - doomed)
    if rewrite_history and doomed:
        memo: dict[str, str] = {}
        for refs in (state["branches"], state["tags"], state.get("prs", {})):
            for name, head in list(refs.items()):
                refs[name] = _rewrite(repos, state["uid"], head, doomed, memo)
    return len(doomed)
