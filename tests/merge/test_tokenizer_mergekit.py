"""Tokenizer merges (tokenizer_source, the tokenizer: block, chat_template) against mergekit.

Tiny Qwen3 causal LMs whose tokenizers differ (two corpora, an extra special token, unused
padded ids); each recipe runs through `zoo merge` and mergekit's run_merge, and every output
token's rows are compared (mergekit's union orders new ids in hash-map order, so rows are
matched by token, and zoo's fixed order is checked on its own).
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests import tiny as tm
from zoo.cli import main
from zoo.merge.vocab import read_vocab

EMB, HEAD = "model.embed_tokens.weight", "lm_head.weight"


def _causal(folder, vocab, corpus, seed, added=(), unused=0, vocab_size=None):
    from transformers import AddedToken, AutoModelForCausalLM

    tok = tm.hf_tokenizer("qwen3", vocab, corpus)
    tok.add_tokens([AddedToken(a, special=True, normalized=False) for a in added], True)
    size = len(tok)
    tok.add_tokens([f"<UNUSED_{i}>" for i in range(unused)])  # ids past vocab_size
    cfg = tm.config("qwen3", tok, tie_word_embeddings=False, vocab_size=vocab_size or size)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("lms")
    return {
        "a": _causal(root / "a", 300, "docstrings", 1, unused=3),
        "b": _causal(root / "b", 320, "pydoc", 2, added=["<tool_call>", "</tool_call>"]),
        "c": _causal(root / "c", 300, "docstrings", 3),
        "padded": _causal(root / "padded", 300, "docstrings", 4, vocab_size=320),
    }


def _recipe(lms, method="linear", **extra):
    data = {
        "merge_method": method,
        "base_model": str(lms["a"]),
        "dtype": "float32",
        "models": [
            {"model": str(lms["a"]), "parameters": {"weight": 0.6}},
            {"model": str(lms["b"]), "parameters": {"weight": 0.4}},
        ],
    }
    return data | extra


def _run_both(data, tmp_path):
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    tmp_path.mkdir(parents=True, exist_ok=True)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    assert main(["merge", str(recipe), "--out", str(tmp_path / "zoo")]) == 0
    run_merge(
        MergeConfiguration.model_validate(data),
        str(tmp_path / "mk"),
        options=MergeOptions(write_model_card=False, quiet=True, device="cpu"),
    )
    return tmp_path / "zoo", tmp_path / "mk"


def _by_token(folder):
    """{token: (embedding row, lm_head row)} plus the padding rows past the vocabulary."""
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(str(folder)).get_vocab()
    state = tm.load_all(folder)
    rows = {t: (state[EMB][i], state[HEAD][i]) for t, i in vocab.items()}
    return rows, state[EMB][len(vocab) :], state


def _assert_same_as_mergekit(zoo_dir, mk_dir):
    ours, our_pad, our_state = _by_token(zoo_dir)
    ref, ref_pad, ref_state = _by_token(mk_dir)
    assert sorted(ours) == sorted(ref)
    worst = max(max((a - b).abs().max().item() for a, b in zip(ours[t], ref[t])) for t in ref)
    assert worst <= 1e-6, worst
    assert our_pad.shape == ref_pad.shape and torch.allclose(our_pad, ref_pad, atol=1e-6)
    for key in set(ref_state) - {EMB, HEAD}:
        assert (our_state[key] - ref_state[key]).abs().max() <= 1e-6, key
    for name in ("vocab_size", "num_hidden_layers"):
        assert (
            tm.read_json(zoo_dir / "config.json")[name]
            == tm.read_json(mk_dir / "config.json")[name]
        )


def _added(folder):
    data = json.loads((folder / "tokenizer.json").read_text())
    return {e["content"]: (e["special"], e["normalized"]) for e in data["added_tokens"]}


@pytest.mark.parametrize("source", ["base", "union", "b"])
def test_tokenizer_source_equals_mergekit(lms, tmp_path, source):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    value = str(lms[source]) if source in lms else source
    zoo_dir, mk_dir = _run_both(_recipe(lms, tokenizer_source=value), tmp_path)
    _assert_same_as_mergekit(zoo_dir, mk_dir)
    assert _added(zoo_dir) == _added(mk_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(zoo_dir))
    assert "<UNUSED_0>" not in tokenizer.get_vocab()  # past a's vocab_size: dropped
    model = AutoModelForCausalLM.from_pretrained(str(zoo_dir))
    ids = tokenizer("def read(path): <tool_call>", return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] == tm.read_json(zoo_dir / "config.json")["vocab_size"]


def test_slerp_union_equals_mergekit(lms, tmp_path):
    data = _recipe(lms, "slerp", tokenizer_source="union", parameters={"t": 0.3})
    for entry in data["models"]:
        del entry["parameters"]
    _assert_same_as_mergekit(*_run_both(data, tmp_path))


def test_padded_embeddings_shrink_to_the_tokenizer_as_in_mergekit(lms, tmp_path):
    """A tokenizer setting rebuilds the rows even when the vocabularies agree: 320 rows for a
    300-token tokenizer become 300, as mergekit writes them."""
    data = _recipe(lms, tokenizer_source="base")
    data["base_model"] = data["models"][0]["model"] = str(lms["padded"])
    data["models"][1]["model"] = str(lms["c"])
    zoo_dir, mk_dir = _run_both(data, tmp_path)
    _assert_same_as_mergekit(zoo_dir, mk_dir)
    assert tm.read_json(zoo_dir / "config.json")["vocab_size"] == 300


def test_lock_reruns_the_tokenizer_block(lms, tmp_path):
    block = {"source": "union", "tokens": {"<z>": {"source": {"kind": "zero"}}}}
    data = _recipe(lms, tokenizer=block, chat_template="chatml")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    assert main(["merge", str(recipe), "--out", str(tmp_path / "one"), "--quiet"]) == 0
    lock = tmp_path / "one" / "zoo.lock.json"
    assert json.loads(lock.read_text())["tokenizer"] == block
    assert main(["merge", "--lock", str(lock), "--out", str(tmp_path / "two"), "--quiet"]) == 0
    for name in ("model.safetensors", "tokenizer.json", "chat_template.jinja", "config.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_union_order_is_fixed(lms, tmp_path):
    """zoo's deliberate difference: the union's new ids in source then id order, not hash order."""
    zoo_dir, _ = _run_both(_recipe(lms, tokenizer_source="union"), tmp_path)
    va, vb, out = read_vocab(lms["a"]), read_vocab(lms["b"]), read_vocab(zoo_dir)
    base = {t: i for t, i in va.items() if i < 300}
    regular = [t for t, i in sorted(vb.items(), key=lambda kv: kv[1]) if i < 320 and t not in base]
    expected = regular + ["<tool_call>", "</tool_call>"]
    assert out == base | {t: 300 + i for i, t in enumerate(expected)}
    assert _added(zoo_dir)["<tool_call>"] == (True, False)


def test_tokenizer_block_equals_mergekit(lms, tmp_path, capsys):
    va, vb = read_vocab(lms["a"]), read_vocab(lms["b"])
    shared = sorted(t for t in set(va) & set(vb) if t.startswith("Ġ") and len(t) > 2)
    block = {
        "source": "union",
        "pad_to_multiple_of": 64,
        "tokens": {
            "<tool_call>": {"source": str(lms["b"]), "force": True},
            shared[0]: {"source": {"kind": "zero"}, "force": True},
            shared[1]: {"source": str(lms["b"]), "force": True},
            "<new_tok>": {"source": {"kind": "model_token", "model": str(lms["a"]), "token": "Ġa"}},
            "<by_id>": {"source": {"kind": "model_token", "model": str(lms["b"]), "token_id": 7}},
        },
    }
    zoo_dir, mk_dir = _run_both(_recipe(lms, "task_arithmetic", tokenizer=block), tmp_path)
    _assert_same_as_mergekit(zoo_dir, mk_dir)
    rows, pad, state = _by_token(zoo_dir)
    assert state[EMB].shape[0] % 64 == 0 and pad.shape[0] > 0
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "recipe.yaml"), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["vocab_rows"] == state[EMB].shape[0] and plan["tokenizer"] == block
    assert torch.equal(rows[shared[0]][0], torch.zeros_like(rows[shared[0]][0]))
    b = tm.load_all(lms["b"])
    assert torch.allclose(rows["<by_id>"][0], b[EMB][7], atol=1e-6)  # new: every model has b's


def test_chat_template_named_and_literal(lms, tmp_path):
    from transformers import AutoTokenizer

    for name, value, needle in [
        ("chatml", "chatml", "<|im_start|>"),
        ("literal", "{{ messages[0]['content'] }}!", "!"),
        (
            "long",
            "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{# " + "x" * 300 + " #}",
            "x" * 300,
        ),
    ]:
        zoo_dir, mk_dir = _run_both(
            _recipe(lms, tokenizer_source="base", chat_template=value), tmp_path / name
        )
        ours = AutoTokenizer.from_pretrained(str(zoo_dir))
        ref = AutoTokenizer.from_pretrained(str(mk_dir))
        assert ours.chat_template == ref.chat_template and needle in ours.chat_template
        chat = [{"role": "user", "content": "hi"}]
        assert ours.apply_chat_template(chat, tokenize=False) == ref.apply_chat_template(
            chat, tokenize=False
        )


def test_chat_template_auto_takes_the_inputs_template(lms, tmp_path):
    from transformers import AutoTokenizer

    data = _recipe(lms, chat_template="auto")
    data["models"][1]["model"] = str(lms["c"])
    for key in ("a", "c"):
        (lms[key] / "chat_template.jinja").write_text("{{ 'T:' + messages[0]['content'] }}")
    try:
        zoo_dir, _ = _run_both(data | {"tokenizer_source": "base"}, tmp_path)
    finally:
        for key in ("a", "c"):
            (lms[key] / "chat_template.jinja").unlink()
    tok = AutoTokenizer.from_pretrained(str(zoo_dir))
    assert tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == "T:x"


@pytest.mark.parametrize(
    "extra, needle",
    [
        (
            {"tokenizer_source": "union", "tokenizer": {"source": "base"}},
            "both tokenizer_source and tokenizer",
        ),
        (
            {"tokenizer_source": "/nowhere/model"},
            "tokenizer_source: '/nowhere/model' is not a model",
        ),
        ({"tokenizer": {"source": "/nowhere"}}, "tokenizer.source: '/nowhere' is not a model"),
        (
            {"tokenizer": {"tokens": {"x": {"source": {"kind": "bogus"}}}}},
            "tokenizer.tokens.x.source",
        ),
        ({"tokenizer": {"tokens": {"x": {"force": True}}}}, "tokenizer.tokens.x.source: required"),
        (
            {"tokenizer": {"tokens": {"<tool_call>": {"source": "A"}}}},
            "tokenizer.tokens.<tool_call>.source: 'A' is not a model",
        ),
        (
            {"chat_template": "chatmlx", "tokenizer_source": "base"},
            "chat_template: 'chatmlx' is neither",
        ),
    ],
)
def test_bad_tokenizer_settings_are_one_line(lms, tmp_path, capsys, extra, needle):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(lms, **extra)))
    code = main(["merge", str(recipe), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_union_keeps_a_transformers4_added_tokens_decoder_in_step(lms, tmp_path):
    """tokenizer_config.json's added_tokens_decoder (transformers 4 saves one) lists the new
    tokens too, so either loader sees the same vocabulary."""
    import shutil

    from transformers import AutoTokenizer

    from zoo.merge.engine import MergeInput, merge_folders

    base = tmp_path / "a4"
    shutil.copytree(lms["a"], base)
    config = tm.read_json(base / "tokenizer_config.json")
    config["added_tokens_decoder"] = {
        "0": {"content": "<|endoftext|>", "special": True, "normalized": False},
        "300": {"content": "<UNUSED_0>", "special": False, "normalized": True},
    }
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    inputs = [MergeInput(base, {"weight": 0.5}), MergeInput(lms["b"], {"weight": 0.5})]
    merge_folders(
        inputs, base, "linear", {}, tmp_path / "out", tokenizer_source="union", progress=False
    )
    out = read_vocab(tmp_path / "out")
    decoder = tm.read_json(tmp_path / "out" / "tokenizer_config.json")["added_tokens_decoder"]
    assert decoder[str(out["<tool_call>"])]["content"] == "<tool_call>"
    assert decoder[str(out["<tool_call>"])]["special"] is True
    assert "<UNUSED_0>" not in [e["content"] for e in decoder.values()]  # past vocab_size
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert tokenizer("<tool_call>", add_special_tokens=False).input_ids == [out["<tool_call>"]]
    assert len(tokenizer) == len(out)


def test_a_model_source_with_unused_ids_is_stripped_where_mergekit_fails(lms, tmp_path):
    """zoo's deliberate difference: tokenizer_source naming a model whose tokenizer has ids past
    its vocab_size drops them (as mergekit does for base and union); mergekit 0.1.5 raises."""
    from transformers import AutoTokenizer

    data = _recipe(lms, tokenizer_source=str(lms["a"]))
    data["base_model"] = str(lms["b"])
    with pytest.raises(KeyError):
        _run_both(data, tmp_path)
    assert (tmp_path / "zoo" / "model.safetensors").is_file()  # zoo's half ran first
    assert read_vocab(tmp_path / "zoo") == {
        t: i for t, i in read_vocab(lms["a"]).items() if i < 300
    }
    assert len(AutoTokenizer.from_pretrained(str(tmp_path / "zoo"))) == 300
    assert tm.load_all(tmp_path / "zoo")[EMB].shape[0] == 300
