"""Vocabularies: compare them, and align embedding rows as mergekit 0.1.5's tokenizer merge does.

A model's vocabulary is its tokenizer's tokens with ids below its config's vocab_size (tokens
beyond are unused padding and dropped, as mergekit strips them). The output vocabulary
(zoo.merge.tokenizer settings): "base" is the base's (else the donor's); a model is that
model's; "union" is the base's, then every regular token another model has, then every added
token any model has (with its flags), in source order (base first) and token-id order within a
model; then the tokens of `tokenizer.tokens` not yet in it. mergekit appends the union's tokens
in hash-map order, which changes from run to run; zoo's order is fixed (same inputs, same
bytes), the rows each token gets are mergekit's.

Each model's rows are permuted onto the output ids. A token a model lacks takes the default row:
the one model's row when only one has it, the base's when several have it and the base does,
else their mean, zeros when none has it. A configured token takes its source's row instead
(`force` gives it to the models that have the token too). Rows added by pad_to_multiple_of are
each model's mean row. Whenever a tokenizer setting is given the rows are rebuilt, as mergekit
does, even when all vocabularies agree; without one, differing vocabularies are refused.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError
from zoo.merge.io import read_json
from zoo.merge.tokenizer import SOURCES, TokenizerSettings, TokenRule, tokenizer_settings

if TYPE_CHECKING:
    import torch

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


def read_added(folder: Path) -> list[dict]:
    """Return tokenizer.json's added tokens (content, id and flags), by id; [] without one."""
    path = Path(folder) / "tokenizer.json"
    data = read_json(path) if path.is_file() else {}
    entries = data.get("added_tokens", []) if isinstance(data, dict) else []
    return sorted((e for e in entries if "content" in e and "id" in e), key=lambda e: e["id"])


# One configured row: (output row, source input or None for zeros, its row, force).
RowRule = tuple[int, int | None, int, bool]


@dataclass
class VocabPlan:
    """The output vocabulary and, per merge input, where each output row comes from."""

    vocab: dict[str, int]
    rows: int  # output rows: the vocabulary, padded to pad_to_multiple_of
    # per input: source row per vocabulary row, -1 where missing (int64s, as plain data: planning
    # a vocabulary needs no torch; permute_rows makes tensors of them)
    index: list[array]
    tokenizer_dir: Path  # whose tokenizer files the output keeps
    added: list[dict]  # added tokens appended to that tokenizer: content (+ flags)
    rules: tuple[RowRule, ...] = ()
    size: int | None = None  # the tokenizer source's vocab_size: its ids from here are dropped


def plan_vocab(
    vocabs: Sequence[dict[str, int] | None],
    labels: Sequence[str],
    tokenizer_dirs: Sequence[Path],
    *,
    donor: int,
    tokenizer_source: Any,
    tokenizer: Mapping[str, Any] | None = None,
    sizes: Sequence[int | None] | None = None,
    paths: Sequence[Path] | None = None,
) -> VocabPlan | None:
    """Return how to build the output vocabulary, or None when no tokenizer setting is given and
    the vocabularies agree (or cannot be read).

    sizes: each input's config vocab_size; paths: each input's folder (to find the models the
    settings name; default tokenizer_dirs). Raises UserError when vocabularies differ without a
    setting, or a setting cannot be met.
    """
    settings = tokenizer_settings(tokenizer_source, tokenizer, paths or tokenizer_dirs)
    known = [v for v in vocabs if v is not None]
    if settings is None:
        if not known or all(v == known[0] for v in known):
            return None
        first = next(i for i, v in enumerate(vocabs) if v is not None and v != vocabs[donor])
        raise UserError(
            f"the vocabulary of {labels[first]} differs from {labels[donor]}'s; "
            "set tokenizer_source to 'base' or 'union' to align embeddings"
        )
    if any(v is None for v in vocabs):
        missing = labels[[v is None for v in vocabs].index(True)]
        raise UserError(f"cannot read the vocabulary of {missing} (no tokenizer.json or vocab.txt)")
    sizes = list(sizes or [None] * len(vocabs))
    used = [_used(v, s) for v, s in zip(vocabs, sizes)]
    return _build(settings, used, sizes, labels, tokenizer_dirs, donor)


def _build(settings: TokenizerSettings, used, sizes, labels, dirs, donor) -> VocabPlan:
    src = donor if settings.source in SOURCES else int(settings.source)
    out, added = dict(used[src]), []
    if settings.source == "union":
        added = _union_tokens(used, sizes, dirs, src)
    added += [{"content": t} for t in dict.fromkeys(r.token for r in settings.tokens)]
    added = [a for a in _first_each(added) if a["content"] not in out]
    next_id = max(out.values(), default=-1) + 1
    out.update({a["content"]: next_id + i for i, a in enumerate(added)})
    real = max(out.values()) + 1
    pad = settings.pad_to_multiple_of
    rows = -(-real // pad) * pad if pad else real
    index = [_row_index(out, v, real) for v in used]
    rules = [_row_rule(r, out, used, index, sizes, labels) for r in settings.tokens]
    rules = tuple(r for r in rules if r is not None)
    return VocabPlan(out, rows, index, Path(dirs[src]), added, rules, sizes[src])


def _first_each(entries: list[dict]) -> list[dict]:
    """The first entry of each token (its place and flags), in order."""
    first: dict[str, dict] = {}
    for entry in entries:
        first.setdefault(entry["content"], entry)
    return list(first.values())


def _used(vocab: dict[str, int], size: int | None) -> dict[str, int]:
    return vocab if size is None else {t: i for t, i in vocab.items() if i < size}


def _union_tokens(used, sizes, dirs, src) -> list[dict]:
    """The union's new tokens: regular ones (source order, then id), then added ones."""
    order = [src] + [i for i in range(len(used)) if i != src]
    added = [
        [e for e in read_added(dirs[i]) if sizes[i] is None or e["id"] < sizes[i]] for i in order
    ]
    added_names = {e["content"] for entries in added for e in entries}
    seen, new = set(used[src]), []
    for i in order:
        for token, _ in sorted(used[i].items(), key=lambda kv: (kv[1], kv[0])):
            if token not in seen and token not in added_names:
                seen.add(token)
                new.append({"content": token})
    for entries in added:
        for entry in entries:
            if entry["content"] not in seen:
                seen.add(entry["content"])
                new.append({k: v for k, v in entry.items() if k != "id"})
    return new


def _row_index(out: dict[str, int], vocab: dict[str, int], rows: int) -> array:
    index = array("q", [-1]) * rows
    for token, new_id in out.items():
        if token in vocab:
            index[new_id] = vocab[token]
    return index


def _row_rule(rule: TokenRule, out, used, index, sizes, labels) -> RowRule | None:
    """The configured token's row, or None where no model needs it (mergekit's laziness)."""
    row, where = out[rule.token], f"tokenizer.tokens.{rule.token}"
    if not rule.force and all(int(ix[row]) >= 0 for ix in index):
        return None
    if rule.kind is None:
        need = "it is forced" if rule.force else "some models lack it"
        raise UserError(
            f"{where}.source: required ({need}): a model, {{kind: zero}} or model_token"
        )
    if rule.kind == "zero":
        return (row, None, 0, rule.force)
    model, label = int(rule.model), labels[rule.model]
    if rule.kind == "model":
        src_row = int(index[model][row])
        if src_row < 0:
            raise UserError(f"{where}.source: {label} has no token {rule.token!r}")
        return (row, model, src_row, rule.force)
    if rule.src_id is None:
        if rule.src_token not in used[model]:
            raise UserError(f"{where}.source.token: {label} has no token {rule.src_token!r}")
        return (row, model, used[model][rule.src_token], rule.force)
    size = sizes[model] if sizes[model] is not None else len(used[model])
    if not 0 <= rule.src_id < size:
        raise UserError(
            f"{where}.source.token_id: {rule.src_id} is outside {label}'s 0..{size - 1}"
        )
    return (row, model, rule.src_id, rule.force)


def permute_rows(
    tensors: Sequence[torch.Tensor], plan: VocabPlan, base_index: int | None
) -> list[torch.Tensor]:
    """Return each input's token rows in output order: missing rows take the default rule,
    configured rows their source's, padding rows the model's mean row.

    Source ids beyond a tensor's rows count as missing. Pure; inputs are not modified.
    """
    import torch  # tensors are torch's: torch is loaded already

    present, gathered = [], []
    for tensor, row_index in zip(tensors, plan.index):
        ix = _index_tensor(row_index, tensor.device)
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
    for row, model, src_row, force in plan.rules:
        default[row] = 0 if model is None else tensors[model][src_row].to(dtype)
        if force:
            for ok in present:
                ok[row] = False
    out = [torch.where(p.view(shape), g, default.to(g.dtype)) for g, p in zip(gathered, present)]
    return [_pad_rows(t, plan.rows) for t in out]


def _index_tensor(row_index: array, device: torch.device) -> torch.Tensor:
    """A copy of a row index as an int64 tensor on device."""
    import torch

    if not row_index:  # frombuffer refuses an empty buffer
        return torch.empty(0, dtype=torch.long, device=device)
    return torch.frombuffer(row_index, dtype=torch.long).to(device, copy=True)


def _pad_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """Append rows - len(tensor) copies of its mean row (mergekit's pad_to_multiple_of)."""
    import torch

    extra = rows - tensor.shape[0]
    if extra <= 0:
        return tensor
    mean = tensor.mean(0, keepdim=True).expand(extra, *tensor.shape[1:])
    return torch.cat([tensor, mean])
