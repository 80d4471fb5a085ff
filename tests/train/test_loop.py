"""The training loop on a tiny BERT: batches, prompts, loss, saving and reloading (full, LoRA)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from tests.train.tiny import toy_sets
from zoo.errors import UserError
from zoo.train import TrainConfig, fit, train
from zoo.train.inputs import prepare
from zoo.train.loop import RESULT_FILE
from zoo.train.model import load_model, make_loss
from zoo.train.sampler import plan_batches
from zoo.train.trainer import ClockCallback, build_trainer, training_args

TEXTS = ["how to open a file", "the class statement", "exceptions are raised"]


def _config(base, **kw):
    settings = dict(
        base=str(base),
        batch_size=16,
        learning_rate=1e-3,
        max_seq_length=32,
        log_every=1,
        checkpoint_every=None,
        seed=0,
    )
    return TrainConfig(**{**settings, **kw})


def test_trainer_batches_follow_the_plan_with_prompts_and_hard_negatives(tiny_base, tmp_path):
    config = _config(tiny_base)
    data = prepare(toy_sets(), {"alpha": "query: "})
    model = load_model(config)
    args = training_args(config, tmp_path, bf16=False, progress=False, prompts=data.prompts)
    trainer = build_trainer(model, make_loss(model, config), data, args, ClockCallback(0.0))
    loader = trainer.get_train_dataloader()
    expected = [b.tolist() for b in plan_batches(data.sources, 16, seed=0, epoch=0)]
    loader.set_epoch(0)
    assert list(loader.batch_sampler) == expected
    tok = model.tokenizer
    for indices, batch in zip(expected, loader, strict=True):
        name = ["alpha", "beta", "gamma"][int(np.searchsorted([80, 128], indices[0], side="right"))]
        assert batch["dataset_name"] == name
        first_anchor = tok.decode(batch["anchor_input_ids"][0], skip_special_tokens=True)
        assert first_anchor.startswith("query :") == (name == "alpha")
        assert ("negative_input_ids" in batch) == (name == "beta")


def test_loss_falls_and_the_record_is_complete(tiny_base, tmp_path):
    out = tmp_path / "full"
    result = train(toy_sets(), _config(tiny_base, steps=40), out, progress=False)
    losses = [loss for _, loss in result.loss_history]
    assert [s for s, _ in result.loss_history] == list(range(1, 41))
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8])
    assert result.steps == 40 and result.resumed_from_step == 0 and result.final_loss == losses[-1]
    assert result.examples_seen > 16 * 30
    assert result.datasets == {"alpha": 80, "beta": 48, "gamma": 40}
    hp = result.hyperparameters
    assert hp["learning_rate"] == 1e-3 and isinstance(hp["bf16"], bool)
    assert json.loads((out / RESULT_FILE).read_text())["steps"] == 40
    assert not (out / "checkpoints").exists()  # removed once saved
    again = train(toy_sets(), _config(tiny_base, steps=40), out, progress=False)
    assert again == result  # finished: returned, not retrained
    with pytest.raises(UserError, match="other settings or data"):
        train(toy_sets(), _config(tiny_base, steps=41), out, progress=False)


def _same_encodings(trained_model, out):
    reloaded = SentenceTransformer(str(out), device="cpu")
    a = trained_model.encode(TEXTS, convert_to_tensor=True)
    b = reloaded.encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(a, b, atol=1e-6)
    return b


def test_full_fine_tuning_saves_a_model_that_reloads_identically(tiny_base, tmp_path):
    out = tmp_path / "full"
    trained = fit(toy_sets(), _config(tiny_base, steps=6, lora_r=None), out, progress=False)
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    encoded = _same_encodings(trained.model, out)
    base = SentenceTransformer(str(tiny_base), device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert not torch.allclose(encoded, base, atol=1e-3)  # it did train


def test_lora_saves_an_adapter_that_reloads_identically(tiny_base, tmp_path):
    out = tmp_path / "lora"
    config = _config(tiny_base, steps=6, lora_r=4, lora_alpha=8, learning_rate=5e-3)
    trained = fit(toy_sets(), config, out, progress=False)
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
    assert adapter["base_model_name_or_path"] == str(tiny_base.resolve())
    assert not (out / "model.safetensors").exists()
    weights = load_file(out / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())
    encoded = _same_encodings(trained.model, out)
    base = SentenceTransformer(str(tiny_base), device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert not torch.allclose(encoded, base, atol=1e-4)
    assert trained.result.adapter == "lora" and trained.result.hyperparameters["lora_r"] == 4


def test_cached_loss_trains_too(tiny_base, tmp_path):
    result = train(
        toy_sets(),
        _config(tiny_base, steps=3, loss="cached_mnrl", mini_batch_size=4),
        tmp_path / "cached",
        progress=False,
    )
    assert result.steps == 3 and all(np.isfinite(loss) for _, loss in result.loss_history)


def test_a_base_that_is_not_a_local_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a local model folder"):
        train(
            toy_sets(),
            TrainConfig(base=str(tmp_path / "nope"), steps=1),
            tmp_path / "o",
            progress=False,
        )
