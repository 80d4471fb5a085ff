"""Vocabularies: compare them, and align embedding rows when a tokenizer_source says how.

tokenizer_source (mergekit's semantics): "base" keeps the base's (else the first model's)
tokenizer; "union" keeps it and appends, as added tokens, every token the other models have
(ordered by model, then token id); a folder path keeps that input's tokenizer. Each model's
vocabulary rows are then permuted onto the output ids. A token a model lacks takes a default row:
the base's when the base has it, else the mean of the models that have it (the one model's own
row when only one has it), zeros when none has it. When all vocabularies are equal nothing is
permuted, whatever tokenizer_source says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from zoo.errors import UserError
from zoo.merge.io import read_json

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "chat_template.jinja",
)
_VOCAB_TENSOR = re.compile(
    r"(^|\.)(word_embeddings|embed_tokens|wte|tok_embeddings|embed_in|shared)\.weight$"
    r"|(^|\.)(lm_head|embed_out)\.(weight|bias)$"
)


def read_vocab(folder: Path) -> dict[str, int] | None:
    """Return {token: id} from tokenizer.json (vocab + added tokens) or vocab.txt, else None."""
    path = folder / "tokenizer.json"
    if path.is_file():
        data = read_json(path)
        data = data if isinstance(data, dict) else {}
        model = data.get("model") if isinstance(data.get("model"), dict) else {}
        vocab = model.get("vocab")
        if isinstance(vocab, list):  # Unigram: [[piece, score], ...]
            vocab = {piece[0]: i for i, piece in enumerate(vocab)}
        out = dict(vocab) if isinstance(vocab, dict) else {}
        out.update({t["content"]: t["id"] for t in data.get("added_tokens", []) if "content" in t})
        return out or None
    path = folder / "vocab.txt"
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        return {token: i for i, token in enumerate(lines)}
    return None


def is_vocab_tensor(name: str) -> bool:
    """True for token-indexed tensors (embeddings, LM heads): their axis 0 is the vocabulary."""
    return "/" not in name and bool(_VOCAB_TENSOR.search(name))


@dataclass
class VocabPlan:
    """The output vocabulary and, per merge input, where each output row comes from."""

    vocab: dict[str, int]
    rows: int
    index: list[torch.Tensor]  # per input: source row per output row, -1 where missing
    tokenizer_dir: Path  # whose tokenizer files the output keeps
    added: list[str]  # tokens appended for "union" (empty otherwise)


def plan_vocab(
    vocabs: Sequence[dict[str, int] | None],
    labels: Sequence[str],
    tokenizer_dirs: Sequence[Path],
    *,
    donor: int,
    tokenizer_source: str | Path | None,
) -> VocabPlan | None:
    """Return how to align vocabularies, or None when they agree (or cannot be read).

    Raises UserError when they differ and tokenizer_source does not say how to align them.
    """
    known = [v for v in vocabs if v is not None]
    if not known or all(v == known[0] for v in known):
        return None
    first_diff = next(i for i, v in enumerate(vocabs) if v is not None and v != vocabs[donor])
    if tokenizer_source is None:
        raise UserError(
            f"the vocabulary of {labels[first_diff]} differs from {labels[donor]}'s; "
            "set tokenizer_source to 'base' or 'union' to align embeddings"
        )
    if any(v is None for v in vocabs):
        missing = labels[[v is None for v in vocabs].index(True)]
        raise UserError(f"cannot read the vocabulary of {missing} (no tokenizer.json or vocab.txt)")
    source = _source_index(tokenizer_source, tokenizer_dirs, donor)
    out, added = dict(vocabs[source]), []
    if tokenizer_source == "union":
        added = _union_tokens(vocabs, source)
        next_id = max(out.values()) + 1
        out.update({token: next_id + i for i, token in enumerate(added)})
    rows = max(out.values()) + 1
    index = [_row_index(out, v, rows) for v in vocabs]
    return VocabPlan(out, rows, index, tokenizer_dirs[source], added)


def _source_index(tokenizer_source, tokenizer_dirs, donor) -> int:
    if tokenizer_source in ("base", "union"):
        return donor
    if isinstance(tokenizer_source, (str, Path)):
        wanted = Path(tokenizer_source).resolve()
        for i, folder in enumerate(tokenizer_dirs):
            if Path(folder).resolve() == wanted:
                return i
    raise UserError(
        f"tokenizer_source must be 'base', 'union' or the folder of a merged model, "
        f"not {tokenizer_source!r}"
    )


def _union_tokens(vocabs, source) -> list[str]:
    seen = set(vocabs[source])
    added = []
    for vocab in vocabs:
        for token, _ in sorted(vocab.items(), key=lambda kv: (kv[1], kv[0])):
            if token not in seen:
                seen.add(token)
                added.append(token)
    return added


def _row_index(out: dict[str, int], vocab: dict[str, int], rows: int) -> torch.Tensor:
    index = torch.full((rows,), -1, dtype=torch.long)
    for token, new_id in out.items():
        if token in vocab:
            index[new_id] = vocab[token]
    return index


def permute_rows(
    tensors: Sequence[torch.Tensor], index: Sequence[torch.Tensor], base_index: int | None
) -> list[torch.Tensor]:
    """Return each input's token rows in output order, missing rows filled by the default rule.

    Source ids beyond a tensor's rows count as missing. Pure; inputs are not modified.
    """
    present, gathered = [], []
    for tensor, ix in zip(tensors, index):
        ix = ix.to(tensor.device)
        ok = (ix >= 0) & (ix < tensor.shape[0])
        present.append(ok)
        gathered.append(tensor[torch.where(ok, ix, 0)])
    shape = (-1,) + (1,) * (gathered[0].dim() - 1)
    dtype = torch.promote_types(gathered[0].dtype, torch.float32)
    total = sum(g.to(dtype) * p.view(shape) for g, p in zip(gathered, present))
    default = total / torch.stack(present).sum(0).clamp(min=1).view(shape)
    if base_index is not None:
        default = torch.where(
            present[base_index].view(shape), gathered[base_index].to(dtype), default
        )
    return [torch.where(p.view(shape), g, default.to(g.dtype)) for g, p in zip(gathered, present)]


def write_union_tokenizer(plan: VocabPlan, out_dir: Path) -> None:
    """Write tokenizer.json with plan.added appended as added tokens; check the ids agree."""
    from tokenizers import AddedToken, Tokenizer

    path = plan.tokenizer_dir / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"tokenizer_source 'union' needs {path} (a fast tokenizer)")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.add_tokens([AddedToken(t, normalized=True) for t in plan.added])
    got = {t: tokenizer.token_to_id(t) for t in plan.added}
    wrong = [t for t in plan.added if got[t] != plan.vocab[t]]
    if wrong:
        raise UserError(
            f"cannot append token {wrong[0]!r} to the tokenizer at id {plan.vocab[wrong[0]]}"
        )
    tokenizer.save(str(out_dir / "tokenizer.json"))
