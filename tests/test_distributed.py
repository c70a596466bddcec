"""Beyond one process: DDP over gloo on this machine's CPUs, and Hydra's submitit launcher."""

import numpy as np
import pandas as pd
import torch

from dlbasics.run import train

from .conftest import make_cfg, read_metrics, run_script
from .test_course import course_gradient_descent


def test_ddp_on_two_cpu_processes_writes_once_and_learns_as_well(tmp_path):
    run_dir = tmp_path / "ddp"
    args = ["trainer.max_epochs=100", "logger=tensorboard"]
    result = run_script("train.py", "trainer=ddp_cpu", *args, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "completed" and metrics["epochs"] == 100
    single = train(make_cfg(tmp_path / "single", *args))
    steps = [
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
        for d in (run_dir, tmp_path / "single")
    ]
    assert steps == [300, 600]  # each of the two processes took half of the 90 training rows: 3 batches of 16 an epoch
    assert abs(metrics["test/acc"] - single["test/acc"]) <= 0.05 and metrics["test/acc"] >= 0.9
    assert result.stdout.count("test/acc") == 1  # one report, by rank 0
    writers = {p.name.split(".")[4] for p in run_dir.glob("events.out.tfevents.*")}
    assert len(writers) == 1  # every event file comes from one process: rank 0
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_ddp_takes_chapter1s_steps_and_says_each_line_once(tmp_path):
    """Under DDP, loss=sse summed each process's half of the rows and DDP averaged the gradients: a step of half
    the course's, so that 5e-5 converged instead of diverging. Its second process printed the resume line too."""
    args = ["experiment=ch1_gradient_descent", "optimizer.lr=5e-5", "trainer=ddp_cpu", f"hydra.run.dir={tmp_path}"]
    first = run_script("train.py", *args, "trainer.max_epochs=2")
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = run_script("train.py", *args, "trainer.max_epochs=4", "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.count(f"Resuming '{tmp_path}/checkpoints/last.ckpt' after epoch 2 of 4.") == 1
    assert resumed.stdout.count("Run directory:") == 1
    path = pd.read_csv(tmp_path / "trajectory.csv")
    np.testing.assert_allclose(path["w"], course_gradient_descent(5e-5, steps=4), rtol=1e-5, atol=1e-6)
    assert read_metrics(tmp_path)["status"] == "diverged"


def test_ddp_with_a_val_split_smaller_than_the_processes_does_not_hang(tmp_path):
    """Iris' val split of one row: the second process has no val rows, yet the first waits for its sums."""
    args = ["trainer=ddp_cpu", "data.val_fraction=0.005", "trainer.max_epochs=2", "logger=none"]
    result = run_script("train.py", *args, f"hydra.run.dir={tmp_path}", timeout=120)  # it hung for ever
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "completed" and metrics["epochs"] == 2 and metrics["val/loss"] is not None


def test_a_sweep_of_ddp_jobs_runs_each_job_once_on_two_processes(tmp_path):
    """Lightning starts DDP's second process with the command line, which was the whole sweep's: it ran every job
    again, printed a sweep of 3 jobs with one refused, and exited 1; a second job waited for ever."""
    result = run_script(
        "train.py", "-m", "trainer=ddp_cpu", "optimizer.lr=0.001,0.01", "trainer.max_epochs=2", "logger=none",
        f"hydra.sweep.dir={tmp_path}", timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("Sweep of 2 jobs") == 1 and "Sweep of 3" not in result.stdout
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(summary["optimizer.lr"]) == [0.001, 0.01] and (summary["status"] == "completed").all()
    for job in ("optimizer.lr=0.001", "optimizer.lr=0.01"):  # each process half of the 90 training rows: 3 steps
        assert torch.load(tmp_path / job / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6


def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    result = run_script(
        "train.py", "-m", "hydra/launcher=submitit_local", "optimizer.lr=0.001,0.01", "trainer.max_epochs=3",
        "logger=none", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(summary["optimizer.lr"]) == [0.001, 0.01] and (summary["status"] == "completed").all()
