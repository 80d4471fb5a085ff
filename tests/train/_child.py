"""Run one training in a child process for the crash/resume test: `python _child.py SPEC.json`.

SPEC holds base, out, config (TrainConfig fields) and lora; the data is rebuilt from tiny.toy_sets()
so parent and child train on identical rows. Each step sleeps `step_sleep_s` (the test kills this
process after its first checkpoint, and must not be outrun by it); sleeping changes no numbers.
"""

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(1)

from tiny import toy_sets  # noqa: E402

from zoo.train import TrainConfig, train  # noqa: E402
from zoo.train.trainer import ClockCallback  # noqa: E402


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    sleep_s = spec.get("step_sleep_s", 0.0)
    ClockCallback.on_step_end = lambda self, *a, **k: time.sleep(sleep_s)
    train(
        toy_sets(),
        TrainConfig(**spec["config"]),
        spec["out"],
        prompts=spec.get("prompts"),
        progress=False,
    )


if __name__ == "__main__":
    main(sys.argv[1])
