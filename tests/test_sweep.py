"""Sweeps: one summary of all jobs, and bad jobs that do not spoil the others."""

import itertools
import json
import math
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

import dlbasics.sweep
from dlbasics.run import train
from dlbasics.sweep import REFUSAL, REFUSED, SWEEP_FILES, SweepSummary, by_seed

from .conftest import CONF, make_cfg, read_metrics, run_script


@pytest.fixture(autouse=True)
def no_sweep_under_way(monkeypatch):
    """A test that starts a sweep's summary and never ends it leaves no sweep under way in the tests after it."""
    monkeypatch.setattr(dlbasics.sweep, "_UNDER_WAY", None)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A learning-rate sweep on chapter 1's data, with a diverging and a failing grid point, over two seeds.

    Run by Hydra's basic launcher (a run per job) and by ours, which trains the jobs as one stacked model.
    """
    out = {}
    for launcher in ("basic", "stacked"):
        sweep_dir = tmp_path_factory.mktemp(launcher)
        result = run_script(
            "train.py", "-m", "data=boston_rm", "model=perceptron", "optimizer=sgd", "data.batch_size=null",
            "optimizer.lr=0.01,10,-1", "seed=0,1", "trainer.max_epochs=30", "logger=csv",
            f"hydra.sweep.dir={sweep_dir}", f"hydra/launcher={launcher}",
        )  # fmt: skip
        out[launcher] = sweep_dir, result, pd.read_csv(sweep_dir / "summary.csv")
    return out


@pytest.fixture(params=["basic", "stacked"])
def sweep(sweeps, request):
    """The same tests hold for both launchers."""
    return sweeps[request.param]


def test_both_launchers_give_each_job_the_same_config(sweeps):
    basic, stacked = sweeps["basic"][0], sweeps["stacked"][0]
    jobs = sorted(p.name for p in basic.iterdir() if p.is_dir())
    assert jobs == sorted(p.name for p in stacked.iterdir() if p.is_dir()) and len(jobs) == 6
    for job in jobs:
        for name in ("config.yaml", "overrides.yaml"):
            assert (basic / job / ".hydra" / name).read_text() == (stacked / job / ".hydra" / name).read_text()
        ours, theirs = (yaml.safe_load((d / job / ".hydra" / "hydra.yaml").read_text()) for d in (stacked, basic))
        assert ours["hydra"]["job"] == theirs["hydra"]["job"]  # name, id, num, override_dirname, ...
        assert ours["hydra"]["overrides"]["task"] == theirs["hydra"]["overrides"]["task"]


def test_sweep_summary_has_a_row_per_job_best_first(sweep):
    sweep_dir, result, summary = sweep
    assert len(summary) == 6
    columns = {"optimizer.lr", "seed", "status", "epochs", "val/loss_best", "val/loss", "test/rmse", "seconds"}
    assert columns <= set(summary.columns)
    completed = summary[summary.status == "completed"]
    # ranked by the val/loss of each job's best checkpoint, the one its test metrics are of
    assert len(completed) == 2 and completed["val/loss_best"].is_monotonic_increasing
    for job, best in zip(completed["job"], completed["val/loss_best"], strict=True):
        assert best == pytest.approx(pd.read_csv(sweep_dir / job / "metrics.csv")["val/loss"].min())
    assert summary.index[summary.status == "completed"].tolist() == [0, 1]  # best first, failures last
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())[0] == "optimizer.lr=-1,seed=0"
    assert "Sweep of 6 jobs, best first by val/loss_best (min)" in result.stdout
    assert (sweep_dir / "summary.png").stat().st_size > 10_000


def test_a_diverging_job_stops_and_the_sweep_goes_on(sweep):
    sweep_dir, _, summary = sweep
    diverged = summary[summary.status == "diverged"]
    assert sorted(diverged["optimizer.lr"]) == [10, 10]
    metrics = read_metrics(sweep_dir / "optimizer.lr=10,seed=0")
    losses = pd.read_csv(sweep_dir / "optimizer.lr=10,seed=0" / "metrics.csv")["train/loss"].dropna().to_numpy()
    finite = np.isfinite(losses)  # its logs are kept, an epoch a row
    assert finite[:-1].all() and not finite[-1] and metrics["epochs"] == len(losses) < 30  # stopped there


def test_a_diverged_job_is_drawn_as_such(sweep):
    """It has no value to draw: it was missing from the panel against the learning rate, without a word."""
    from dlbasics.sweep import plot

    sweep_dir, _, summary = sweep
    against_lr, curves = plot(summary, ["optimizer.lr", "seed"], sweep_dir, "val/loss").axes  # no panel for seed
    (crosses,) = [line for line in against_lr.lines if line.get_label() == "diverged"]
    assert sorted(crosses.get_xdata()) == [10, 10]
    labels = [line.get_label() for line in curves.lines]
    assert all(label.endswith("(diverged)") == ("optimizer.lr=10" in label) for label in labels)


def test_a_job_that_diverged_in_its_first_epoch_has_no_curve_in_the_legend(tmp_path):
    """Its one value, NaN, drew nothing, yet the legend named it beside the curves that were drawn."""
    from torch.utils.tensorboard import SummaryWriter

    from dlbasics.sweep import collect, plot

    for name, first, metrics in [
        ("optimizer.lr=0.1", 1.0, {"val/loss_best": 0.5}),
        ("optimizer.lr=1e30", math.nan, {}),
    ]:
        _job_dir(tmp_path, name, {"status": "completed" if metrics else "diverged", "epochs": 1, **metrics})
        with SummaryWriter(str(tmp_path / name)) as writer:  # TensorBoard's log keeps the NaN, as it was logged
            writer.add_scalar("val/loss", first, 1)
    curves = plot(collect(tmp_path), ["optimizer.lr"], tmp_path, "val/loss_best").axes[-1]
    assert [line.get_label() for line in curves.lines] == ["optimizer.lr=0.1"]


def test_the_curves_are_in_the_order_the_sweep_ran_its_jobs(sweep):
    """model.activation=relu,tanh,sigmoid,identity drew its curves in the order of the names' letters."""
    from dlbasics.sweep import plot

    sweep_dir, _, summary = sweep
    order = list(summary["job"])[::-1]  # neither the table's order (best first) nor the values'
    curves = plot(summary, ["optimizer.lr", "seed"], sweep_dir, "val/loss", order).axes[-1]

    def values(text):  # optimizer.lr=10, seed=0 (a job) and optimizer.lr=10.0, seed=0 (a label): (10.0, 0.0)
        return tuple(float(item.split("=")[1]) for item in text.split(","))

    labels = [values(line.get_label().removesuffix(" (diverged)")) for line in curves.lines]
    assert len(labels) == 4 and labels == [job for job in map(values, order) if job in labels]


def test_a_resumed_jobs_curve_is_the_one_tensorboard_shows(tmp_path):
    """The summary reads the event files itself (TensorBoard's reader took 0.4 s of an 8-job sweep's): a resumed
    run's writer drops what the first one logged from the step it resumed at, and a record cut short by a kill
    ends its file, as in TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from dlbasics.sweep import _curves

    for purge_step, values in ((None, range(11, 17)), (4, range(24, 28))):  # killed after step 6, resumed from 3
        with SummaryWriter(tmp_path, purge_step=purge_step) as writer:
            for step, value in enumerate(values, start=purge_step or 1):
                writer.add_scalar("val/loss", value, step)
                writer.add_scalar("val/acc", -value, step)
    last = max(tmp_path.glob("events.out.tfevents.*"))
    last.write_bytes(last.read_bytes() + (1000).to_bytes(8, "little") + bytes(30))  # a record half-written
    shown = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    shown.Reload()
    assert _curves(tmp_path, "val/loss") == [e.value for e in shown.Scalars("val/loss")] == [11, 12, 13, 24, 25, 26, 27]


def test_the_console_table_shows_the_swept_values_as_given(tmp_path, capsys):
    """pandas printed a column of learning rates 1e-05 and 0.05 as 0.000010 and 0.050000 (1e-07 as 0.000000)."""
    from dlbasics.sweep import summarize

    for lr in ("1e-07", "1e-05", "0.003860866271460547"):  # and one of optuna's
        job = tmp_path / f"optimizer.lr={lr}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={lr}\n")
        (job / "metrics.json").write_text('{"status": "completed", "epochs": 1, "val/loss": 1.5}')
    summarize(tmp_path, "val/loss", "min")
    rows = capsys.readouterr().out.split("(min):\n", 1)[1].splitlines()[1:4]
    assert sorted(row.split()[0] for row in rows) == ["0.00386087", "1e-05", "1e-07"] and "0.0000" not in "".join(rows)


def test_a_summary_interrupted_while_written_leaves_no_half_a_table(tmp_path, monkeypatch):
    """Ctrl-C while summary.csv is written: no truncated table for a later reader to take as the sweep's."""
    from dlbasics.sweep import summarize

    for lr in ("0.1", "0.01"):
        job = tmp_path / f"optimizer.lr={lr}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={lr}\n")
        (job / "metrics.json").write_text('{"status": "completed", "epochs": 1, "val/loss": 1.5}')
    written = pd.DataFrame.to_csv

    def interrupted(frame, path, **kwargs):
        written(frame.head(1), path, **kwargs)  # the first rows reach the disk, then the key is pressed
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        summarize(tmp_path, "val/loss", "min")
    assert not list(tmp_path.glob("summary*")) and len(list(tmp_path.iterdir())) == 2
    monkeypatch.setattr(pd.DataFrame, "to_csv", written)
    assert len(summarize(tmp_path, "val/loss", "min")) == len(pd.read_csv(tmp_path / "summary.csv")) == 2


def test_a_failing_job_is_recorded_and_the_exit_status_says_so(sweep):
    _, result, summary = sweep
    failed = summary[summary.status == "failed"]
    assert len(failed) == 2 and set(failed["optimizer.lr"]) == {-1}
    assert failed["error"].str.contains("optimizer.lr must be a positive number; got -1").all()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_epochs_are_whole_numbers_and_empty_for_a_job_without_any(sweep):
    sweep_dir, result, summary = sweep
    epochs = pd.read_csv(sweep_dir / "summary.csv", dtype=str)["epochs"]  # as the file spells them
    assert epochs[summary.status == "completed"].tolist() == ["30", "30"]
    assert epochs[summary.status == "failed"].isna().all()  # an empty cell
    table = result.stdout.split("Sweep of", 1)[1].split("\n\n", 1)[0]  # up to the seeds' table
    assert re.search(r"completed +30 ", table) and not re.search(r"NaN|<NA>|30\.0", table), table


def sweep_again(sweep_dir, launcher: str):
    """Four of the fixture's jobs (lr 0.01 and 10, seeds 0 and 1, for other epochs) into the directory they ran in."""
    return run_script(
        "train.py", "-m", "data=boston_rm", "model=perceptron", "optimizer=sgd", "data.batch_size=null",
        "optimizer.lr=0.01,10", "seed=0,1", "trainer.max_epochs=20", "logger=csv",
        f"hydra.sweep.dir={sweep_dir}", f"hydra/launcher={launcher}",
    )  # fmt: skip


def sweep_files(sweep_dir):
    return {name: (sweep_dir / name).read_bytes() for name in SWEEP_FILES if (sweep_dir / name).is_file()}


def test_a_sweep_again_into_its_directory_refuses_its_jobs_and_keeps_what_they_left(sweep, request, tmp_path):
    """The same command twice: the second sweep's jobs, all refused, replaced the first's summary with theirs."""
    sweep_dir = shutil.copytree(sweep[0], tmp_path / "sweep")
    job = sweep_dir / "optimizer.lr=0.01,seed=0"
    kept, summary = {p: p.read_bytes() for p in job.rglob("*") if p.is_file()}, sweep_files(sweep_dir)
    again = sweep_again(sweep_dir, request.node.callspec.params["sweep"])
    assert again.returncode == 1
    assert again.stderr.count("already holds a run") == 4 and "Traceback" not in again.stderr
    assert {p: p.read_bytes() for p in job.rglob("*") if p.is_file()} == kept  # Hydra's .hydra/ record too
    assert "error: none of the sweep's 4 jobs ran" in again.stderr and "Sweep of" not in again.stdout
    assert sweep_files(sweep_dir) == summary and len(summary) == 4  # summary.csv, .png, _seeds.csv, multirun.yaml


def test_a_sweep_resumed_keeps_its_completed_jobs_as_they_ended(tmp_path):
    """`ckpt_path=last` on a sweep whose jobs had ended refused them each as having trained its epochs, and failed."""
    sweep = [
        "train.py",
        "-m",
        "optimizer.lr=0.01,0.02",
        "trainer.max_epochs=3",
        "logger=csv",
        f"hydra.sweep.dir={tmp_path}",
    ]
    assert run_script(*sweep).returncode == 0
    kept = {p: p.read_bytes() for p in tmp_path.glob("optimizer.lr=*/**/*") if p.is_file() and p.name != "train.log"}
    again = run_script(*sweep, "ckpt_path=last")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("trained its epochs already; kept as it ended") == 2
    assert {
        p: p.read_bytes() for p in tmp_path.glob("optimizer.lr=*/**/*") if p.is_file() and p.name != "train.log"
    } == kept
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert (summary.status == "completed").all() and summary["val/loss"].notna().all() and len(summary) == 2


def test_a_joblib_sweep_again_into_a_directory_exits_non_zero(sweeps, tmp_path):
    """Hydra's joblib launcher runs the jobs, and their on_job_start and on_job_end, in worker processes."""
    sweep_dir = shutil.copytree(sweeps["basic"][0], tmp_path / "sweep")
    again = sweep_again(sweep_dir, "joblib")
    assert again.returncode == 1 and again.stderr.count("already holds a run") == 4, again.stderr[-2000:]
    # each worker recorded its job, and that it was refused
    assert "error: none of the sweep's 4 jobs ran" in again.stderr and not list(sweep_dir.glob(".[!.]*"))
    overrides = sweep_dir / "optimizer.lr=0.01,seed=0" / ".hydra" / "overrides.yaml"
    assert "trainer.max_epochs=30" in overrides.read_text()  # the record of the run there, put back by the worker


def test_a_sweep_into_an_earlier_sweeps_directory_summarizes_its_own_jobs(tmp_path):
    """The first sweep leaves relu's run and foo's failure; the second refuses relu and runs tanh."""
    common = ["trainer.max_epochs=2", "logger=none", f"hydra.sweep.dir={tmp_path}"]
    first = run_script("train.py", "-m", "model.activation=relu,foo", *common)
    assert first.returncode == 1 and (tmp_path / "model.activation=relu" / "metrics.json").is_file()
    again = run_script("train.py", "-m", "model.activation=relu,tanh", *common)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert "Sweep of 2 jobs" in again.stdout
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert dict(zip(summary["model.activation"], summary.status, strict=True)) == {
        "tanh": "completed",
        "relu": "refused",
    }
    refused = summary[summary.status == "refused"].iloc[0]
    assert refused[["epochs", "val/loss", "test/acc", "seconds"]].isna().all()  # the earlier run's are not its own
    failures = [line for line in again.stderr.splitlines() if line.startswith(("failed:", "refused:"))]
    assert failures == [f"refused: model.activation=relu: {REFUSAL}"]  # and nothing of foo, the first sweep's


def test_seeds_are_summarized_by_mean_and_std(sweep):
    sweep_dir, _, summary = sweep
    seeds = pd.read_csv(sweep_dir / "summary_seeds.csv")
    good = seeds[seeds["optimizer.lr"].astype(float) == 0.01].iloc[0]
    runs = summary[summary["optimizer.lr"] == 0.01]["test/rmse"]
    assert good["seeds"] == 2 and good["completed"] == 2
    assert good["test/rmse mean"] == pytest.approx(runs.mean())
    assert good["test/rmse std"] == pytest.approx(runs.std())


def test_by_seed_groups_otherwise_equal_configurations():
    table = pd.DataFrame(
        {
            "optimizer.lr": [0.1, 0.1, 0.01, 0.01],
            "seed": [0, 1, 0, 1],
            "status": ["completed"] * 3 + ["diverged"],
            "val/loss": [1.0, 3.0, 2.0, math.nan],
        }
    )
    out = by_seed(table, ["optimizer.lr", "seed"])
    assert out["val/loss mean"].tolist()[0] == 2.0 and out["completed"].tolist() == [2, 1]


def test_optuna_search_runs_its_trials(tmp_path):
    result = run_script(
        "train.py", "-m", "hparams_search=iris_optuna", "hydra.sweeper.n_trials=3", "trainer.max_epochs=3",
        "logger=none", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "A new study created in memory" in result.stderr and "\x1b[" not in result.stderr  # no colour codes
    assert "alembic" not in result.stdout + result.stderr  # 7 lines of its plugins' setup opened every search
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"optimizer.lr", "model.depth", "model.width", "model.activation"}
    summary = pd.read_csv(tmp_path / "summary.csv")
    # what Optuna minimizes: the val/loss of each trial's best checkpoint, the one its test metrics are of
    assert len(summary) == 3 and best["best_value"] == pytest.approx(summary["val/loss_best"].min())
    assert set(best["best_params"]) <= set(summary.columns)  # model.depth too, though every trial drew 3


def test_the_sweeper_gets_the_best_checkpoints_value_and_the_worst_for_a_diverged_run(tmp_path):
    from dlbasics.run import monitored

    cfg = make_cfg(
        tmp_path,
        "data=boston_rm",
        "optimizer=sgd",
        "optimizer.lr=10",
        "data.batch_size=null",
        "logger=none",
        "trainer.max_epochs=30",
    )
    metrics = train(cfg)
    assert metrics["status"] == "diverged" and "val/loss_best" not in metrics  # not a result to rank
    assert monitored(metrics, cfg) == math.inf
    cfg.optimizer.lr, cfg.run_dir, cfg.trainer.max_epochs = 0.05, str(tmp_path / "too_fast"), 60
    metrics = train(cfg)  # a fast rate: its val loss goes up and down, and the best checkpoint is kept
    assert metrics["status"] == "completed" and metrics["val/loss_best"] < metrics["val/loss"]
    assert monitored(metrics, cfg) == metrics["val/loss_best"]


def test_the_summary_of_chapter_1s_sweep_draws_its_learning_rates_and_training_losses(tmp_path, capsys):
    """Small learning rates come back from overrides.yaml as 1e-05 (a string to YAML), and a sweep without a
    val split has training curves only: both once left the figure empty."""
    from dlbasics.sweep import plot, summarize

    for lr in ("1e-06", "1e-05", "5e-05"):
        job = tmp_path / f"optimizer.lr={lr}"
        cfg = make_cfg(tmp_path, "experiment=ch1_gradient_descent", f"optimizer.lr={lr}", "trainer.max_epochs=10")
        cfg.run_dir = str(job)  # a name with '=', as Hydra names sweep jobs
        train(cfg)
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(f"- experiment=ch1_gradient_descent\n- optimizer.lr={lr}\n")
    table = summarize(tmp_path, "val/loss", "min")
    assert table["optimizer.lr"].tolist() == [1e-5, 1e-6, 5e-5]  # numbers, best first by train/loss
    assert "best first by train/loss_best" in capsys.readouterr().out and (tmp_path / "summary.png").is_file()
    fig = plot(table, ["optimizer.lr"], tmp_path, "train/loss")
    against_lr, curves = fig.axes
    assert table["status"].tolist() == ["completed", "completed", "diverged"]  # 5e-5: its loss grew
    assert against_lr.get_xscale() == "log" and [len(line.get_xdata()) for line in against_lr.lines] == [2, 1]
    assert [len(line.get_ydata()) for line in curves.lines] == [10, 10, 10] and curves.get_ylabel() == "train/loss"


def test_the_curves_of_a_search_of_many_jobs_keep_a_colour_each_and_a_short_label_beside_them(tmp_path):
    """An Optuna search of 20 trials: its legend of 17-digit learning rates covered the curves, and matplotlib's ten
    colours came round again, so that a curve could not be told from another."""
    from dlbasics.sweep import collect, plot

    rng = np.random.default_rng(0)
    for lr in (10 ** rng.uniform(-4, -1, size=12)).tolist():
        job = tmp_path / f"optimizer.lr={lr!r}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={lr!r}\n")
        (job / "metrics.json").write_text(json.dumps({"status": "completed", "epochs": 3, "val/loss_best": lr}))
        pd.DataFrame({"epoch": [0, 1, 2], "val/loss": [1.0, lr, lr / 2]}).to_csv(job / "metrics.csv", index=False)
    table = collect(tmp_path)
    curves = plot(table, ["optimizer.lr"], tmp_path, "val/loss_best").axes[-1]
    labels = [line.get_label() for line in curves.lines]
    assert len(labels) == 12 and all(re.fullmatch(r"optimizer\.lr=\d\.\d+(e-0\d)?", label) for label in labels)
    assert all(len(label) <= len("optimizer.lr=0.0001234") for label in labels)  # 4 digits
    assert len({tuple(line.get_color()) for line in curves.lines}) == 12
    legend = curves.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 > curves.get_window_extent().x1  # beside them


def test_a_legend_beside_the_curves_widens_the_figure_rather_than_squeezing_them(tmp_path):
    """Course 2.1's sweep, model.hidden=[80],[16,16,16] by seed=1,2,3: its six long labels took most of the
    figure's 5 inches, and left the curves about 1.3."""
    from dlbasics.sweep import collect, plot

    for hidden, seed in itertools.product(("[80]", "[16,16,16]"), (1, 2, 3)):
        job = tmp_path / f"model.hidden={hidden},seed={seed}"
        _job_dir(tmp_path, job.name, {"status": "completed", "epochs": 3})
        (job / ".hydra" / "overrides.yaml").write_text(f"- model.hidden={hidden}\n- seed={seed}\n")
        pd.DataFrame({"epoch": [0, 1, 2], "val/loss": [1.0, 0.5, seed / 10]}).to_csv(job / "metrics.csv", index=False)
    fig = plot(collect(tmp_path), ["model.hidden", "seed"], tmp_path, "val/loss_best")
    fig.canvas.draw()
    (curves,) = fig.axes
    legend = curves.get_legend().get_window_extent()
    assert len(curves.lines) == 6 and legend.x0 > curves.get_window_extent().x1  # beside the curves
    assert legend.x1 <= fig.bbox.x1 and legend.y0 >= fig.bbox.y0  # and in the figure
    assert curves.get_window_extent().width >= 3.5 * fig.dpi  # inches, as wide as a figure without a legend's


def test_a_swept_null_is_a_value_of_its_own_in_the_summary_and_its_figure(tmp_path, capsys):
    """data.batch_size=null,16: plain gradient descent against minibatches; null once became a missing number,
    a blank cell beside 16.0, and the figure's labels could not be made."""
    from dlbasics.sweep import summarize

    for name, loss in [("data.batch_size=null", 0.4), ("data.batch_size=16", 0.2)]:
        _job_dir(tmp_path, name, {"status": "completed", "epochs": 3, "val/loss": loss, "val/loss_best": loss})
    table = summarize(tmp_path, "val/loss", "min")
    assert table["data.batch_size"].tolist() == [16, "null"]
    written = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)  # null is pandas' NaN by default
    assert written["data.batch_size"].tolist() == ["16", "null"]
    out, err = capsys.readouterr()
    assert "summary.png" in out and "not drawn" not in err and (tmp_path / "summary.png").is_file()


def test_jobs_on_other_data_are_ranked_among_their_own(tmp_path, capsys):
    """data=iris,boston: a logistic loss of 0.05 and a squared error of 10 do not compare; both iris jobs came
    first, as if better."""
    from dlbasics.sweep import summarize

    for data, lr, loss in [("iris", 0.1, 0.1), ("iris", 0.01, 0.05), ("boston", 0.1, 10.0), ("boston", 0.01, 20.0)]:
        name = f"data={data},optimizer.lr={lr}"
        _job_dir(tmp_path, name, {"status": "completed", "epochs": 3, "val/loss": loss, "val/loss_best": loss})
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(f"- data={data}\n- optimizer.lr={lr}\n")
    table = summarize(tmp_path, "val/loss", "min")
    assert list(zip(table["data"], table["val/loss_best"], strict=True)) == [
        ("boston", 10.0), ("boston", 20.0), ("iris", 0.05), ("iris", 0.1)]  # fmt: skip
    assert "Sweep of 4 jobs, best first by val/loss_best (min) within each data:" in capsys.readouterr().out


def test_a_sweep_over_splits_is_ranked_within_each_and_averaged_over_them(tmp_path, capsys):
    """data.split_seed=0,1,2 (the course's quality table, a mean over splits): each split's validation rows are
    others, so their losses were ranked against each other, and no mean was made (only `seed` was averaged)."""
    from dlbasics.sweep import summarize

    jobs = [(0, 0.1, 0.3, 0.90), (0, 0.01, 0.2, 0.96), (1, 0.1, 0.1, 0.93), (1, 0.01, 0.4, 0.87)]
    for split, lr, loss, acc in jobs:
        name = f"data.split_seed={split},optimizer.lr={lr}"
        metrics = {"status": "completed", "epochs": 3, "val/loss_best": loss, "test/acc": acc}
        _job_dir(tmp_path, name, metrics)
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(f"- data.split_seed={split}\n- optimizer.lr={lr}\n")
    table = summarize(tmp_path, "val/loss", "min")
    assert table["val/loss_best"].tolist() == [0.2, 0.3, 0.1, 0.4]  # by split, then by loss
    out = capsys.readouterr().out
    assert "best first by val/loss_best (min) within each data.split_seed:" in out
    assert "Mean and standard deviation over data.split_seed:" in out
    averaged = pd.read_csv(tmp_path / "summary_seeds.csv")
    assert averaged["optimizer.lr"].tolist() == [0.01, 0.1] and averaged["seeds"].tolist() == [2, 2]
    assert averaged["test/acc mean"].tolist() == pytest.approx([0.915, 0.915])
    assert averaged["test/acc std"].tolist() == pytest.approx(
        [np.std([0.96, 0.87], ddof=1), np.std([0.9, 0.93], ddof=1)]
    )


def test_the_loss_panel_says_so_when_no_job_logged_its_curve(tmp_path):
    """With logger=none the jobs leave no TensorBoard or CSV log: the panel says so, rather than draw empty axes."""
    from dlbasics.sweep import plot

    jobs = ["optimizer.lr=0.01", "optimizer.lr=0.1"]
    for name in jobs:
        (tmp_path / name).mkdir()
    table = pd.DataFrame(
        {"job": jobs, "optimizer.lr": [0.01, 0.1], "status": ["completed"] * 2, "val/loss": [0.5, 0.2]}
    )
    curves = plot(table, ["optimizer.lr"], tmp_path, "val/loss").axes[-1]
    assert not curves.lines and not curves.axison
    assert [t.get_text() for t in curves.texts] == ["no val/loss curves: no job logged any\n(logger=none logs none)"]


def _job_config(sweep_dir, name, mode=RunMode.MULTIRUN):
    """What SweepSummary reads of a job's config."""
    hydra = {"sweep": {"dir": str(sweep_dir)}, "runtime": {"output_dir": f"{sweep_dir}/{name}"}, "mode": mode}
    return OmegaConf.create({"hydra": hydra})


def _job_dir(sweep_dir, name, metrics=None):
    """A job's directory as Hydra makes it before the job starts, and its metrics.json if it has one."""
    (sweep_dir / name / ".hydra").mkdir(parents=True, exist_ok=True)
    (sweep_dir / name / ".hydra" / "overrides.yaml").write_text(f"- {name}\n")
    if metrics is not None:
        (sweep_dir / name / "metrics.json").write_text(json.dumps(metrics))


def _returned(value, status=JobStatus.COMPLETED):
    job_return = JobReturn(status=status)
    job_return.return_value = value
    return job_return


def test_a_job_that_left_the_run_its_directory_held_is_recorded_as_refused(tmp_path):
    summary, held = SweepSummary(), {"status": "completed", "epochs": 3}
    _job_dir(tmp_path, "optimizer.lr=1", held)  # an earlier sweep's
    _job_dir(tmp_path, "optimizer.lr=2", held)
    _job_dir(tmp_path, "optimizer.lr=3")
    for name in ("optimizer.lr=1", "optimizer.lr=2", "optimizer.lr=3"):
        summary.on_job_start(_job_config(tmp_path, name), task_function=None)
    summary.on_job_end(_job_config(tmp_path, "optimizer.lr=1"), _returned(None))  # refused: returned nothing
    crashed = _returned(RuntimeError("a bug"), JobStatus.FAILED)  # reading its value would raise the bug here
    summary.on_job_end(_job_config(tmp_path, "optimizer.lr=2"), crashed)
    _job_dir(tmp_path, "optimizer.lr=3", {"status": "failed", "error": "a bad value"})
    summary.on_job_end(_job_config(tmp_path, "optimizer.lr=3"), _returned(None))  # failed in a directory of its own
    # in a file: with hydra/launcher=joblib a worker process ends the job, not the one that ends the sweep
    assert (tmp_path / REFUSED).read_text() == "optimizer.lr=1\n"


def test_a_run_alone_is_no_sweep_job(tmp_path):
    """Hydra calls on_job_start and on_job_end for `python train.py` too, whose hydra.sweep.dir was never made: a
    record written there would fail, and Hydra would print the failure as a warning after every run."""
    config = _job_config(tmp_path / "logs" / "multiruns" / "2026-01-01_00-00-00", "run", RunMode.RUN)
    SweepSummary().on_job_start(config, task_function=None)
    SweepSummary().on_job_end(config, _returned(None))
    assert not (tmp_path / "logs").exists()


def test_the_summary_is_of_the_jobs_this_sweep_started_a_killed_one_included(tmp_path, capsys):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    hydra = {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["optimizer.lr=0.1,1,10"]}}
    config = OmegaConf.create({"hydra": hydra, "monitor": {"metric": "val/loss", "mode": "min"}})
    _job_dir(tmp_path, "optimizer.lr=100", {"status": "completed", "epochs": 3, "val/loss": 0.1})  # not this sweep's
    _job_dir(tmp_path, "optimizer.lr=10", {"status": "completed", "epochs": 3, "val/loss": 0.2})  # an earlier run
    summary = SweepSummary()
    summary.on_multirun_start(config)
    for name in ("optimizer.lr=0.1", "optimizer.lr=1", "optimizer.lr=10"):
        _job_dir(tmp_path, name)
        summary.on_job_start(_job_config(tmp_path, name), task_function=None)
    _job_dir(tmp_path, "optimizer.lr=0.1", {"status": "completed", "epochs": 3, "val/loss": 1.0})
    summary.on_job_end(_job_config(tmp_path, "optimizer.lr=0.1"), _returned(1.0))
    _job_dir(tmp_path, "optimizer.lr=1", {"status": "running", "host": socket.gethostname(), "pid": int(gone.stdout)})
    # and then kill -9: no on_job_end
    summary.on_job_end(_job_config(tmp_path, "optimizer.lr=10"), _returned(None))  # refused
    with pytest.raises(SystemExit) as ended:
        summary.on_multirun_end(config)
    assert ended.value.code == 1
    table = pd.read_csv(tmp_path / "summary.csv").set_index("job")
    assert table["status"].to_dict() == {
        "optimizer.lr=0.1": "completed",
        "optimizer.lr=1": "killed",
        "optimizer.lr=10": "refused",
    }
    assert table["val/loss"].isna().tolist() == [False, True, True]  # the earlier run's 0.2 is not the sweep's
    assert "Sweep of 3 jobs" in capsys.readouterr().out and not list(tmp_path.glob(".[!.]*"))


def test_a_sweep_interrupted_before_its_first_job_keeps_the_summary_its_directory_had(tmp_path, capsys):
    """Ctrl-C while the first job imported Lightning: the sweep's summary.csv and summary.png, of the sweep that
    ran there before, were deleted, or written again with one job, 'failed' with the error None, or 'completed'
    from the earlier run's metrics.json; and it said "Its jobs so far:"."""
    from dlbasics.sweep import end_stopped_sweep

    hydra = {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["optimizer.lr=0.1,1"]}}
    config = OmegaConf.create({"hydra": hydra, "monitor": {"metric": "val/loss", "mode": "min"}})
    _job_dir(tmp_path, "optimizer.lr=0.1", {"status": "completed", "epochs": 3, "val/loss": 0.1})
    for name in ("summary.csv", "summary.png"):
        (tmp_path / name).write_bytes(b"the earlier sweep's " + name.encode())
    for started in ([], ["optimizer.lr=0.1", "optimizer.lr=1"]):  # none; or two, one with an earlier run's metrics
        summary = SweepSummary()
        summary.on_multirun_start(config)
        for name in started:  # each as Hydra starts it, before the job has written anything of its own
            _job_dir(tmp_path, name)
            summary.on_job_start(_job_config(tmp_path, name), task_function=None)
        assert end_stopped_sweep(KeyboardInterrupt())
        assert (
            capsys.readouterr().err
            == "The sweep was interrupted. No job had begun; an earlier summary there is kept.\n"
        )
        for name in ("summary.csv", "summary.png"):
            assert (tmp_path / name).read_bytes() == b"the earlier sweep's " + name.encode()
        assert read_metrics(tmp_path / "optimizer.lr=0.1") == {"status": "completed", "epochs": 3, "val/loss": 0.1}


def test_a_job_is_named_by_what_the_sweep_varies_in_a_process_that_is_not_the_sweeps(tmp_path, monkeypatch):
    """submitit runs a job in a process of its own, whose command line is submitit's: the job's name is read from
    what the sweep recorded when it started."""
    from hydra import compose, initialize_config_dir

    hydra = {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["optimizer.lr=1e-3,1e-2", "trainer.max_epochs=3"]}}
    SweepSummary().on_multirun_start(OmegaConf.create({"hydra": hydra}))
    monkeypatch.setattr(sys, "argv", ["/site-packages/submitit/core/_submit.py", f"{tmp_path}/.submitit/%j"])
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):  # the job's config, as its process composes it
        job = compose("train", ["optimizer.lr=0.001", "trainer.max_epochs=3", f"hydra.sweep.dir={tmp_path}"], True)
    assert job.hydra.sweep.subdir == "optimizer.lr=0.001"  # not optimizer.lr=0.001,trainer.max_epochs=3


def test_a_job_killed_without_a_word_is_summarized_as_killed_and_fails_the_sweep(tmp_path, capsys):
    """kill -9 and the out-of-memory killer leave a job's metrics.json saying `running`; the summary tells such
    a job from one still running on this machine by its process."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    here = socket.gethostname()
    jobs = {
        "optimizer.lr=0.1": {"status": "completed", "epochs": 3, "val/loss": 0.5},
        "optimizer.lr=1": {"status": "running", "host": here, "pid": int(gone.stdout)},
        "optimizer.lr=10": {"status": "running", "host": here, "pid": alive.pid},
    }
    try:
        for name, metrics in jobs.items():
            (tmp_path / name / ".hydra").mkdir(parents=True)
            (tmp_path / name / ".hydra" / "overrides.yaml").write_text(f"- {name}\n")
            (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
        monitor = {"metric": "val/loss", "mode": "min"}
        config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}, "monitor": monitor})
        with pytest.raises(SystemExit) as ended:
            SweepSummary().on_multirun_end(config)
    finally:
        alive.kill()
        alive.wait()
    assert ended.value.code == 1
    table = pd.read_csv(tmp_path / "summary.csv")
    assert dict(zip(table["job"], table["status"], strict=True)) == {
        "optimizer.lr=0.1": "completed",
        "optimizer.lr=1": "killed",
        "optimizer.lr=10": "running",
    }
    assert "killed: optimizer.lr=1: its process ended without a word" in capsys.readouterr().err


@pytest.mark.parametrize(
    "stop, said",
    [
        (  # a worker killed with kill -9 stops joblib's launcher (its pool ends every job in it) or submitit's
            RuntimeError("A worker process managed by the executor was unexpectedly terminated."),
            "error: the sweep's launcher stopped: RuntimeError: A worker process managed by",
        ),
        (KeyboardInterrupt(), "The sweep was interrupted. Its jobs so far:"),  # Ctrl-C, SIGTERM
    ],
)
def test_a_sweep_stopped_before_its_end_is_summarized_and_fails(tmp_path, monkeypatch, capsys, stop, said):
    """Hydra does not end a sweep stopped by an exception: shell() writes its summary, its jobs as they ended."""
    from dlbasics.command import shell

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    hydra = {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["optimizer.lr=1e-3,1e-2"]}}
    config = OmegaConf.create({"hydra": hydra, "monitor": {"metric": "val/loss", "mode": "min"}})
    SweepSummary().on_multirun_start(config)
    for lr, metrics in [("0.001", {"status": "completed", "epochs": 3, "val/loss": 0.5}), ("0.01", {"pid": 0})]:
        job = tmp_path / f"optimizer.lr={lr}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={lr}\n")
        killed = {"status": "running", "host": socket.gethostname(), "pid": int(gone.stdout)}
        (job / "metrics.json").write_text(json.dumps(killed if "pid" in metrics else metrics))
    (tmp_path / ".jobs").write_text("optimizer.lr=0.001\noptimizer.lr=0.01\n")  # as they started

    def launcher_stops():
        raise stop

    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # put back after the test: shell() sets it
    with pytest.raises(SystemExit) as ended:
        shell(launcher_stops)
    assert ended.value.code == 1
    table = pd.read_csv(tmp_path / "summary.csv")
    assert dict(zip(table["job"], table["status"], strict=True)) == {
        "optimizer.lr=0.001": "completed",
        "optimizer.lr=0.01": "killed",
    }
    err = capsys.readouterr().err
    assert err.startswith(said)
    assert "killed: optimizer.lr=0.01: its process ended without a word" in err and "Traceback" not in err
    with pytest.raises(type(stop)):  # ended: another stop is not a sweep's any more
        shell(launcher_stops)


def test_a_summary_that_breaks_fails_the_sweep(tmp_path, monkeypatch, capsys):
    """Hydra turns a callback's exception into a warning: the sweep would exit 0, failed jobs or not."""
    config = OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(tmp_path)}}, "monitor": {"metric": "val/loss", "mode": "min"}}
    )

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("dlbasics.sweep.summarize", broken)
    with pytest.raises(SystemExit) as ended:
        SweepSummary().on_multirun_end(config)
    err = capsys.readouterr().err
    assert ended.value.code == 1 and "KeyError: 'a bug'" in err
    assert err.endswith("error: the sweep's summary failed (above); each job's directory holds its results\n")


def test_overrides_with_an_interpolation_are_read_as_typed(tmp_path):
    """`model.width=${model.depth}` is a valid override: the resume line and a sweep's job names keep it as
    typed (Hydra's record of it, read as a config, resolved it where nothing is named, and the run failed)."""
    from dlbasics.run import resume_hint
    from dlbasics.sweep import job_dirname, varied_keys

    typed = ["model.width=${model.depth}", "optimizer.lr=0.1,0.01"]
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(typed[:1]), tmp_path / ".hydra" / "overrides.yaml")
    assert resume_hint(tmp_path) == (
        f"Resume: python train.py 'model.width=${{model.depth}}' hydra.run.dir={tmp_path} ckpt_path=last"
    )
    assert varied_keys(OmegaConf.create({"hydra": {"overrides": {"task": typed}}})) == ["optimizer.lr"]
    job = OmegaConf.create({"model": {"depth": 1}, "hydra": {"overrides": {"task": [typed[0], "optimizer.lr=0.1"]}}})
    assert job_dirname(job.hydra.overrides.task) == "model.width=${model.depth},optimizer.lr=0.1"  # not width=1


def test_a_sweep_over_values_with_a_slash_names_one_directory_per_job_and_summarizes_them(tmp_path):
    result = run_script(
        "train.py", "-m", "monitor.metric=val/loss,train/loss", "trainer.max_epochs=2", "logger=none",
        f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "monitor.metric=train%2Floss",
        "monitor.metric=val%2Floss",
    ]
    assert sorted(pd.read_csv(tmp_path / "summary.csv")["monitor.metric"]) == ["train/loss", "val/loss"]


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_value_given_twice_runs_once_and_the_sweep_says_so(tmp_path, launcher):
    result = run_script(
        "train.py", "-m", "optimizer.lr=1e-3,1e-3,1e-2", "trainer.max_epochs=2", "logger=none",
        f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 1
    summary = pd.read_csv(tmp_path / "summary.csv").sort_values(["optimizer.lr", "status"])
    assert summary[["optimizer.lr", "status"]].values.tolist() == [
        [0.001, "completed"],
        [0.001, "refused"],
        [0.01, "completed"],
    ]
    assert "refused: optimizer.lr=0.001: the same job as another of this sweep (a value given twice)" in result.stderr
    assert "already holds a run" not in result.stderr  # the run it found is this sweep's own, not one to resume
