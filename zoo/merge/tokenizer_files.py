"""The output's tokenizer files: the merged vocabulary and the chat template.

write_tokenizer rebuilds tokenizer.json for a VocabPlan (unused ids dropped, tokens appended as
added tokens with their flags) and keeps tokenizer_config.json's added_tokens_decoder (saved by
transformers 4) in step. chat_template_text resolves mergekit's `chat_template:` (a name of a
template mergekit ships, "auto", or a literal Jinja template); write_chat_template saves it as
chat_template.jinja, the file transformers 5 saves and reads.
"""

from __future__ import annotations

import importlib.resources
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.merge.io import read_json
from zoo.merge.vocab import VocabPlan

_FLAGS = ("single_word", "lstrip", "rstrip", "normalized", "special")
_TEMPLATES = "mergekit._data.chat_templates"


def write_tokenizer(plan: VocabPlan, out_dir: Path) -> None:
    """Write out_dir/tokenizer.json for plan (and its tokenizer_config.json's added tokens) when
    it differs from the source's; check every token lands on its planned id."""
    path = plan.tokenizer_dir / "tokenizer.json"
    data = read_json(path) if path.is_file() else None
    dropped = _unused(data, plan.size) if data else []
    if not plan.added and not dropped:
        return
    if data is None:
        raise UserError(f"tokenizer: adding tokens needs {path} (a fast tokenizer)")
    tokenizer = _tokenizer(_strip(data, set(dropped), plan.size))
    for entry in plan.added:
        flags = {k: entry[k] for k in _FLAGS if k in entry}
        flags.setdefault("normalized", not flags.get("special", False))
        token = _added_token(entry["content"], flags)
        (tokenizer.add_special_tokens if flags.get("special") else tokenizer.add_tokens)([token])
    for entry in plan.added:
        got = tokenizer.token_to_id(entry["content"])
        if got != plan.vocab[entry["content"]]:
            raise UserError(
                f"tokenizer: cannot add token {entry['content']!r} at id "
                f"{plan.vocab[entry['content']]} (the tokenizer put it at {got})"
            )
    tokenizer.save(str(out_dir / "tokenizer.json"))
    _sync_config(out_dir / "tokenizer_config.json", json.loads(tokenizer.to_str()))


def _tokenizer(data: dict):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(data))


def _added_token(content: str, flags: dict):
    from tokenizers import AddedToken

    return AddedToken(content, **flags)


def _unused(data: dict, size: int | None) -> list[str]:
    """The tokens of a tokenizer.json whose ids are at or past size (unused by the model)."""
    if size is None:
        return []
    vocab = data.get("model", {}).get("vocab")
    ids = vocab.items() if isinstance(vocab, dict) else []
    added = [(e["content"], e["id"]) for e in data.get("added_tokens", [])]
    return [t for t, i in list(ids) + added if i >= size]


def _strip(data: dict, dropped: set[str], size: int | None) -> dict:
    """Return a copy of a BPE tokenizer.json without the dropped tokens (as mergekit strips)."""
    if not dropped:
        return data
    model = dict(data["model"])
    if model.get("type") != "BPE":
        raise UserError(
            f"tokenizer: the {model.get('type')} tokenizer has tokens past vocab_size {size}; "
            "only BPE tokenizers can drop them"
        )
    model["vocab"] = {t: i for t, i in model["vocab"].items() if t not in dropped}
    model["merges"] = [m for m in model.get("merges", []) if not set(_pair(m)) & dropped]
    added = [e for e in data.get("added_tokens", []) if e["id"] < size]
    return {**data, "model": model, "added_tokens": added}


def _pair(merge: Any) -> list[str]:
    return merge.split(" ") if isinstance(merge, str) else list(merge)


def _sync_config(path: Path, tokenizer: dict) -> None:
    """Rewrite tokenizer_config.json's added_tokens_decoder (when it has one) from tokenizer."""
    if not path.is_file():
        return
    config = read_json(path)
    if not isinstance(config, dict) or "added_tokens_decoder" not in config:
        return
    config["added_tokens_decoder"] = {
        str(e["id"]): {k: e[k] for k in ("content", *_FLAGS) if k in e}
        for e in tokenizer.get("added_tokens", [])
    }
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def template_names() -> list[str]:
    """The chat templates mergekit ships, by name."""
    folder = importlib.resources.files(_TEMPLATES)
    return sorted(
        p.name.removesuffix(".jinja") for p in folder.iterdir() if p.name.endswith(".jinja")
    )


def chat_template_text(value: str | None, tokenizer_dirs: Sequence[Path]) -> str | None:
    """Return the template `chat_template:` means, or None (not set; "auto" and no input has one).

    A name of one of mergekit's templates reads it; "auto" takes the template most inputs carry
    (ties: the first in tokenizer_dirs' order); anything else must look like a Jinja template.
    Raises UserError naming the field otherwise.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserError(f"chat_template: expected a template name or text, not {value!r}")
    if value == "auto":
        found = [t for t in (_template_of(Path(d)) for d in tokenizer_dirs) if t]
        return Counter(found).most_common(1)[0][0] if found else None
    if len(value) < 256 and "\n" not in value and "{" not in value:
        if value in template_names():
            return (importlib.resources.files(_TEMPLATES) / f"{value}.jinja").read_text()
    if len(value) < 20 or "{" not in value:
        raise UserError(
            f"chat_template: {value!r} is neither a template name ({', '.join(template_names())}, "
            "auto) nor a Jinja template"
        )
    return value


def _template_of(folder: Path) -> str | None:
    """A model folder's chat template: chat_template.jinja, else tokenizer_config.json's."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8").strip() or None
    config = (
        read_json(folder / "tokenizer_config.json")
        if (folder / "tokenizer_config.json").is_file()
        else {}
    )
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):  # [{name, template}, ...]: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template.strip() if isinstance(template, str) and template.strip() else None


def write_chat_template(out_dir: Path, template: str) -> None:
    """Save template as out_dir/chat_template.jinja; drop tokenizer_config.json's own, which
    would otherwise compete with it."""
    path = out_dir / "chat_template.jinja"
    path.write_text(template, encoding="utf-8")
    config_path = out_dir / "tokenizer_config.json"
    config = read_json(config_path) if config_path.is_file() else None
    if isinstance(config, dict) and "chat_template" in config:
        del config["chat_template"]
        config_path.write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
