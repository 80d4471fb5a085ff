"""Vocabulary alignment: refused by default; tokenizer_source "base" / "union" as in mergekit."""

from __future__ import annotations

import pytest
import torch
import yaml

from tests import tiny as tm
from zoo.errors import UserError
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.vocab import read_vocab

EMB = "embeddings.word_embeddings.weight"


@pytest.fixture(scope="module")
def small_vocab(tiny_root):
    """A BERT (+Dense) whose tokenizer has 300 tokens instead of 400 (other ids, one new token)."""
    return tm.build_st(tiny_root / "bert-300", "bert", seed=9, dense=True, vocab_size=300)


def _expected_rows(vocab_out, models, weights):
    """Per output token: each model's row if it has the token, else the mean of those that do."""
    rows = []
    for token, _ in sorted(vocab_out.items(), key=lambda kv: kv[1]):
        have = [(state[EMB][vocab[token]], w) for state, vocab, w in models if token in vocab]
        default = sum(r for r, _ in have) / len(have)
        rows.append(
            sum(
                w * (state[EMB][vocab[token]] if token in vocab else default)
                for state, vocab, w in models
            )
            / sum(weights)
        )
    return torch.stack(rows)


def test_vocabulary_mismatch_is_refused_without_tokenizer_source(
    bert_family, small_vocab, tmp_path
):
    with pytest.raises(UserError, match="tokenizer_source"):
        merge_folders(
            [bert_family["variants"][0], small_vocab],
            None,
            "linear",
            {"weight": 1.0},
            tmp_path / "out",
            progress=False,
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source", ["base", "union"])
def test_tokenizer_source_aligns_embedding_rows(bert_family, small_vocab, tmp_path, source):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    first = bert_family["variants"][0]
    weights = [0.6, 0.4]
    inputs = [
        MergeInput(first, {"weight": weights[0]}),
        MergeInput(small_vocab, {"weight": weights[1]}),
    ]
    merge_folders(
        inputs, None, "linear", {}, tmp_path / "out", tokenizer_source=source, progress=False
    )
    va, vb = read_vocab(first), read_vocab(small_vocab)
    out_vocab = read_vocab(tmp_path / "out")
    new = [t for t, _ in sorted(vb.items(), key=lambda kv: kv[1]) if t not in va]
    assert out_vocab == (
        va if source == "base" else va | {t: len(va) + i for i, t in enumerate(new)}
    )
    models = [(tm.load_all(first), va, weights[0]), (tm.load_all(small_vocab), vb, weights[1])]
    ours = tm.load_all(tmp_path / "out")
    assert torch.allclose(ours[EMB], _expected_rows(out_vocab, models, weights), atol=1e-6)
    assert tm.read_json(tmp_path / "out" / "config.json")["vocab_size"] == len(out_vocab)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert len(tokenizer) == len(out_vocab)
    for token in new if source == "union" else []:
        assert tokenizer.convert_tokens_to_ids(token) == out_vocab[token]
    emb = SentenceTransformer(str(tmp_path / "out"), device="cpu").encode(["read the file"])
    assert emb.shape == (1, 16)


def test_tokenizer_source_base_equals_mergekit_run_merge(families, tiny_root, tmp_path):
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    family = families("xlm-roberta")
    other = tm.build_st(tiny_root / "xlmr-300", "xlm-roberta", seed=9, vocab_size=300)
    models = [family["variants"][0], other]
    config = {
        "merge_method": "task_arithmetic",
        "base_model": str(family["base"]),
        "dtype": "float32",
        "tokenizer_source": "base",
        "models": [
            {"model": str(m), "parameters": {"weight": w}} for m, w in zip(models, [0.6, 0.4])
        ],
    }
    run_merge(
        MergeConfiguration.model_validate(yaml.safe_load(yaml.safe_dump(config))),
        str(tmp_path / "mk"),
        options=MergeOptions(copy_tokenizer=True, write_model_card=False, quiet=True, device="cpu"),
    )
    merge_folders(
        [MergeInput(m, {"weight": w}) for m, w in zip(models, [0.6, 0.4])],
        family["base"],
        "task_arithmetic",
        {},
        tmp_path / "zoo",
        tokenizer_source="base",
        dtype="float32",
        progress=False,
    )
    ours, ref = tm.load_all(tmp_path / "zoo"), tm.load_all(tmp_path / "mk")
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert (ours[key] - ref[key]).abs().max() <= 1e-6, key


def test_tokenizer_block_on_sentence_transformers(bert_family, small_vocab, tmp_path):
    """mergekit-yaml cannot merge these folders; zoo builds the block's rows and keeps the ST."""
    from sentence_transformers import SentenceTransformer

    first = bert_family["variants"][0]
    va, vb = read_vocab(first), read_vocab(small_vocab)
    only_a = next(t for t, _ in sorted(va.items(), key=lambda kv: kv[1]) if t not in vb)
    block = {
        "source": "union",
        "pad_to_multiple_of": 32,
        "tokens": {
            "[CLS]": {"source": {"kind": "zero"}, "force": True},
            only_a: {"source": str(small_vocab)},
        },
    }
    inputs = [MergeInput(first, {"weight": 0.5}), MergeInput(small_vocab, {"weight": 0.5})]
    with pytest.raises(UserError, match=f"tokenizer.tokens.{only_a}.source: model 2"):
        merge_folders(inputs, None, "linear", {}, tmp_path / "bad", tokenizer=block, progress=False)
    del block["tokens"][only_a]
    merge_folders(inputs, None, "linear", {}, tmp_path / "out", tokenizer=block, progress=False)
    out = read_vocab(tmp_path / "out")
    emb = tm.load_all(tmp_path / "out")[EMB]
    assert emb.shape[0] == -(-len(out) // 32) * 32 and emb.shape[0] > len(out)
    assert torch.equal(emb[out["[CLS]"]], torch.zeros_like(emb[0]))
    assert torch.allclose(
        emb[len(out) :], emb[: len(out)].mean(0).expand(emb.shape[0] - len(out), -1)
    )
    assert tm.read_json(tmp_path / "out" / "config.json")["vocab_size"] == emb.shape[0]
    st = SentenceTransformer(str(tmp_path / "out"), device="cpu")
    assert st.encode([f"read the {only_a}"]).shape == (1, 16)


def test_a_union_token_named_in_tokens_keeps_its_union_place(tmp_path):
    """The union's order holds (base tokens, then the others' by model and id); naming one of
    them under tokenizer.tokens changes its row's source, not its id."""
    from zoo.merge.vocab import plan_vocab

    dirs = [tmp_path / "a", tmp_path / "b"]
    vocabs = [{"x": 0}, {"x": 0, "y": 1, "z": 2}]
    union = plan_vocab(vocabs, ["a", "b"], dirs, donor=0, tokenizer_source="union")
    zero = {"source": {"kind": "zero"}}
    block = {"source": "union", "tokens": {"y": zero, "w": zero}}
    named = plan_vocab(vocabs, ["a", "b"], dirs, donor=0, tokenizer_source=None, tokenizer=block)
    assert union.vocab == {"x": 0, "y": 1, "z": 2}
    assert named.vocab == {"x": 0, "y": 1, "z": 2, "w": 3}
