"""Render the suite's README.md from its stats document (pure: stats in, text out)."""

from __future__ import annotations

_GROUPS = {
    "in-domain": "In-domain training tasks (train.jsonl + held-out test; listed in corpus.yaml)",
    "ood": "Out-of-domain tests (sources no training task uses; test only)",
    "new-domain": "New domain: the Bible (train.jsonl + test; listed in new-domain.yaml)",
}


def render_readme(stats: dict) -> str:
    """Return README.md text: tasks with counts, sources with licences and versions, rebuild."""
    lines = [
        f"# zoo offline suite ({stats['size']})",
        "",
        (
            "Real text from Debian packages, the Python standard library and PyPI packages, built "
            "offline by `zoo data suite build`. Task folders follow the zoo task-folder format; "
            "`stats.json` holds every count and the sha256 of every file."
        ),
        "",
        f"Python {stats['python']}; caps per task: {stats['caps']}.",
    ]
    for group, title in _GROUPS.items():
        lines += _task_table(title, [t for t in stats["tasks"] if t["group"] == group])
    return "\n".join(lines + _source_table(stats["sources"]) + _REBUILD)


def _task_table(title: str, tasks: list[dict]) -> list[str]:
    lines = ["", f"## {title}", "", "| task | type | source | files (rows) |", "|---|---|---|---|"]
    for t in tasks:
        counts = ", ".join(f"{name} {n}" for name, n in t["counts"].items())
        lines.append(f"| {t['name']} | {t['type']} | {t['source']} | {counts} |")
    return lines


def _source_table(sources: dict) -> list[str]:
    lines = [
        "",
        "## Sources and licences",
        "",
        "| source | what | licence | versions |",
        "|---|---|---|---|",
    ]
    for name, src in sources.items():
        versions = ", ".join(f"{k} {v}" for k, v in {**src["debs"], **src["pip"]}.items()) or "-"
        lines.append(f"| {name} | {src['title']} | {src['licence']} | {versions} |")
    return lines


_REBUILD = [
    "",
    "## Rebuild",
    "",
    (
        "`zoo data suite build --size SIZE --out DIR` (small/full need `make suite` first, "
        "which installs the Debian packages and fetches Debian's package descriptions). "
        "The same machine state gives byte-identical files; counts change with package "
        "versions."
    ),
    "",
]
