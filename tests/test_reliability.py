"""Runs that are interrupted, resumed, repeated, or handed a file that is not theirs."""

import errno
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import dlbasics.run
from dlbasics.callbacks import Checkpoints
from dlbasics.command import cli, shell
from dlbasics.data import TabularData
from dlbasics.errors import UserError
from dlbasics.module import Learner
from dlbasics.run import claim, evaluate, train

from .conftest import ROOT, make_cfg, read_metrics, run_script

STEPS_PER_EPOCH = 6  # iris: 90 training rows in batches of 16


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_interrupt_keeps_the_last_epoch_and_resume_ends_where_an_uninterrupted_run_does(tmp_path):
    run_dir, epochs = tmp_path / "run", 2000  # an epoch takes 1 to 8 ms: interrupted well before the end
    args = [sys.executable, "train.py", "logger=csv", f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = run_dir / "train.log", time.time() + 120
    while not (log.exists() and "Total params" in log.read_text()):  # training has started
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0

    metrics = read_metrics(run_dir)
    assert metrics["status"] == "interrupted" and 0 < metrics["epochs"] < epochs
    assert f"hydra.run.dir={run_dir} ckpt_path=last" in err.splitlines()[-1]
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    trained = last["epoch"] + 1  # the epochs whose training and validation the checkpoint holds
    assert trained in (metrics["epochs"], metrics["epochs"] + 1)  # see the SIGTERM test
    assert last["global_step"] == trained * STEPS_PER_EPOCH
    # the logger's hparams.yaml held {} where the run did not reach its end: it holds the checkpoint's from the start
    assert yaml.safe_load((run_dir / "hparams.yaml").read_text()) == last["hyper_parameters"]
    # every epoch it completed is in its CSV log, which Lightning writes a hundred steps at a time
    assert set(pd.read_csv(run_dir / "metrics.csv").dropna(subset="train/loss")["epoch"]) >= set(range(trained))

    resumed = subprocess.run([*args, "ckpt_path=last"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    path = run_dir / "checkpoints" / "last.ckpt"
    assert f"Resuming '{path}' after epoch {trained} of {epochs}.\n" in resumed.stdout  # not a fresh run's look
    assert read_metrics(run_dir)["status"] == "completed" and read_metrics(run_dir)["epochs"] == epochs
    logged = pd.read_csv(run_dir / "metrics.csv").dropna(subset="train/loss")
    assert set(logged["epoch"]) == set(range(epochs))  # both segments', no gap
    assert (
        torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == epochs * STEPS_PER_EPOCH
    )

    reference = train(make_cfg(tmp_path / "reference", "logger=none", f"trainer.max_epochs={epochs}"))
    assert reference["status"] == "completed"
    ours, theirs = (
        _weights(run_dir / "checkpoints" / "last.ckpt"),
        _weights(tmp_path / "reference/checkpoints/last.ckpt"),
    )
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)  # bitwise


def test_sigterm_stops_a_run_as_ctrl_c_does_and_a_run_refused_meanwhile_changes_nothing(tmp_path):
    args = [sys.executable, "train.py", "logger=none", "trainer.max_epochs=100000", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = tmp_path / "train.log", time.time() + 120
    while not (log.exists() and "Total params" in log.read_text()):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    record = {p: p.read_bytes() for p in (tmp_path / ".hydra").iterdir()}
    refused = run_script(
        "train.py", "logger=none", "trainer.max_epochs=3", f"hydra.run.dir={tmp_path}", "ckpt_path=last"
    )
    assert refused.returncode == 2 and f"is still running (process {proc.pid})" in refused.stderr
    assert {p: p.read_bytes() for p in (tmp_path / ".hydra").iterdir()} == record  # Hydra's record of the run
    assert proc.poll() is None
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert err.strip().endswith(
        f"Resume: python train.py logger=none trainer.max_epochs=100000 hydra.run.dir={tmp_path} ckpt_path=last"
    )
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "interrupted" and metrics["epochs"] < 100000
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    # The last epoch whose training and validation ended: the one before the interrupted epoch, or that
    # epoch itself when the signal came after its validation but before Lightning counted it as completed
    # (metrics.json's `epochs`). Lightning's own checkpoints are taken in that same window.
    assert last["epoch"] in (metrics["epochs"] - 1, metrics["epochs"])


def test_a_full_disk_is_one_line_and_leaves_the_checkpoints_written_whole(tmp_path, monkeypatch, capsys):
    from lightning.pytorch.strategies import Strategy

    save, written = Strategy.save_checkpoint, []

    def fill_up(self, checkpoint, path, storage_options=None):
        if len(written) == 2:  # best.ckpt and last.ckpt of epoch 1 fit; the disk is full from then on
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device", path)
        written.append(checkpoint["epoch"])
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(Strategy, "save_checkpoint", fill_up)
    with pytest.raises(SystemExit) as exit_:
        cli(train, make_cfg(tmp_path, "callbacks.model_checkpoint.write_seconds=0", "logger=none"))
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        f"error: the disk is full writing '{tmp_path / 'checkpoints' / 'best.ckpt.tmp'}'. Free some space, or give "
        "the run a directory on another disk.\n"
    )
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]  # no .tmp
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert read_metrics(tmp_path)["status"] == "failed"  # where a small file still fits


def test_a_second_run_in_a_run_directory_is_refused_and_the_first_kept(tmp_path, capsys):
    train(make_cfg(tmp_path, "trainer.max_epochs=2"))  # with TensorBoard's event files
    kept = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".hydra" not in p.parts}
    with pytest.raises(SystemExit) as exit_:
        cli(train, make_cfg(tmp_path, "trainer.max_epochs=4"))
    assert exit_.value.code == 2
    assert f"hydra.run.dir: '{tmp_path}' already holds a run" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".hydra" not in p.parts} == kept
    first = read_metrics(tmp_path) | {"seconds": 100.0}  # as if its first segment had taken 100 s
    (tmp_path / "metrics.json").write_text(json.dumps(first))
    cfg, start = make_cfg(tmp_path, "trainer.max_epochs=4", "ckpt_path=last"), time.perf_counter()
    resumed = train(cfg)  # resuming it is the way on
    assert resumed["status"] == "completed" and resumed["epochs"] == 4
    assert 100 < resumed["seconds"] <= 100 + time.perf_counter() - start  # its time is both segments'
    claim(tmp_path, resuming=True)  # a third segment, killed before it could write a word
    assert read_metrics(tmp_path)["status"] == "running" and read_metrics(tmp_path)["seconds"] == resumed["seconds"]


def test_a_run_that_failed_before_it_trained_leaves_its_directory_to_the_command_put_right(tmp_path, capsys):
    """A student's command with a mistake, run again put right in the same hydra.run.dir, was refused as if that
    directory held a run to resume; one that failed after it had trained keeps its checkpoints."""
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path, "logger=none", "data.batch_size=0"))
    assert read_metrics(tmp_path)["status"] == "failed" and "data.batch_size" in capsys.readouterr().err
    assert train(make_cfg(tmp_path, "logger=none"))["status"] == "completed"
    (tmp_path / "metrics.json").write_text(json.dumps({"status": "failed", "epochs": 2, "error": "a bug"}))
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path, "logger=none"))
    assert f"'{tmp_path}' already holds a run" in capsys.readouterr().err


def test_a_resume_with_the_data_scaled_otherwise_or_another_loss_is_refused(tmp_path, capsys):
    """Its weights stand for the units they were trained in: data.standardize=false after true, or a checkpoint of
    a version that did not scale the target, resumed to test r2 -1.25 and -448, as completed."""
    train(make_cfg(tmp_path, "data=boston", "logger=none", "trainer.max_epochs=2"))
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path, "data=boston", "logger=none", "data.standardize=false", "ckpt_path=last"))
    assert (
        "holds a model trained with other options (its data scaled otherwise (data.standardize"
        in capsys.readouterr().err
    )
    # chapter 1's sum after the mean: its best val/loss (an MSE of 42) would stay best against sums in the 1000s
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path, "data=boston", "logger=none", "loss=sse", "ckpt_path=last"))
    assert "holds a model trained with other options (loss=auto)" in capsys.readouterr().err
    # the loss that auto stands for is the same one
    assert train(make_cfg(tmp_path, "data=boston", "logger=none", "loss=mse", "ckpt_path=last"))["epochs"] == 3


def test_a_resume_on_other_data_of_the_same_sizes_is_refused(tmp_path, make_csv, capsys):
    data = ["data=csv", f"data.path={make_csv(kind='regression')}", "logger=none"]
    train(make_cfg(tmp_path, *data, "data.target=y"))
    for overrides, was in [
        (["data.target=y", "data.features=[f2,f1,f0]"], "data.features=['f0', 'f1', 'f2']"),  # each weight its input
        (["data.target=f0", "data.features=[y,f1,f2]"], "data.target=y"),
    ]:
        with pytest.raises(SystemExit):
            cli(train, make_cfg(tmp_path, *data, *overrides, "trainer.max_epochs=5", "ckpt_path=last"))
        assert f"holds a model trained with other options ({was}" in capsys.readouterr().err


def test_a_resume_refused_before_training_leaves_the_run_as_it_ended(tmp_path, capsys):
    run_dir = tmp_path / "optimizer.lr=0.001"  # a sweep job's
    loggers = "logger=[tensorboard,csv]"  # their writers are made once the resume is past its checks
    train(make_cfg(run_dir, loggers, "trainer.max_epochs=3"))

    def files():  # and their times, by which a sweep tells a job that found its directory taken and did not run
        return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run_dir.rglob("*") if p.is_file()}

    kept, last = files(), run_dir / "checkpoints" / "last.ckpt"
    for overrides, message in [
        (["trainer.max_epochs=2"], f"trainer.max_epochs=2: '{last}' has trained 3 epochs already. Resume with more"),
        (  # the path quoted for Hydra and the shell, as pasted
            ["trainer.max_epochs=3"],
            f"""has trained 3 epochs already. Resume with more, e.g. trainer.max_epochs=6, or test it with """
            f"""python eval.py 'ckpt_path="{last}"'.""",
        ),
        (["model.width=8"], "holds a model trained with other options (model.width=100)"),
        # its optimizer's state would set the learning rate back to 0.001 and record 0.01; SGD would not load it
        (["optimizer.lr=0.01"], "holds a model trained with other options (optimizer.lr=0.001). Resume with"),
        (["optimizer=sgd"], "holds a model trained with other options (optimizer._target_=torch.optim.Adam)."),
        (["data.split_seed=3"], "holds a model trained with other options (data.split_seed=0)"),  # other rows
        # another batch order: not the run it continues; its best val/loss and the new ones in other units
        (["seed=7"], "holds a model trained with other options (seed=42)"),
        (["data.batch_size=32"], "holds a model trained with other options (data.batch_size=16)"),
        (  # other data: the CSV it was trained on, and its options; not the sizes and classes they gave
            ["data=boston"],
            "holds a model trained with other options (data.path=data/iris.csv, data.task=multiclass, "
            "data.target=target, data.features=['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', "
            "'petal width (cm)'], data.batch_size=16). Resume with",
        ),
        (  # an optimizer's options are checked as the run is built, before the resume trains
            ["optimizer=sgd", "optimizer._target_=torch.optim.LBFGS", "~optimizer.momentum", "~optimizer.weight_decay"],
            "optimizer._target_: LBFGS is not supported",
        ),
    ]:
        with pytest.raises(SystemExit) as exit_:
            cli(train, make_cfg(run_dir, loggers, *overrides, "ckpt_path=last"))
        assert exit_.value.code == 2 and message in capsys.readouterr().err
        assert files() == kept  # metrics.json, the TensorBoard events and metrics.csv too


def test_a_run_stopped_after_training_resumes_to_its_test(tmp_path, caplog):
    """Ctrl-C while it tested printed a resume line, which was then refused as having trained its epochs."""
    finished = train(make_cfg(tmp_path, "logger=none", "trainer.max_epochs=3"))
    last_epoch = {k: v for k, v in finished.items() if k.startswith(("train/", "val/")) and "best" not in k}
    stopped = {"status": "interrupted", **last_epoch, "epochs": 3, "seconds": 1.0}  # as Ctrl-C in its test leaves it
    (tmp_path / "metrics.json").write_text(json.dumps(stopped))
    with caplog.at_level("INFO", logger="dlbasics"):
        resumed = train(make_cfg(tmp_path, "logger=none", "trainer.max_epochs=3", "ckpt_path=last"))
    assert resumed["status"] == "completed" and resumed["epochs"] == 3
    assert (
        f"Resuming '{tmp_path / 'checkpoints' / 'last.ckpt'}': its 3 epochs are trained; testing it." in caplog.messages
    )
    assert {k: v for k, v in resumed.items() if "/" in k} == {k: v for k, v in finished.items() if "/" in k}
    with pytest.raises(SystemExit):  # completed now: nothing left to do
        cli(train, make_cfg(tmp_path, "logger=none", "trainer.max_epochs=3", "ckpt_path=last"))


def test_ctrl_c_before_training_says_so_and_leaves_the_directory_free(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as while a large CSV is read

    monkeypatch.setattr(TabularData, "__init__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(tmp_path, "logger=none"))
    assert capsys.readouterr().err.startswith("Interrupted before training. Resume: python ")
    assert read_metrics(tmp_path)["status"] == "interrupted"
    monkeypatch.undo()
    assert train(make_cfg(tmp_path, "logger=none"))["status"] == "completed"  # the same command again

    def main():
        raise KeyboardInterrupt

    monkeypatch.setenv("HYDRA_FULL_ERROR", "")  # shell() sets it for Hydra: unset again after the test
    with pytest.raises(SystemExit) as exit_:  # not a traceback
        shell(main)
    assert exit_.value.code == 1


def _ctrl_c_after_epoch(monkeypatch, epoch: int) -> None:
    """Ctrl-C as the module's end of an epoch (0-based) has logged it, before its checkpoint is written."""
    learner_epoch_end = Learner.on_train_epoch_end

    def pressed(learner):
        learner_epoch_end(learner)
        if learner.current_epoch == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(Learner, "on_train_epoch_end", pressed)


def test_an_interrupted_run_keeps_its_last_epochs_metrics_and_its_best(tmp_path, monkeypatch):
    """Its metrics.json held its status and epochs only: an interrupted sweep's summary, "best first by val/loss",
    had no val/loss to rank its jobs by."""
    _ctrl_c_after_epoch(monkeypatch, 2)
    with pytest.raises(SystemExit):
        train(make_cfg(tmp_path, "logger=csv", "trainer.max_epochs=5"))
    metrics, log = read_metrics(tmp_path), pd.read_csv(tmp_path / "metrics.csv")
    val = log["val/loss"].dropna()
    assert metrics["status"] == "interrupted" and len(val) == 3  # epochs 1 to 3, the third's not checkpointed
    assert metrics["val/loss"] == pytest.approx(val.iloc[-1])
    assert metrics["val/loss_best"] == pytest.approx(val.iloc[:2].min())  # its best checkpoint's
    assert metrics["train/loss"] == pytest.approx(log["train/loss"].dropna().iloc[-1])


def test_ctrl_c_in_a_run_without_checkpoints_offers_no_resume(tmp_path, monkeypatch, capsys):
    """Its `Resume: ... ckpt_path=last` found no last.ckpt, and trained afresh into the same directory."""
    _ctrl_c_after_epoch(monkeypatch, 1)
    with pytest.raises(SystemExit):  # as Lightning turns Ctrl-C into
        train(make_cfg(tmp_path, "logger=none", "callbacks.model_checkpoint=null"))
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"Interrupted in epoch 2. It kept no checkpoint to resume from; its logs and metrics.json are in {tmp_path}."
    )
    assert read_metrics(tmp_path)["status"] == "interrupted"
    monkeypatch.undo()
    with pytest.raises(SystemExit):  # the same command again: its logs are kept, and no way on is offered
        cli(train, make_cfg(tmp_path, "logger=none", "callbacks.model_checkpoint=null"))
    assert capsys.readouterr().err == (
        f"error: hydra.run.dir: '{tmp_path}' already holds a run (its metrics.json). It kept no checkpoint to go on "
        "from: give this run a directory of its own: hydra.run.dir=...\n"
    )


@pytest.mark.parametrize("script", ["train.py", "eval.py", "predict.py"])
def test_ctrl_c_while_the_script_imports_is_one_line(tmp_path, script):
    """Before shell() runs (lightning imports for seconds), Ctrl-C was the traceback of whichever import it hit."""
    args = [sys.executable, "-X", "importtime", script, f"hydra.run.dir={tmp_path}"]  # importtime: each import done
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # torch is imported by lightning, which takes seconds more
        if line.rsplit("|", 1)[-1].strip() == "torch":
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err
    assert err.splitlines()[-1] == "Interrupted before anything ran."
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_refused_resume_leaves_hydras_record_of_the_run(tmp_path):
    first = run_script("train.py", "logger=none", "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr
    kept = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = run_script("train.py", "logger=none", "trainer.max_epochs=4", "optimizer.lr=0.01", "ckpt_path=last",
                       f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert again.returncode == 2 and "(optimizer.lr=0.001). Resume with the options it was" in again.stderr
    # its .hydra/overrides.yaml, which the message names, said optimizer.lr=0.01 and config.yaml lr: 0.01
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "train.log"} == {
        p: b for p, b in kept.items() if p.name != "train.log"
    }


def test_resuming_where_there_is_no_last_checkpoint_yet_says_so_and_trains_afresh(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        metrics = train(make_cfg(tmp_path, "logger=none", "ckpt_path=last"))
    assert metrics["status"] == "completed" and metrics["epochs"] == 3
    assert f"ckpt_path=last: no last.ckpt in '{tmp_path / 'checkpoints'}' yet; training starts afresh." in caplog.text


def test_a_run_directory_moved_and_resumed_keeps_its_best_checkpoint(tmp_path, caplog, capsys):
    """Lightning keeps a best checkpoint's score only in the directory it was taken in: a run copied to another
    machine and resumed there chose a worse later epoch as its best, overwrote best.ckpt with it and tested it."""
    common = ["logger=none", "data.batch_size=16", "optimizer.lr=0.5", "callbacks.model_checkpoint.write_seconds=0"]
    alone = train(make_cfg(tmp_path / "alone", *common, "trainer.max_epochs=12"))
    assert torch.load(alone["checkpoint"], weights_only=True)["epoch"] < 6  # its best is before the resume
    train(make_cfg(tmp_path / "first", *common, "trainer.max_epochs=6"))
    moved = (tmp_path / "first").rename(tmp_path / "moved")
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        resumed = train(make_cfg(moved, *common, "trainer.max_epochs=12", "ckpt_path=last"))
    assert resumed["checkpoint"] == str(moved / "checkpoints" / "best.ckpt")
    for key in ("val/loss_best", "test/loss", "test/acc"):
        assert resumed[key] == alone[key]
    assert "chosen anew" not in caplog.text
    # from a checkpoint of another run, into a new directory: the best is this directory's, from its first epoch
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        other = train(
            make_cfg(tmp_path / "new", *common, "trainer.max_epochs=12", f"ckpt_path={resumed['checkpoint']}")
        )
    assert other["checkpoint"] == str(tmp_path / "new" / "checkpoints" / "best.ckpt")
    assert f"The best checkpoint is chosen anew in this run's directory ({tmp_path / 'new' / 'checkpoints'})." in (
        caplog.text
    )
    # another run's checkpoint into a directory that holds a run would overwrite it (and had its best tested)
    kept = {p: p.read_bytes() for p in (tmp_path / "alone").rglob("*") if p.is_file()}
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path / "alone", *common, "trainer.max_epochs=20", f"ckpt_path={other['checkpoint']}"))
    assert "already holds a run (its metrics.json, completed)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (tmp_path / "alone").rglob("*") if p.is_file()} == kept


def test_resuming_a_run_whose_process_still_runs_is_refused(tmp_path, capsys):
    train(make_cfg(tmp_path, "logger=none", "trainer.max_epochs=2"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # as if that process were training in this directory
        (tmp_path / "metrics.json").write_text(
            json.dumps({"status": "running", "host": socket.gethostname(), "pid": other.pid})
        )
        with pytest.raises(SystemExit):
            cli(train, make_cfg(tmp_path, "logger=none", "trainer.max_epochs=4", "ckpt_path=last"))
        assert f"is still running (process {other.pid})" in capsys.readouterr().err
    finally:
        other.kill()
        other.wait()
    resumed = train(make_cfg(tmp_path, "logger=none", "trainer.max_epochs=4", "ckpt_path=last"))  # it ended
    assert resumed["status"] == "completed" and resumed["epochs"] == 4


def test_a_resume_started_while_another_claims_the_run_waits_for_it_and_is_refused(tmp_path):
    """Two resumes started at once both read the run's metrics.json as interrupted, before either had written its
    own `running`: both trained into one directory, each overwriting the other's checkpoints."""
    (tmp_path / "metrics.json").write_text(json.dumps({"status": "interrupted", "epochs": 3}))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"a checkpoint")
    other, outcome = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]), []

    def resume():
        try:
            outcome.append(claim(tmp_path, resuming=True))
        except UserError as err:
            outcome.append(str(err))

    try:
        with dlbasics.run._locked(tmp_path):  # the other resume, claiming the run as this one starts
            resuming = threading.Thread(target=resume)
            resuming.start()
            time.sleep(0.2)
            running = {"status": "running", "host": socket.gethostname(), "pid": other.pid}
            (tmp_path / "metrics.json").write_text(json.dumps(running))
        resuming.join()
    finally:
        other.kill()
        other.wait()
    assert outcome == [
        f"ckpt_path: the run in '{tmp_path}' is still running (process {other.pid}). Let it end, or stop it "
        "(Ctrl-C keeps its last epoch), then resume."
    ]
    assert json.loads((tmp_path / "metrics.json").read_text()) == running  # the other's claim, as it wrote it


def test_a_resume_with_another_monitored_metric_says_its_best_is_chosen_anew(tmp_path, caplog):
    """Lightning's warning was a dict of the checkpoint callback's state key, to be 'provided' to the Trainer."""
    train(make_cfg(tmp_path, "logger=none", "trainer.max_epochs=2"))
    with warnings.catch_warnings(record=True) as warned, caplog.at_level("INFO", logger="dlbasics"):
        warnings.simplefilter("always")
        resumed = train(
            make_cfg(tmp_path, "logger=none", "trainer.max_epochs=4", "ckpt_path=last", "monitor.metric=val/acc")
        )
    assert resumed["status"] == "completed" and "val/acc_best" in resumed
    assert (
        "Checkpoints: the checkpoint's state is of other options (monitor val/loss -> val/acc, mode min -> max); "
        "it starts anew." in caplog.messages
    )
    assert not [w for w in warned if "ckpt_path" in str(w.message)]


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        metrics = train(make_cfg(tmp_path / name, f"seed={seed}", "trainer.max_epochs=5", "logger=none"))
        runs[name] = ({k: v for k, v in metrics.items() if k not in ("seconds", "checkpoint")}, name)
    assert runs["a"][0] == runs["b"][0]
    assert runs["a"][0]["val/loss"] != runs["c"][0]["val/loss"]
    a, b, c = (_weights(tmp_path / n / "checkpoints" / "last.ckpt") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


def test_a_write_that_dies_halfway_leaves_the_previous_checkpoint_whole(tmp_path):
    metrics = train(make_cfg(tmp_path, "trainer.max_epochs=2", "logger=none"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    class Dying:
        is_global_zero = True

        class strategy:  # noqa: N801
            @staticmethod
            def save_checkpoint(checkpoint, path):
                with open(path, "wb") as f:
                    f.write(b"PK\x03\x04 half a checkpoint")
                raise KeyboardInterrupt  # killed mid-write

    callback = Checkpoints(dirpath=str(tmp_path / "checkpoints"))
    callback._pending = {str(last): {"state_dict": {}}}
    with pytest.raises(KeyboardInterrupt):
        callback.write(Dying)
    assert last.read_bytes() == before
    assert metrics["epochs"] == 2 and set(_weights(last))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is refused: it is not a complete PyTorch checkpoint"),
        ("truncated", "is refused: it is not a complete PyTorch checkpoint"),
        ("pickled", "is refused: it holds pickled objects, not only tensors and plain values"),
        ("plain", "is a PyTorch file but not a dlbasics checkpoint"),
    ],
)
def test_files_that_are_not_our_checkpoints_are_refused(tmp_path, capsys, content, message):
    path = tmp_path / "x.ckpt"
    if content == "truncated":
        train(make_cfg(tmp_path / "run", "trainer.max_epochs=1", "logger=none"))
        whole = (tmp_path / "run" / "checkpoints" / "best.ckpt").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif content == "pickled":
        torch.save({"hyper_parameters": {"data": Checkpoints}}, path)
    elif content == "plain":
        torch.save({"weights": torch.zeros(3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_:
        cli(evaluate, make_cfg(tmp_path, f"ckpt_path={path}", config="eval"))
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_resumed_run_adds_its_epochs_to_the_csv_log_it_had(tmp_path):
    """Lightning's CSVLogger deletes the metrics.csv it finds: the resumed run's file held its own epochs only."""
    train(make_cfg(tmp_path, "logger=csv", "trainer.max_epochs=2"))
    train(make_cfg(tmp_path, "logger=csv", "trainer.max_epochs=4", "ckpt_path=last"))
    log = pd.read_csv(tmp_path / "metrics.csv")
    assert log["epoch"].dropna().astype(int).tolist() == [0, 1, 2, 2, 3, 4]  # a test row after each run
    assert log["val/loss"].notna().sum() == 4 and log["test/loss"].notna().sum() == 2


def test_a_resumed_runs_csv_log_drops_the_epochs_logged_after_its_checkpoint(tmp_path):
    """Ctrl-C between an epoch's log and its checkpoint: the resumed run logged that epoch again, a second row."""
    train(make_cfg(tmp_path, "logger=csv", "trainer.max_epochs=2"))
    log = pd.read_csv(tmp_path / "metrics.csv")
    after = log[log["val/loss"].notna()].tail(1).assign(step=18, epoch=2, **{"val/loss": 99.0})  # 6 steps an epoch
    pd.concat([log, after]).to_csv(tmp_path / "metrics.csv", index=False)
    train(make_cfg(tmp_path, "logger=csv", "trainer.max_epochs=4", "ckpt_path=last"))
    log = pd.read_csv(tmp_path / "metrics.csv")
    val = log[log["val/loss"].notna()]
    assert val["step"].tolist() == [6, 12, 18, 24] and 99.0 not in val["val/loss"].tolist()
    assert log["test/loss"].notna().sum() == 2  # the first segment's test row is its own, at step 12


def _val_losses(run_dir) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars("val/loss")]


def _logged_after_the_checkpoint(run_dir, steps: list[int]) -> None:
    """What a run killed with -9 leaves: epochs logged after the last checkpoint it wrote."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    for step in steps:
        writer.add_scalar("val/loss", 99.0, step)
    writer.close()


def test_tensorboard_shows_a_resumed_run_once_from_the_step_it_resumes(tmp_path):
    """A resume, or a run that trains afresh in a killed run's directory, hides what was logged from that step on:
    TensorBoard showed the epochs after the last checkpoint twice, or the dead attempt's curve under the new."""
    train(make_cfg(tmp_path, "trainer.max_epochs=2"))
    (last,) = {step for step, _ in _val_losses(tmp_path)} - {6}  # 6 steps an epoch
    _logged_after_the_checkpoint(tmp_path, [last + 6, last + 12])
    time.sleep(1.1)  # event files are named to the second: the resumed one is read after them
    train(make_cfg(tmp_path, "trainer.max_epochs=4", "ckpt_path=last"))
    steps, values = zip(*_val_losses(tmp_path), strict=True)
    assert steps == (6, 12, 18, 24) and 99.0 not in values
    afresh = tmp_path / "afresh"
    _logged_after_the_checkpoint(afresh, [6, 12, 18, 24, 30])
    time.sleep(1.1)
    train(make_cfg(afresh, "ckpt_path=last"))  # no last.ckpt: the run starts afresh, its curve from step 0
    steps, values = zip(*_val_losses(afresh), strict=True)
    assert steps == (6, 12, 18) and 99.0 not in values
