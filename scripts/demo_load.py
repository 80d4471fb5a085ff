"""Load a published model by repo id, as any user would, and print a similarity.

HF_ENDPOINT must point at the Hub before this runs (transformers reads it at import).
"""

import sys

import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

repo = sys.argv[1]
texts = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar.",
    "The stock market fell sharply today.",
]

st = SentenceTransformer(repo, device="cpu")
emb = st.encode(texts, convert_to_tensor=True, normalize_embeddings=True)

tok = AutoTokenizer.from_pretrained(repo)
model = AutoModel.from_pretrained(repo)
batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
auto = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

print(
    f"SentenceTransformer({repo!r}): cos(guitar, guitar) = {float(emb[0] @ emb[1]):.3f}, "
    f"cos(guitar, stocks) = {float(emb[0] @ emb[2]):.3f}"
)
print(
    f"AutoModel + mean pooling agrees with SentenceTransformer: max |diff| = "
    f"{float((auto - emb).abs().max()):.2e}"
)
