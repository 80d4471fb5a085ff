"""A tiny random BERT sentence-transformers folder for the training tests (built in ~1 s).

The WordPiece vocabulary is trained locally on Python's own help text (pydoc_data), so nothing is
downloaded; the weights are random but seeded, so two builds with the same seed are identical.
"""

from __future__ import annotations

from pathlib import Path

HIDDEN = 64


def _corpus(limit: int = 400) -> list[str]:
    """A few hundred lines of English-ish technical text shipped with CPython."""
    from pydoc_data.topics import topics

    lines = [
        ln.strip() for text in topics.values() for ln in text.splitlines() if len(ln.split()) > 3
    ]
    return lines[:limit]


def _tokenizer(vocab_size: int = 1000):
    """A BERT-style WordPiece fast tokenizer trained on _corpus()."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    tok.train_from_iterator(_corpus(), trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return BertTokenizerFast(tokenizer_object=tok, model_max_length=128)


def build_tiny_bert(out: Path, *, seed: int = 0) -> Path:
    """Write a 2-layer, 64-wide BERT + mean pooling + Normalize as a sentence-transformers dir."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    out = Path(out)
    hf_dir = out.parent / f"{out.name}-hf"
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    modules = [Transformer(str(hf_dir), max_seq_length=64), Pooling(HIDDEN, "mean"), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


def pairs(n: int, *, topic: str, offset: int = 0) -> dict[str, list[str]]:
    """n (anchor, positive) rows; the positive repeats the anchor's key words (easy to learn)."""
    lines = _corpus(2000)[offset : offset + n]
    return {
        "anchor": [f"{topic} {ln[:60]}" for ln in lines],
        "positive": [f"{ln[:40]} about {topic}" for ln in lines],
    }


def toy_sets() -> dict[str, object]:
    """Three small datasets covering every input shape: plain pairs, hard negatives, groups."""
    from datasets import Dataset

    neg = pairs(48, topic="beta", offset=100)
    return {
        "alpha": Dataset.from_dict(pairs(80, topic="alpha")),
        "beta": Dataset.from_dict(
            {**neg, "negative": [f"unrelated {t}" for t in neg["positive"][::-1]]}
        ),
        "gamma": Dataset.from_dict(
            {**pairs(40, topic="gamma", offset=200), "group": ["g1", "g2", "g3", "g4"] * 10}
        ),
    }
