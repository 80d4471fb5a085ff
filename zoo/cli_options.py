"""The argument pieces every zoo command shares: the parser class, the global options, --json.

The global options (--hub, --token, --debug) are defined here once and added to the zoo parser
and to every subparser, so they are accepted before and after the subcommand.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# The global options' values when given nowhere (the top-level parser's defaults).
GLOBAL_DEFAULTS = {"hub": None, "token": None, "debug": False}


class Parser(argparse.ArgumentParser):
    """argparse with the global options on every parser, and one-line errors (exit 2)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _global_options(self.add_argument_group("global options"))

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"zoo: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _global_options(group: Any) -> None:
    """Add --hub, --token and --debug to one parser.

    Their defaults are SUPPRESS, so a subcommand's parser leaves a value given before the
    subcommand alone (given both before and after, the later one wins); the top-level parser
    sets the real defaults (GLOBAL_DEFAULTS).
    """
    group.add_argument(
        "--hub",
        default=argparse.SUPPRESS,
        help="Hub URL or embedded-hub directory (env ZOO_HUB; default .zoo/hub "
        "if present, else ~/.cache/zoo/hub)",
    )
    group.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="access token (default: HF_TOKEN, the huggingface_hub login, or "
        "the embedded hub's admin token)",
    )
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )


def json_option(p: argparse.ArgumentParser) -> None:
    """Add --json: print the result as machine-readable JSON on stdout."""
    p.add_argument("--json", action="store_true", help="machine-readable output")


def key_value(text: str) -> tuple[str, str]:
    """Parse KEY=VALUE (the --meta options)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def open_hub_for(args: argparse.Namespace, *, create: bool = False, needed: bool = True) -> Any:
    """The Hub the global options name (a context manager), or None when `needed` is false."""
    from zoo.hub.session import open_hub_if

    return open_hub_if(needed, args.hub, args.token, create=create)
