#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the browser tests (tests/web), installed with apt-get
# when the browser is missing; a no-op where it is there. Playwright drives this browser through
# its executable path: no test tool downloads a browser of its own.
# Run by `make test` (its `browser` prerequisite). Needs root (or sudo without a password) and a
# reachable Debian archive; otherwise it stops with one line saying so.
# ZOO_CHROMIUM names the browser to look for (default /usr/bin/chromium).
set -euo pipefail

bin="${ZOO_CHROMIUM:-/usr/bin/chromium}"
debs="chromium chromium-driver"
[ -x "$bin" ] && exit 0

fail() {
  echo "browser-deps: $bin is missing and $1; install Debian's $debs as root (apt-get install $debs)" >&2
  exit 1
}

command -v apt-get >/dev/null || fail "apt-get is not here (not a Debian machine)"
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -qq)
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || fail "this user is not root (and sudo asks for a password)"
  apt=(sudo -n "${apt[@]}")
fi

echo "browser-deps: apt-get install $debs"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086  # one word per package
if ! { "${apt[@]}" update && "${apt[@]}" install -y $debs; } >"$log" 2>&1; then
  tail -n 5 "$log" >&2
  fail "apt-get failed (above)"
fi
[ -x "$bin" ] || fail "apt-get installed $debs without it"
echo "browser-deps: $("$bin" --version 2>/dev/null | head -1)"
