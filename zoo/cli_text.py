"""What the zoo command prints (pure: results in, plain data or text out; no I/O).

Each command's result becomes plain data (its --json output) with a `*_data` function, and that
data becomes the human-readable text with a `*_text` function; `output` picks one of the two.
"""

from __future__ import annotations

import json
from typing import Any

from zoo.types import ratio_name


def output(data: Any, text: str, *, as_json: bool) -> str:
    """The text to print: data as sorted, indented JSON with --json, else the text."""
    return json.dumps(data, indent=2, sort_keys=True) if as_json else text


def plan_text(plan: dict) -> str:
    """A merge plan (zoo merge --dry-run): method, inputs, tensor counts, size, peak memory; a
    multi-merge's earlier merges first, each under its name."""
    if not plan.get("merges"):
        return _one_plan_text(plan)
    parts = [f"merge {m['name']!r}:\n{_one_plan_text(m)}" for m in plan["merges"]]
    return "\n\n".join([*parts, f"final merge:\n{_one_plan_text(plan)}"])


def _one_plan_text(plan: dict) -> str:
    params = json.dumps(plan["params"], sort_keys=True)
    lines = [f"method: {plan['method']}  params: {params}  seed: {plan['seed']}"]
    if plan["base"]:
        lines.append(f"base: {plan['base']}")
    if plan.get("slices"):
        lines += [_slice_line(i, sl) for i, sl in enumerate(plan["slices"])]
    else:
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
    if plan.get("tokenizer") is not None or plan.get("chat_template") is not None:
        rows = plan.get("vocab_rows")
        lines.append(
            f"tokenizer: {json.dumps(plan.get('tokenizer'), sort_keys=True, ensure_ascii=False)}  "
            f"vocabulary rows: {rows if rows is not None else 'unchanged'}  "
            f"chat_template: {'set' if plan.get('chat_template') else 'kept'}"
        )
    return "\n".join(lines)


def _slice_line(i: int, sl: dict) -> str:
    """One output slice of a plan: 'slice 0: layers 0-23 <- ref [0, 24], ...'."""
    start, stop = sl["layers"]
    sources = ", ".join(
        f"{s['ref']} [{s['layer_range'][0]}, {s['layer_range'][1]}]"
        + (f" {json.dumps(s['params'], sort_keys=True)}" if s["params"] else "")
        for s in sl["sources"]
    )
    extra = f"  params: {json.dumps(sl['params'], sort_keys=True)}" if sl["params"] else ""
    return f"slice {i}: output layers {start}-{stop - 1} <- {sources}{extra}"


def merge_data(outcome: Any) -> dict:
    """A finished merge (zoo merge) as plain data."""
    return {
        "out": str(outcome.out),
        "published": outcome.published,
        "tag": outcome.tag,
        "pr": outcome.pr_url,
        "seconds": round(outcome.report.seconds, 3),
        "peak_rss_bytes": outcome.report.peak_rss_bytes,
        "files": dict(outcome.report.files),
        "plan": outcome.plan,
        "search": outcome.search,
    }


def merge_text(data: dict) -> str:
    """The output folder, where it was published, and the search's best candidate."""
    text = data["out"]
    if data["pr"]:
        text += f"\nproposed {data['published']} as pull request {data['pr']}"
    elif data["published"]:
        text += f"\npublished {data['published']} (tag {data['tag']})"
    if search := data["search"]:
        best = search["trials"][search["best"]]
        text += (
            f"\nsearch ({search['strategy']}): {len(search['trials'])} candidates, "
            f"best {search['parameter']}={best['values']} (dev score {best['score']:.4f})"
        )
    return text


def pushed_text(data: dict) -> str:
    """The pushed commit as REPO_ID@SHA (zoo push)."""
    return f"{data['repo_id']}@{data['sha']}"


def member_rows(members: list) -> list[dict]:
    """Members found by zoo ls as plain data."""
    return [
        {
            "repo_id": m.repo_id,
            "sha": m.sha,
            "private": m.private,
            "meta": m.meta.model_dump(mode="json"),
        }
        for m in members
    ]


def ls_table(members: list) -> str:
    """One line per member: repo, short sha, kind, experiment, ratio, base."""
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
    """A member's metadata, branches, tags, lineage and commits (zoo show)."""
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


def pull_data(pulled: Any) -> dict:
    """A verified download (zoo pull) as plain data."""
    return {
        "path": str(pulled.path),
        "repo_id": pulled.repo_id,
        "sha": pulled.sha,
        "verified_files": pulled.verified_files,
    }


def card_update_text(ref: str, sha: str | None) -> str:
    """The new revision a re-rendered card was committed as, or that nothing changed."""
    return f"{ref.split('@')[0]}@{sha}" if sha else f"{ref}: the card is up to date"


def suite_text(data: dict) -> str:
    """Where the suite was built, and where it was pushed."""
    return data["path"] + (f"\npushed {data['pushed']}" if data["pushed"] else "")


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


def bags_text(rows: list[dict]) -> str:
    """One line per bag: where it is, and what training it took (or that it was reused)."""
    return "\n".join(
        f"bag {ratio_name(r['ratio'])}: {r['published'] or r['path']}  "
        + (
            "(reused: same manifest and settings already published)"
            if r["reused"]
            else f"({r['examples_seen']} examples, {r['wall_time_s']} s, loss {r['final_loss']})"
        )
        for r in rows
    )


def boom_data(result: Any) -> dict:
    """A BOOM run (zoo boom) as plain data."""
    return {
        "bags": [bag_row(b) for b in result.bags],
        "recipe": str(result.recipe),
        "published": result.merged.published,
        "tag": result.merged.tag,
        "bls": result.bls,
    }


def boom_text(data: dict) -> str:
    """The bags, the recipe, the merged model and the baseline of a BOOM run."""
    bags = [
        f"bag {ratio_name(r['ratio'])}: {r['published']}{' (reused)' if r['reused'] else ''}"
        for r in data["bags"]
    ]
    return "\n".join(
        [
            *bags,
            f"recipe: {data['recipe']}",
            f"merged: {data['published']} (tag {data['tag']})",
            *([f"bls: {data['bls']}"] if data["bls"] else []),
        ]
    )


def update_data(result: Any) -> dict:
    """An update run (zoo update) as plain data."""
    return {
        "current": result.current,
        "update": result.update,
        "recipe": str(result.recipe),
        "weights": list(result.weights),
        "new_rows": result.new_rows,
        "replay_rows": result.replay_rows,
        "published": result.merged.published,
        "tag": result.merged.tag,
        "pr": result.merged.pr_url,
        "out": str(result.merged.out),
    }


def update_text(data: dict) -> str:
    """The update model and its rows, the recipe and its weights, the merged model."""
    weights = data["weights"]
    return "\n".join(
        [
            f"update model: {data['update']} ({data['new_rows']} new rows + "
            f"{data['replay_rows']} replayed)",
            f"recipe: {data['recipe']} (weights {weights[0]}, {weights[1]})",
            f"merged: {data['published'] or data['out']}"
            + (f" (tag {data['tag']})" if data["tag"] else "")
            + (f" (pull request {data['pr']})" if data["pr"] else ""),
        ]
    )


def extract_text(report: dict, out: Any) -> str:
    """`zoo extract-lora`: the energy kept per matrix and overall, what was saved whole."""
    lines = [f"{'matrix':<56} {'rank':>4} {'energy kept':>11}"]
    for name, m in report["matrices"].items():
        lines.append(f"{name:<56} {m['rank']:>4} {m['retained_energy']:>11.4%}")
    lines += [f"saved whole: {name} ({why})" for name, why in report["saved_whole"].items()]
    lines += [f"dropped: {name} ({why})" for name, why in report["dropped"].items()]
    lines.append(
        f"LoRA r={report['rank']} written to {out}: {report['retained_energy']:.4%} of the "
        f"update's energy kept over {len(report['matrices'])} matrices"
    )
    return "\n".join(lines)
