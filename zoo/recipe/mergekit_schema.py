"""mergekit 0.1.5's recipe language (MergeConfiguration and its parts), as zoo's own models.

Reading a recipe then imports no mergekit: `mergekit.config` pulls in peft, transformers and
accelerate (about 4 s) only to declare these shapes. The models accept what mergekit accepts and
refuse what it refuses, key for key (tests/recipe/test_mergekit_schema.py compares the key sets
and a table of recipes with mergekit's own classes). Like mergekit's, they ignore unknown keys:
zoo's strict key checks (zoo.recipe.schema) run before them, with did-you-mean hints.
Where mergekit raises RuntimeError from a validator, these raise ValueError, so pydantic reports
every problem together, each at its field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, model_validator

from zoo.merge.settings import ParameterSetting

Parameters = dict[str, ParameterSetting] | None


class ModelPath(BaseModel, frozen=True):
    """A Hub repo id or a local folder, optionally `@revision` (one '@' at most)."""

    path: str
    revision: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        path, at, revision = value.partition("@")
        if "@" in revision:
            raise ValueError(f"invalid model path, more than one '@': {value!r}")
        return {"path": path, "revision": revision} if at else {"path": value}


class ModelReference(BaseModel, frozen=True):
    """A model, optionally `+` a LoRA adapter folded into it (one '+' at most)."""

    model: ModelPath
    lora: ModelPath | None = None
    override_architecture: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parts = value.split("+")
        if len(parts) > 2:
            raise ValueError(f"expected MODEL or MODEL+LORA (one '+'): {value!r}")
        return {"model": parts[0], "lora": parts[1]} if len(parts) == 2 else {"model": value}


class ModelTokenEmbedding(BaseModel, frozen=True):
    """A token's embedding taken from one model's row, by id or by token text (one of them)."""

    kind: Literal["model_token"]
    model: ModelReference
    token_id: int | None = None
    token: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> ModelTokenEmbedding:
        if (self.token_id is None) == (self.token is None):
            raise ValueError("give exactly one of token_id or token")
        return self


class ZeroEmbedding(BaseModel, frozen=True):
    """A token whose embedding is all zeros."""

    kind: Literal["zero"]


class TokenEmbeddingConfig(BaseModel, frozen=True):
    """Where one token's embedding comes from."""

    source: ModelTokenEmbedding | ZeroEmbedding | ModelReference | None = None
    force: bool = False


class TokenizerConfig(BaseModel, frozen=True):
    """The `tokenizer:` block: the output vocabulary and chosen token embeddings."""

    source: ModelReference | Literal["union"] | Literal["base"] = "union"
    tokens: dict[str, TokenEmbeddingConfig] | None = None
    pad_to_multiple_of: int | None = None


class InputSliceDefinition(BaseModel):
    """One source of a slice: a model's layers [start, end)."""

    model: ModelReference
    layer_range: tuple[int, int]
    parameters: Parameters = None


class InputModelDefinition(BaseModel):
    """One `models:` entry."""

    model: ModelReference
    parameters: Parameters = None


class OutputSliceDefinition(BaseModel):
    """One `slices:` entry: its sources merged into one run of output layers."""

    sources: list[InputSliceDefinition]
    base_model: ModelReference | None = None
    residual_weight: float | None = None
    parameters: Parameters = None


class OutputModuleDefinition(BaseModel):
    """One `modules:` entry: slices or models, exactly one of them."""

    slices: list[OutputSliceDefinition] | None = None
    models: list[InputModelDefinition] | None = None
    parameters: Parameters = None

    @model_validator(mode="after")
    def _one_input_form(self) -> OutputModuleDefinition:
        if bool(self.slices) == bool(self.models):
            raise ValueError("a module gives either slices or models (one of them)")
        return self


class MergeConfiguration(BaseModel):
    """A whole mergekit recipe (the `zoo:` block aside)."""

    modules: dict[str, OutputModuleDefinition] | None = None
    slices: list[OutputSliceDefinition] | None = None
    models: list[InputModelDefinition] | None = None
    merge_method: str
    base_model: ModelReference | None = None
    dtype: str | None = None
    tokenizer_source: Literal["union"] | Literal["base"] | ModelReference | None = None
    tokenizer: TokenizerConfig | None = None
    chat_template: str | None = None
    out_dtype: str | None = None
    parameters: Parameters = None

    @model_validator(mode="after")
    def _one_input_form(self) -> MergeConfiguration:
        if sum(bool(form) for form in (self.modules, self.slices, self.models)) != 1:
            raise ValueError("give exactly one of models, slices or modules")
        return self

    @model_validator(mode="after")
    def _one_tokenizer_setting(self) -> MergeConfiguration:
        if self.tokenizer_source and self.tokenizer:
            raise ValueError("cannot give both tokenizer_source and tokenizer")
        return self
