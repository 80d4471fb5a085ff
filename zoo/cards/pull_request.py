"""The description of a pull request that proposes a new model: per-task scores before and after.

Pure: scores in ({task: main score in [0, 1]}), markdown out. "Before" is the model on the target
repo's main, "after" the proposed one; the delta column and the forgetting/gain line show at a
glance what an update costs on old tasks and brings on new ones.
"""

from __future__ import annotations

MISSING = "—"


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.2f}"


def _signed(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:+.2f}"


def score_rows(before: dict[str, float], after: dict[str, float]) -> list[dict]:
    """One row per task of either side, sorted by name: before, after, delta (None if one lacks)."""
    rows = []
    for task in sorted(before.keys() | after.keys()):
        b, a = before.get(task), after.get(task)
        rows.append(
            {
                "task": task,
                "before": b,
                "after": a,
                "delta": None if a is None or b is None else a - b,
            }
        )
    return rows


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _table(rows: list[dict]) -> list[str]:
    lines = ["| task | before | after | Δ |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['task']} | {_pct(r['before'])} | {_pct(r['after'])} | {_signed(r['delta'])} |"
        )
    shared = [r for r in rows if r["delta"] is not None]
    means = [_mean([r[k] for r in shared]) for k in ("before", "after", "delta")]
    if shared:
        lines.append(
            f"| **mean of {len(shared)} shared** | {_pct(means[0])} | {_pct(means[1])} "
            f"| {_signed(means[2])} |"
        )
    return lines


def _at_a_glance(rows: list[dict]) -> str:
    shared = [r for r in rows if r["delta"] is not None]
    if not shared:
        return "No task was scored both before and after, so there is no delta to show."
    worst = min(shared, key=lambda r: (r["delta"], r["task"]))
    best = max(shared, key=lambda r: (r["delta"], r["task"]))
    drop = (
        f"{worst['task']} {_signed(worst['delta'])}"
        if worst["delta"] < 0
        else "none (no task lost)"
    )
    gain = f"{best['task']} {_signed(best['delta'])}" if best["delta"] > 0 else "none"
    return f"**Forgetting** (largest drop): {drop} · **gain** (largest rise): {gain}"


def pr_description(
    summary: str, repo_id: str, before: dict[str, float], after: dict[str, float]
) -> str:
    """Markdown: what is proposed, the before/after score table, the forgetting/gain line."""
    lines = [summary, ""]
    if not after:
        lines.append(
            "The proposed model was not evaluated (give the merge task folders: zoo.eval in the "
            "recipe, or --eval-task-dir), so there are no scores to compare."
        )
    else:
        rows = score_rows(before, after)
        lines += [
            f"Main scores ×100: **before** is `{repo_id}` on main, **after** is this pull request.",
            "",
            *_table(rows),
            "",
            _at_a_glance(rows),
        ]
    lines += ["", "Merging this pull request publishes the model on main."]
    return "\n".join(lines) + "\n"
