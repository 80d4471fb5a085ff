#!/usr/bin/env bash
# The browser assets the embedded Hub serves itself (no CDN: it must work air-gapped).
#  1. `npm ci` in web/ from web/package-lock.json (--ignore-scripts: no package's install script
#     runs), only when the lock changed since the last run (web/node_modules/.zoo-lock.sha256);
#  2. mermaid's ESM build (the entry and its chunks, no source maps) and its LICENSE copied into
#     zoo/hub/server/web/static/vendor/mermaid/ (gitignored; package data, so it is in the wheel),
#     in mermaid's own layout: the entry imports ./chunks/mermaid.esm.min/*.mjs by relative path.
# Run by the Makefile's venv install (make demo, make test). Usage: scripts/web-assets.sh
set -euo pipefail
cd "$(dirname "$0")/.."

web=web
lock="$web/package-lock.json"
stamp="$web/node_modules/.zoo-lock.sha256"
src="$web/node_modules/mermaid"
dest=zoo/hub/server/web/static/vendor/mermaid

command -v npm >/dev/null || { echo "web-assets: npm not found (install Node.js and npm)" >&2; exit 1; }

want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "web-assets: npm ci in $web/ (mermaid $(sed -n 's/.*"mermaid": "\(.*\)".*/\1/p' "$web/package.json" | head -1))"
  # Engine warnings (mermaid declares node >= 22) do not matter: only its browser build is used.
  (cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

entry="$src/dist/mermaid.esm.min.mjs"
chunks="$src/dist/chunks/mermaid.esm.min"
[ -f "$entry" ] && [ -d "$chunks" ] || { echo "web-assets: $entry or $chunks missing" >&2; exit 1; }

# Copy into a fresh folder beside the destination, then swap it in: never half a copy.
mkdir -p "$(dirname "$dest")"
tmp="$(mktemp -d "$dest.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/chunks/mermaid.esm.min"
cp "$entry" "$src/LICENSE" "$tmp/"
cp "$chunks"/*.mjs "$tmp/chunks/mermaid.esm.min/"
chmod -R a+rX "$tmp"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "web-assets: $dest ($(find "$dest" -name '*.mjs' | wc -l) modules, $(du -sh "$dest" | cut -f1))"
