"""A training process killed after a checkpoint resumes from it and ends with identical weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.train.tiny import toy_sets
from zoo.train import TrainConfig, train

CHILD = Path(__file__).with_name("_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _wait_for_checkpoint(proc: subprocess.Popen, folder: Path, timeout_s: float = 120) -> None:
    """Return once a complete checkpoint exists; fail if the child ends or stalls first."""
    deadline = time.monotonic() + timeout_s
    while not any((c / "trainer_state.json").is_file() for c in folder.glob("checkpoint-*")):
        assert proc.poll() is None, f"the child ended (rc={proc.returncode}) before a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared in time"
        time.sleep(0.02)


@pytest.mark.parametrize("lora_r", [None, 4], ids=["full", "lora"])
def test_killed_run_resumes_from_its_checkpoint_with_identical_final_weights(
    tiny_base, tmp_path, lora_r
):
    settings = dict(
        base=str(tiny_base),
        steps=24,
        batch_size=16,
        learning_rate=1e-3,
        max_seq_length=32,
        log_every=1,
        checkpoint_every=4,
        lora_r=lora_r,
        seed=3,
    )
    config = TrainConfig(**settings)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"config": settings, "out": str(killed), "step_sleep_s": 0.3}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(spec)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_checkpoint(proc, killed / "checkpoints")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted(
        int(c.name.split("-")[1])
        for c in (killed / "checkpoints").glob("checkpoint-*")
        if (c / "trainer_state.json").is_file()
    )
    assert done and done[-1] < 24, "the child must die mid-run"

    resumed = train(toy_sets(), config, killed, progress=False)
    assert resumed.resumed_from_step == done[-1] > 0
    assert resumed.steps == 24 and [s for s, _ in resumed.loss_history] == list(range(1, 25))

    reference = train(toy_sets(), config, clean, progress=False)
    assert reference.resumed_from_step == 0
    assert resumed.loss_history == reference.loss_history
    assert resumed.examples_seen == reference.examples_seen
    weights = "adapter_model.safetensors" if lora_r else "model.safetensors"
    a, b = load_file(killed / weights), load_file(clean / weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical
