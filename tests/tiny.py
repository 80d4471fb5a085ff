"""The tiny models of every test package: random sentence-transformers folders built from config.

Nothing is downloaded. Each architecture gets a tokenizer built here with `tokenizers`
(WordPiece from word counts for BERT and DistilBERT, byte-level BPE trained for RoBERTa, XLM-R
and Qwen3) on a few hundred lines of text shipped with CPython (stdlib docstrings, or pydoc's
help topics), a 2-layer, 32-wide model, and the usual ST modules (Pooling, optional Dense,
Normalize). Weights are random but seeded, so two builds with the same arguments are identical,
in any process. `perturb` makes "fine-tuned" variants by adding seeded noise to chosen tensors,
`family` a base and its variants. The session fixtures built from these live in tests/conftest.py.
"""

from __future__ import annotations

import inspect
import json
import shutil
from functools import cache, lru_cache
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

ARCHS = ("bert", "roberta", "xlm-roberta", "distilbert", "qwen3")
POOLING = {
    "bert": "cls",
    "roberta": "mean",
    "xlm-roberta": "cls",
    "distilbert": "mean",
    "qwen3": "lasttoken",
}
_SPECIAL = {
    "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "bpe": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    "qwen": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
}


@lru_cache(maxsize=1)
def docstring_corpus(lines: int = 400) -> tuple[str, ...]:
    """Return the first `lines` non-empty docstring lines of some stdlib modules (deterministic)."""
    import collections
    import json as json_module
    import pathlib
    import textwrap

    out: list[str] = []
    for module in (json_module, pathlib, textwrap, collections, inspect):
        for name, obj in sorted(vars(module).items()):
            doc = None if name.startswith("_") else inspect.getdoc(obj)
            out.extend(line.strip() for line in (doc or "").splitlines() if line.strip())
    return tuple(out[:lines])


def pydoc_corpus(limit: int = 400) -> list[str]:
    """The first `limit` lines of more than 3 words of Python's own help topics (pydoc_data)."""
    from pydoc_data.topics import topics

    lines = [
        ln.strip() for text in topics.values() for ln in text.splitlines() if len(ln.split()) > 3
    ]
    return lines[:limit]


CORPORA = {"docstrings": docstring_corpus, "pydoc": pydoc_corpus}
# The training tests' base: wider, mean-pooled, a larger vocabulary learnt from pydoc's topics.
TRAIN_BERT = dict(
    pooling="mean",
    vocab_size=1000,
    corpus="pydoc",
    max_seq_length=64,
    hidden_size=64,
    intermediate_size=128,
    max_position_embeddings=128,
)


def _wordpiece_vocab(lines, vocab_size: int, special: list[str], norm, pre) -> dict[str, int]:
    """A deterministic WordPiece vocabulary: the specials, every character (alone and as a
    ##continuation), then the most frequent words (ties in alphabetical order)."""
    from collections import Counter

    words = Counter(w for line in lines for w, _ in pre.pre_tokenize_str(norm.normalize_str(line)))
    chars = sorted({c for w in words for c in w})
    pieces = dict.fromkeys([*special, *chars, *(f"##{c}" for c in chars)])
    for word, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(pieces) >= vocab_size:
            break
        pieces.setdefault(word)
    return {p: i for i, p in enumerate(list(pieces)[:vocab_size])}


@cache
def _tokenizer_json(kind: str, vocab_size: int, corpus: str) -> str:
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    special = _SPECIAL[kind]
    if kind == "wordpiece":
        # Not WordPieceTrainer: its vocabulary changes from process to process (ties broken in
        # hash-map order), so models built in two sessions would differ.
        norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
        vocab = _wordpiece_vocab(CORPORA[corpus](), vocab_size, special, norm, pre)
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
        tok.normalizer, tok.pre_tokenizer, tok.decoder = norm, pre, decoders.WordPiece()
    else:
        tok = Tokenizer(models.BPE(unk_token=None if kind == "qwen" else "<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=kind == "bpe")
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        tok.train_from_iterator(CORPORA[corpus](), trainer)
    if kind != "qwen":
        cls, sep = special[2:4] if kind == "wordpiece" else (special[0], special[2])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
        )
    return tok.to_str()


def hf_tokenizer(arch: str, vocab_size: int = 400, corpus: str = "docstrings"):
    """Return a transformers fast tokenizer for arch, trained on one of CORPORA."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    kind = {"bert": "wordpiece", "distilbert": "wordpiece", "qwen3": "qwen"}.get(arch, "bpe")
    tok = Tokenizer.from_str(_tokenizer_json(kind, vocab_size, corpus))
    if kind == "wordpiece":
        names = dict(
            pad_token="[PAD]",
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    elif kind == "bpe":
        names = dict(
            bos_token="<s>",
            pad_token="<pad>",
            eos_token="</s>",
            unk_token="<unk>",
            mask_token="<mask>",
            cls_token="<s>",
            sep_token="</s>",
        )
    else:
        names = dict(pad_token="<|endoftext|>", eos_token="<|endoftext|>")
    inputs = (
        ["input_ids", "token_type_ids", "attention_mask"]
        if arch == "bert"
        else ["input_ids", "attention_mask"]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_input_names=inputs, **names)


def _config_kwargs(arch: str, tokenizer) -> dict:
    """The tiny settings of arch: 2 layers, hidden 32, 2 heads, the tokenizer's vocabulary."""
    vocab, pad = len(tokenizer), tokenizer.pad_token_id
    if arch == "distilbert":
        return dict(
            vocab_size=vocab,
            dim=32,
            n_layers=2,
            n_heads=2,
            hidden_dim=64,
            max_position_embeddings=64,
            pad_token_id=pad,
        )
    if arch == "qwen3":
        return dict(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=128,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.eos_token_id,
        )
    return dict(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=66,
        pad_token_id=pad,
        type_vocab_size=2 if arch == "bert" else 1,
    )


def config(arch: str, tokenizer, **overrides):
    """Return a tiny transformers config for arch (2 layers, hidden 32, 2 heads) + overrides."""
    import transformers as tf

    cls = {
        "bert": tf.BertConfig,
        "roberta": tf.RobertaConfig,
        "xlm-roberta": tf.XLMRobertaConfig,
        "distilbert": tf.DistilBertConfig,
        "qwen3": tf.Qwen3Config,
    }[arch]
    return cls(**(_config_kwargs(arch, tokenizer) | overrides))


def build_st(
    folder: Path,
    arch: str,
    *,
    seed: int = 0,
    dense: bool = False,
    normalize: bool = True,
    pooling: str | None = None,
    vocab_size: int = 400,
    corpus: str = "docstrings",
    max_seq_length: int = 48,
    **overrides,
) -> Path:
    """Write a tiny random ST model folder for arch; returns folder. Deterministic given seed.

    `overrides` go to the transformers config (hidden_size=64, ...); TRAIN_BERT is one such set.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from transformers import AutoModel

    folder = Path(folder)
    tokenizer = hf_tokenizer(arch, vocab_size, corpus)
    cfg = config(arch, tokenizer, **overrides)
    torch.manual_seed(seed)
    model = AutoModel.from_config(cfg)
    hf_dir = folder.parent / f".{folder.name}-hf"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    width = cfg.dim if arch == "distilbert" else cfg.hidden_size
    modules = [Transformer(str(hf_dir), max_seq_length=max_seq_length)]
    modules += _head(width, pooling or POOLING[arch], seed, dense=dense, normalize=normalize)
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    shutil.rmtree(hf_dir)
    (folder / "README.md").unlink(missing_ok=True)
    return folder


def _head(width: int, pooling: str, seed: int, *, dense: bool, normalize: bool) -> list:
    """The ST modules after the transformer: Pooling, a seeded Dense(width, 16), Normalize."""
    from sentence_transformers.base.modules import Dense, Normalize
    from sentence_transformers.sentence_transformer.modules import Pooling

    modules = [Pooling(width, pooling)]
    if dense:
        torch.manual_seed(seed + 1)
        modules.append(Dense(width, 16))
    if normalize:
        modules.append(Normalize())
    return modules


def weight_files(folder: Path) -> list[Path]:
    """Return every model.safetensors under folder (root and module folders)."""
    return sorted(Path(folder).rglob("model.safetensors"))


def load_all(folder: Path) -> dict[str, torch.Tensor]:
    """Return every tensor of an ST folder keyed like zoo does ("name", "2_Dense/name")."""
    out = {}
    for file in weight_files(folder):
        module = file.parent.relative_to(folder).as_posix()
        prefix = "" if module == "." else module + "/"
        with safe_open(str(file), "pt") as f:
            out.update({prefix + k: f.get_tensor(k) for k in f.keys()})
    return out


def perturb(
    src: Path,
    dst: Path,
    seed: int,
    *,
    scale: float = 0.02,
    keep: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
) -> Path:
    """Copy an ST folder adding N(0, scale^2) noise to its float tensors (except `keep`)."""
    shutil.copytree(src, dst)
    gen = torch.Generator().manual_seed(seed)
    for file in weight_files(dst):
        with safe_open(str(file), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = f.metadata()
        for name, t in sorted(tensors.items()):
            if t.is_floating_point() and name not in keep and (only is None or name in only):
                tensors[name] = t + scale * torch.randn(t.shape, generator=gen, dtype=t.dtype)
        save_file(tensors, str(file), metadata=meta)
    return Path(dst)


def family(root: Path, arch: str, n: int = 3, *, keep: tuple[str, ...] = (), **build) -> dict:
    """Build a base ST model and n perturbed variants under root; return their paths."""
    root = Path(root)
    base = build_st(root / f"{arch}-base", arch, **build)
    variants = [perturb(base, root / f"{arch}-ft{i}", seed=100 + i, keep=keep) for i in range(n)]
    return {"base": base, "variants": variants}


def rewrite_root(
    src: Path, dst: Path, *, prefix: str = "", drop_modules: bool = False, pickle: bool = False
) -> Path:
    """Copy a folder, renaming root tensors with prefix; optionally as plain HF or pickle-only."""
    shutil.copytree(src, dst)
    file = Path(dst) / "model.safetensors"
    with safe_open(str(file), "pt") as f:
        tensors = {prefix + k: f.get_tensor(k) for k in f.keys()}
    file.unlink()
    if pickle:
        torch.save(tensors, Path(dst) / "pytorch_model.bin")
    else:
        save_file(tensors, str(file), metadata={"format": "pt"})
    if drop_modules:
        for extra in (
            "modules.json",
            "sentence_bert_config.json",
            "config_sentence_transformers.json",
        ):
            (Path(dst) / extra).unlink(missing_ok=True)
        for sub in Path(dst).iterdir():
            if sub.is_dir():
                shutil.rmtree(sub)
    return Path(dst)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def lora_adapter(base, folder, seed, **lora):
    """Save a peft LoRA adapter over base with random (non-zero) B matrices into folder."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModel.from_pretrained(str(base)),
        LoraConfig(init_lora_weights=False, **({"r": 4, "lora_alpha": 8} | lora)),
    )
    with torch.no_grad():  # random B (peft would start it at zero); "trained" saved modules
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                p.normal_(0, 0.05)
            elif "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(str(folder))
    return folder


# Decoder LLMs as the community's recipes name them: plain transformers CausalLM folders (no ST
# modules), 4+ layers so slices have something to cut, a byte-level BPE tokenizer of ~400 tokens.
DECODERS = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3")
ENCODERS = ("bert", "roberta", "xlm-roberta")


def decoder_config(arch: str, vocab_size: int, layers: int = 4, **overrides):
    """Return a tiny transformers config of a decoder arch: hidden 32, 4 heads (2 kv), head 8."""
    import transformers as tf

    cls = {
        "llama": tf.LlamaConfig,
        "mistral": tf.MistralConfig,
        "qwen2": tf.Qwen2Config,
        "qwen3": tf.Qwen3Config,
        "gemma2": tf.Gemma2Config,
        "gemma3": tf.Gemma3TextConfig,
        "phi3": tf.Phi3Config,
    }[arch]
    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    if arch != "phi3":
        common["head_dim"] = 8
    if arch in ("gemma2", "gemma3"):
        common |= dict(sliding_window=16, query_pre_attn_scalar=8)
    if arch == "gemma3":
        common["sliding_window_pattern"] = 2
    return cls(**(common | overrides))


def decoder_tokenizer(vocab_size: int = 400, extra: tuple[str, ...] = ()):
    """A byte-level BPE fast tokenizer (<s>=0, <pad>=1, </s>=2) plus `extra` added tokens."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(_tokenizer_json("bpe", vocab_size, "docstrings"))
    tok.post_processor = None  # a decoder adds no </s> after each text
    names = dict(bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **names)
    fast.add_tokens(list(extra))
    return fast


def build_decoder(
    folder: Path, arch: str, *, layers: int = 4, seed: int = 0, extra_tokens=(), **overrides
) -> Path:
    """Write a tiny random CausalLM folder of arch (config, model.safetensors, tokenizer).

    Deterministic given the arguments. `extra_tokens` are added to the tokenizer (and the
    embedding rows with them), making a model with a larger vocabulary than its base.
    """
    from transformers import AutoModelForCausalLM

    tokenizer = decoder_tokenizer(extra=tuple(extra_tokens))
    ids = dict(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    cfg = decoder_config(arch, len(tokenizer), layers, **(ids | overrides))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def causal_lora_adapter(base: Path, folder: Path, seed: int, **lora) -> Path:
    """Save a peft LoRA adapter (q_proj/v_proj, or Phi-3's qkv_proj) over a CausalLM base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    targets = ["qkv_proj"] if model.config.model_type == "phi3" else ["q_proj", "v_proj"]
    peft = get_peft_model(
        model,
        LoraConfig(
            init_lora_weights=False,
            **({"r": 4, "lora_alpha": 8, "target_modules": targets} | lora),
        ),
    )
    with torch.no_grad():  # random B (peft would start it at zero)
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    peft.save_pretrained(str(folder))
    return Path(folder)


def peft_merged(base: Path, adapter: Path, causal: bool = False) -> dict[str, torch.Tensor]:
    """The state dict of base with the peft adapter merged in (peft's merge_and_unload)."""
    from peft import PeftModel
    from transformers import AutoModel, AutoModelForCausalLM

    auto = AutoModelForCausalLM if causal else AutoModel
    model = PeftModel.from_pretrained(auto.from_pretrained(str(base)), str(adapter))
    return {k: v.detach().clone() for k, v in model.merge_and_unload().state_dict().items()}


def root_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """The transformer's own tensors of a model folder (no later sentence-transformers module)."""
    return {k: v for k, v in load_all(folder).items() if "/" not in k}


def assert_close(ours: dict, ref: dict, tol: float = 1e-6) -> None:
    """Same tensor names, every tensor within tol (compared in float32)."""
    assert sorted(ours) == sorted(ref)
    for key, value in ours.items():
        assert (value.float() - ref[key].float()).abs().max() <= tol, key
