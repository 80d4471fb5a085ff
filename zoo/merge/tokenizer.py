"""mergekit's tokenizer settings (tokenizer_source or the tokenizer: block), resolved to inputs.

The engine takes them as plain data whose model references are input folders; this module checks
them and turns each model into its position among the merge sources. Errors are one line naming
the field. Pure: nothing is read but the paths compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UserError

SOURCES = ("base", "union")
_KINDS = ("model_token", "zero")


@dataclass(frozen=True)
class TokenRule:
    """Where one configured token's embedding row comes from (mergekit TokenEmbeddingConfig).

    kind: "model" (that input's row of the same token), "model_token" (that input's row of
    another token or id), "zero", or None (no source: only allowed where no row is needed).
    """

    token: str
    kind: str | None = None
    model: int | None = None
    src_token: str | None = None
    src_id: int | None = None
    force: bool = False


@dataclass(frozen=True)
class TokenizerSettings:
    """The output vocabulary: source "base", "union" or an input position; extra tokens; padding."""

    source: str | int
    tokens: tuple[TokenRule, ...] = ()
    pad_to_multiple_of: int | None = None


def tokenizer_settings(
    tokenizer_source: Any, tokenizer: Mapping[str, Any] | None, paths: Sequence[Path]
) -> TokenizerSettings | None:
    """Return the settings for these sources (their folders), or None when neither is given.

    Raises UserError naming the field: both given, an unknown source or token kind, a model that
    is not one of the merge's inputs, a bad pad_to_multiple_of.
    """
    if tokenizer_source is not None and tokenizer is not None:
        raise UserError("give either tokenizer_source or tokenizer:, not both")
    if tokenizer is None:
        if tokenizer_source is None:
            return None
        return TokenizerSettings(_source(tokenizer_source, paths, "tokenizer_source"))
    if not isinstance(tokenizer, Mapping):
        raise UserError("tokenizer: expected a mapping with source, tokens, pad_to_multiple_of")
    unknown = sorted(set(tokenizer) - {"source", "tokens", "pad_to_multiple_of"})
    if unknown:
        raise UserError(
            f"tokenizer: unknown key {unknown[0]!r}; known: pad_to_multiple_of, source, tokens"
        )
    tokens = tokenizer.get("tokens") or {}
    if not isinstance(tokens, Mapping):
        raise UserError("tokenizer.tokens: expected a mapping of token -> {source, force}")
    return TokenizerSettings(
        _source(tokenizer.get("source", "union"), paths, "tokenizer.source"),
        tuple(_rule(str(t), cfg, paths) for t, cfg in tokens.items()),
        _pad(tokenizer.get("pad_to_multiple_of")),
    )


def _source(value: Any, paths: Sequence[Path], field: str) -> str | int:
    if value in SOURCES:
        return value
    if isinstance(value, (str, Path)):
        return model_position(value, paths, field)
    raise UserError(f"{field}: expected 'base', 'union' or a model of this merge, not {value!r}")


def model_position(ref: str | Path, paths: Sequence[Path], field: str) -> int:
    """Return the position of the source whose folder is ref; raise UserError naming field."""
    wanted = Path(ref).expanduser().resolve()
    for i, folder in enumerate(paths):
        if Path(folder).resolve() == wanted:
            return i
    raise UserError(
        f"{field}: {str(ref)!r} is not a model of this merge (give 'base', 'union' "
        "or one of its models)"
    )


def _rule(token: str, cfg: Any, paths: Sequence[Path]) -> TokenRule:
    where = f"tokenizer.tokens.{token}"
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, Mapping) or set(cfg) - {"source", "force"}:
        raise UserError(f"{where}: expected a mapping with source and force")
    force = cfg.get("force", False)
    if not isinstance(force, bool):
        raise UserError(f"{where}.force: expected true or false, not {force!r}")
    source = cfg.get("source")
    if source is None:
        return TokenRule(token, force=force)
    if isinstance(source, (str, Path)):
        return TokenRule(
            token, "model", model_position(source, paths, f"{where}.source"), force=force
        )
    if not isinstance(source, Mapping):
        raise UserError(
            f"{where}.source: expected a model, {{kind: zero}} or {{kind: model_token}}"
        )
    return _kind_rule(token, source, force, paths, f"{where}.source")


def _kind_rule(token, source: Mapping, force: bool, paths, where: str) -> TokenRule:
    kind = source.get("kind")
    if kind not in _KINDS:
        raise UserError(f"{where}.kind: expected 'model_token' or 'zero', not {kind!r}")
    if kind == "zero":
        if set(source) - {"kind"}:
            raise UserError(f"{where}: kind zero takes no other key")
        return TokenRule(token, "zero", force=force)
    if set(source) - {"kind", "model", "token", "token_id"} or "model" not in source:
        raise UserError(f"{where}: kind model_token takes model and one of token, token_id")
    src_token, src_id = source.get("token"), source.get("token_id")
    if (src_token is None) == (src_id is None):
        raise UserError(f"{where}: give exactly one of token and token_id")
    if src_id is not None and (isinstance(src_id, bool) or not isinstance(src_id, int)):
        raise UserError(f"{where}.token_id: expected an integer, not {src_id!r}")
    model = model_position(source["model"], paths, f"{where}.model")
    return TokenRule(token, "model_token", model, src_token, src_id, force)


def _pad(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"tokenizer.pad_to_multiple_of: expected a positive integer, not {value!r}")
    return value
