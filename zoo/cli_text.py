"""Plain-text renderings of the zoo command's results (pure: data in, text out)."""

from __future__ import annotations

import json
from typing import Any


def plan_text(plan: dict) -> str:
    lines = [
        f"method: {plan['method']}  params: {json.dumps(plan['params'], sort_keys=True)}  seed: {plan['seed']}"
    ]
    if plan["base"]:
        lines.append(f"base: {plan['base']}")
    lines += [
        f"model: {m['ref']}  {json.dumps(m['params'], sort_keys=True)}" for m in plan["models"]
    ]
    lines.append(
        f"tensors: {plan['tensors']} ({plan['tensors_to_merge']} merged)  "
        f"output: {plan['out_bytes'] / 2**20:.1f} MiB in {', '.join(plan['out_files'])}"
    )
    lines.append(
        f"estimated peak memory: {plan['estimated_peak_bytes'] / 2**20:.1f} MiB on {plan['device']}"
    )
    return "\n".join(lines)


def ls_table(members: list) -> str:
    if not members:
        return "no members found"
    lines = [f"{'REPO':40} {'SHA':8} {'KIND':7} {'EXPERIMENT':14} {'RATIO':5} BASE"]
    for m in members:
        t = m.meta.training
        ratio = "" if not t or t.ratio is None else f"{t.ratio:g}"
        lines.append(
            f"{m.repo_id:40} {m.sha[:8]} {m.meta.kind:7} {(m.meta.experiment or ''):14} "
            f"{ratio:5} {m.meta.base_model or ''}"
        )
    return "\n".join(lines)


def show_text(info: dict) -> str:
    meta = info["meta"] or {}
    lines = [
        f"{info['repo_id']}@{info['sha']}  ({info['revision']})",
        f"kind: {meta.get('kind', 'not a zoo member')}",
    ]
    if meta.get("base_model"):
        lines.append(f"base_model: {meta['base_model']}")
    lines += [f"branch {n}: {s}" for n, s in info["branches"].items()]
    lines += [f"tag {n}: {s}" for n, s in info["tags"].items()]
    lines += [
        f"lineage: {e['child']} -> {e['parent']} ({e['relation']}, {e['kind']})"
        for e in info["lineage"]
    ]
    lines += [f"commit {c['id'][:8]} {c['date']} {c['title']}" for c in info["commits"]]
    return "\n".join(lines)


def bag_row(o: Any) -> dict:
    """One trained or reused bag as plain data (bag train / boom output)."""
    t = o.meta.training if o.meta else None
    return {
        "ratio": o.ratio,
        "path": str(o.path) if o.result else None,
        "published": o.published,
        "reused": o.reused,
        "examples_seen": t.examples_seen if t else o.result.examples_seen,
        "wall_time_s": round(t.wall_time_s if t else o.result.wall_time_s, 2),
        "final_loss": o.result.final_loss if o.result else None,
        "manifest_sha256": t.corpus_manifest_hash if t else None,
    }
