"""Pure card rendering: a plain-data context in, markdown text out. No network, no model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"  # package data (pyproject.toml)


def dump_front_matter(data: dict[str, Any]) -> str:
    """Serialise card YAML deterministically (insertion order kept, no trailing newline)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100).rstrip("\n")


def render(template: str, context: dict[str, Any]) -> str:
    """Render templates/<template>.md.j2 with context; same inputs give the same bytes."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return env.get_template(f"{template}.md.j2").render(**context)
