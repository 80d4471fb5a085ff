"""Where a run resumes from, and the record that makes resuming safe.

Layout of a checkpoint folder (default OUT/checkpoints):
    run.json              the run's signature: settings that shape the weights + a data fingerprint
    checkpoint-N/         the Trainer's checkpoint after step N: weights or adapter, optimizer,
                          scheduler, RNG states, trainer_state.json, zoo_clock.json
The Trainer writes trainer_state.json after everything else of a checkpoint, so its presence means
the checkpoint is complete; a folder without it was cut off by a crash and is ignored (and removed).
Only files zoo or the Trainer wrote are ever deleted here.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.train.config import BOOKKEEPING_FIELDS, TrainConfig

RUN_FILE = "run.json"
STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def run_signature(config: TrainConfig, data_signature: dict[str, Any]) -> dict[str, Any]:
    """What must be equal for a checkpoint to be resumed: settings and data, not bookkeeping."""
    settings = config.model_dump(mode="json", exclude=set(BOOKKEEPING_FIELDS))
    return {"config": settings, "data": data_signature}


def run_id(signature: dict[str, Any]) -> str:
    """A stable short id of a signature (same settings and data: same id)."""
    blob = json.dumps(signature, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if p.is_dir() and (m := _CHECKPOINT.match(p.name))
    ]
    return sorted(found)


def last_complete(folder: Path) -> Path | None:
    """The highest-step checkpoint whose trainer state was written, or None."""
    if not folder.is_dir():
        return None
    done = [path for _, path in _checkpoints(folder) if (path / STATE_FILE).is_file()]
    return done[-1] if done else None


def prepare_folder(folder: Path, signature: dict[str, Any], *, resume: bool) -> Path | None:
    """Make folder ready for this run and return the checkpoint to resume from (None: step 0).

    resume=True keeps complete checkpoints of the same run and refuses (UserError) a folder holding
    another run's; resume=False deletes the folder's checkpoints first. Incomplete checkpoints are
    always deleted. Mutates the folder; call it on the main process only.
    """
    folder.mkdir(parents=True, exist_ok=True)
    recorded = folder / RUN_FILE
    if not resume:
        remove(folder)
        folder.mkdir(parents=True, exist_ok=True)
    elif recorded.is_file() and last_complete(folder) is not None:
        _check_same_run(json.loads(recorded.read_text(encoding="utf-8")), signature, folder)
    start = last_complete(folder) if resume else None
    for step, path in _checkpoints(folder):
        if start is None or step > int(start.name.split("-")[1]):
            shutil.rmtree(path)
    recorded.write_text(json.dumps(signature, indent=1, sort_keys=True), encoding="utf-8")
    return start


def _check_same_run(old: dict[str, Any], new: dict[str, Any], folder: Path) -> None:
    if old == new:
        return
    keys = sorted(
        k
        for k in {**old.get("config", {}), **new.get("config", {})}
        if old.get("config", {}).get(k) != new.get("config", {}).get(k)
    )
    what = f"settings {keys}" if keys else "training data"
    raise UserError(
        f"{folder} holds checkpoints of a run with different {what}; resume with the "
        "same settings and data, or start over (resume=False / another output folder)"
    )


def remove(folder: Path) -> None:
    """Delete the run record and every checkpoint in folder, then folder itself if left empty."""
    if not folder.is_dir():
        return
    for _, path in _checkpoints(folder):
        shutil.rmtree(path)
    (folder / RUN_FILE).unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()
