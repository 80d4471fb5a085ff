"""kill -9 in the middle of a merge: no partial output at `out`; a rerun works (and tidies up)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox import private_mount
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.package import file_hashes

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import os, signal, sys
from pathlib import Path
from zoo.merge import package, writer
from zoo.merge.engine import MergeInput, merge_folders

point, n, out, inputs = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if point == "write":            # the writer thread dies after n tensor writes
    real, done = writer._File.write, [0]
    def write(self, offset, data):
        real(self, offset, data)
        done[0] += 1
        if done[0] >= n:
            die()
    writer._File.write = write
else:                           # weights and support files written, dies before the rename
    package.finish = die
merge_inputs = [MergeInput(Path(p), {"weight": 1 / len(inputs)}) for p in inputs]
merge_folders(merge_inputs, None, "linear", {}, out, progress=False)
"""


def _inputs(family):
    return [MergeInput(p, {"weight": 1 / 3}) for p in family["variants"]]


@pytest.mark.parametrize("point,n", [("write", 1), ("write", 12), ("rename", 0)])
def test_killed_merge_leaves_no_output_and_a_rerun_works(bert_family, tmp_path, point, n):
    out = tmp_path / "merged"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [point, str(n), str(out), *map(str, bert_family["variants"])]
    child = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert not out.exists()
    orphans = list(tmp_path.glob(".merged.zoo-tmp-*"))
    assert len(orphans) == 1 and any(orphans[0].rglob("*.safetensors"))  # it died mid-work

    merge_folders(_inputs(bert_family), None, "linear", {}, out, progress=False)
    assert list(tmp_path.glob(".merged.zoo-tmp-*")) == []  # the orphan is gone
    reference = merge_folders(
        _inputs(bert_family), None, "linear", {}, tmp_path / "ref", progress=False
    )
    assert file_hashes(out) == file_hashes(reference.out)


def test_a_live_merges_temporary_folder_is_left_alone(bert_family, tmp_path):
    """Only folders of dead processes are swept: a concurrent merge's work survives."""
    out = tmp_path / "merged"
    live = tmp_path / ".merged.zoo-tmp-live"
    live.mkdir()
    (live / ".zoo-owner").write_text(str(os.getppid()))
    merge_folders(_inputs(bert_family), None, "linear", {}, out, progress=False)
    assert live.is_dir() and not (out / ".zoo-owner").exists()


FULL_DISK = """
set -e
mount -t tmpfs -o size={size}k tmpfs "{disk}"
set +e
"{python}" -c 'import sys; from zoo.cli import main; sys.exit(main(sys.argv[1:]))' \\
    merge "{recipe}" --out "{disk}/merged" --quiet
echo "rc=$?"
ls -A "{disk}"
"""


def test_disk_full_during_merge_is_one_clear_error_and_leaves_nothing(bert_family, tmp_path):
    """A real full disk: the output goes to a 64 KiB tmpfs in a private mount namespace."""
    disk = tmp_path / "small-disk"
    disk.mkdir()
    recipe = tmp_path / "recipe.yaml"
    models = "".join(
        f"  - model: {p}\n    parameters: {{weight: 0.5}}\n" for p in bert_family["variants"][:2]
    )
    recipe.write_text(f"merge_method: linear\nmodels:\n{models}")
    script = FULL_DISK.format(size=64, disk=disk, python=sys.executable, recipe=recipe)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [*private_mount(), "sh", "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    stdout = run.stdout.split()
    assert stdout[0] == "rc=1" and stdout[1:] == [], run.stdout  # nothing left on the full disk
    error = run.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("zoo: error: disk full writing "), run.stderr
    assert "No space left on device" in error[0] and "Traceback" not in run.stderr
