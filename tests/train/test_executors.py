"""run_jobs: sequential, N processes, and Ray tasks on a local Ray instance."""

import sys

import pytest
from datasets import Dataset

from tests.train.tiny import toy_sets
from zoo.errors import UserError
from zoo.train import TrainConfig, TrainJob, run_jobs


def _job(base, out, *, steps=4, seed=0, sets=None, **kw):
    config = TrainConfig(
        base=str(base),
        steps=steps,
        batch_size=16,
        max_seq_length=32,
        checkpoint_every=None,
        log_every=1,
        seed=seed,
        **kw,
    )
    return TrainJob(train_sets=sets or toy_sets(), config=config, out=str(out), name=out.name)


def _overlap(a, b):
    return a.started_at < b.finished_at and b.started_at < a.finished_at


def test_local_jobs_run_in_order_and_a_failure_is_raised_after_the_rest(tiny_base, tmp_path):
    bad = {"broken": Dataset.from_dict({"anchor": ["a"], "text": ["t"]})}
    jobs = [_job(tiny_base, tmp_path / "bad", sets=bad), _job(tiny_base, tmp_path / "good")]
    with pytest.raises(UserError, match="lacks column 'positive'") as err:
        run_jobs(jobs)
    assert (tmp_path / "good" / "training_result.json").is_file()  # the good job still ran
    if sys.version_info >= (3, 11):
        assert "training job 'bad' failed" in "".join(err.value.__notes__)
    results = run_jobs([jobs[1], _job(tiny_base, tmp_path / "second", seed=1)])
    assert [r.out for r in results] == [str(tmp_path / "good"), str(tmp_path / "second")]


def test_local_workers_train_in_separate_processes(tiny_base, tmp_path):
    # Long enough (a few seconds each) that two spawned interpreters' start-up jitter on a noisy
    # 2-core machine cannot serialise them; 12 steps (under 1 s) once did on CI.
    jobs = [_job(tiny_base, tmp_path / f"bag{i}", seed=i, steps=48) for i in range(2)]
    results = run_jobs(jobs, "local", workers=2)
    assert [r.steps for r in results] == [48, 48]
    assert _overlap(*results), "the two worker processes did not train at the same time"


def test_ray_trains_two_bags_in_parallel(tiny_base, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        saved = tmp_path / "alpha.ds"
        toy_sets()["alpha"].save_to_disk(str(saved))
        jobs = [
            _job(tiny_base, tmp_path / "bag0", steps=48),
            _job(tiny_base, tmp_path / "bag1", steps=48, seed=1, sets={"alpha": str(saved)}),
        ]
        results = run_jobs(jobs, "ray")
        assert ray.is_initialized()  # not ours to shut down
    finally:
        ray.shutdown()
    assert [r.steps for r in results] == [48, 48] and results[1].datasets == {"alpha": 80}
    assert all((tmp_path / f"bag{i}" / "model.safetensors").is_file() for i in range(2))
    assert _overlap(*results), "the two Ray tasks did not train at the same time"


def test_ray_missing_is_a_user_error(tiny_base, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserError, match=r"boom-zoo\[ray\]"):
        run_jobs([_job(tiny_base, tmp_path / "x")], "ray")


def test_bad_executor_arguments_are_user_errors(tiny_base, tmp_path):
    with pytest.raises(UserError, match="unknown executor"):
        run_jobs([], "slurm")
    with pytest.raises(UserError, match="workers"):
        run_jobs([], "local", workers=0)
