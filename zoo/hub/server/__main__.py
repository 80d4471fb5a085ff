"""`python -m zoo.hub.server --root DIR [--host H] [--port P]`: serve a Hub directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.hub.server.run import serve


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m zoo.hub.server", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="directory holding the Hub")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    args = parser.parse_args(argv)
    serve(args.root, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
