#!/usr/bin/env bash
# Install what `zoo data suite build --size small|full` reads (the tiny size needs none of it):
#  1. the Debian packages of every suite source (WordNet, dictd dictionaries, fortunes, Nave's
#     Topical Bible, and the man pages the image normally already has);
#  2. Debian's English long package descriptions, fetched into a private APT lists folder.
# The image's /etc/apt/apt.conf.d/docker-no-languages sets Acquire::Languages "none", and a
# list option cannot be cleared with -o. A private APT_CONFIG names a private *main* config
# file, which apt reads after apt.conf.d, so it can `#clear` the list; the system's lists and
# configuration are left untouched. Usage: scripts/suite-deps.sh  (PYTHON=... to pick python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

debs="$("$PYTHON" -m zoo.data.suite --debs)"
lists="$("$PYTHON" -m zoo.data.suite --apt-lists)"

echo "suite-deps: apt-get install $debs"
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $debs

echo "suite-deps: Debian package descriptions -> $lists"
conf="$(mktemp -d)"
trap 'rm -rf "$conf"' EXIT
mkdir -p "$lists/partial"
cat > "$conf/main.conf" <<EOF
#clear Acquire::Languages;
Acquire::Languages { "en"; };
Acquire::GzipIndexes "false";
Dir::State::Lists "$lists";
EOF
printf 'Dir::Etc::Main "%s";\n' "$conf/main.conf" > "$conf/apt.conf"
chmod a+r "$conf"/*.conf
$SUDO env APT_CONFIG="$conf/apt.conf" apt-get update -qq
ls "$lists"/*_main_i18n_Translation-en >/dev/null
echo "suite-deps: done"
