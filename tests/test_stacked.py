"""hydra/launcher=stacked: jobs differing only in learning rate and seed, trained as one model, end as if alone."""

import logging
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from dlbasics.run import load_learner, train
from dlbasics.stacked import stack_key

from .conftest import make_cfg, read_hparams, read_metrics, run_script

SWEEP = ["optimizer.lr=0.003,0.03", "seed=0,1", "model.width=8,16"]
COMMON = ["data=iris", "data.batch_size=16", "trainer.max_epochs=6", "callbacks.model_checkpoint.write_seconds=0"]


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    """8 iris jobs in minibatches: two stacks of four (two learning rates x two seeds), one per width."""
    sweep_dir = tmp_path_factory.mktemp("stacked")
    result = run_script(
        "train.py", "-m", *SWEEP, *COMMON, "hydra/launcher=stacked", f"hydra.sweep.dir={sweep_dir}"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return sweep_dir, result


def _job(sweep_dir, lr, seed, width):
    return sweep_dir / f"model.width={width},optimizer.lr={lr},seed={seed}"


@pytest.mark.parametrize("lr,seed,width", [("0.03", 1, 16), ("0.003", 0, 8)])
def test_each_stacked_job_ends_with_the_weights_of_the_job_run_alone(stacked, tmp_path, lr, seed, width):
    sweep_dir, _ = stacked
    alone = train(make_cfg(tmp_path, *COMMON, f"optimizer.lr={lr}", f"seed={seed}", f"model.width={width}"))
    job = _job(sweep_dir, lr, seed, width)
    together = read_metrics(job)
    for name in ("last", "best"):
        mine = torch.load(job / "checkpoints" / f"{name}.ckpt", weights_only=True)
        theirs = torch.load(tmp_path / "checkpoints" / f"{name}.ckpt", weights_only=True)
        assert mine["epoch"] == theirs["epoch"] and mine["global_step"] == theirs["global_step"]
        assert mine["loops"] == theirs["loops"] and mine["hyper_parameters"] == theirs["hyper_parameters"]
        for key, value in theirs["state_dict"].items():
            torch.testing.assert_close(mine["state_dict"][key], value, rtol=1e-4, atol=1e-5)
        mine_opt, theirs_opt = mine["optimizer_states"][0], theirs["optimizer_states"][0]
        assert mine_opt["param_groups"] == theirs_opt["param_groups"]  # its own learning rate and numbering
        for i, state in theirs_opt["state"].items():
            torch.testing.assert_close(mine_opt["state"][i]["exp_avg_sq"], state["exp_avg_sq"], rtol=1e-3, atol=1e-8)
            assert mine_opt["state"][i]["step"] == state["step"]  # each parameter's own count, as alone
    for key in ("val/loss", "test/loss", "test/acc"):
        assert together[key] == pytest.approx(alone[key], rel=1e-4, abs=1e-6)
    assert together["status"] == alone["status"] == "completed" and together["epochs"] == alone["epochs"] == 6


def test_each_stacked_job_has_the_outputs_of_a_run(stacked):
    sweep_dir, result = stacked
    assert "Launching 8 jobs locally: 8 in 2 stack(s), 0 alone" in result.stdout
    assert result.stdout.count("4 jobs trained side by side as one stacked model (optimizer.lr, seed differ)") == 2
    assert result.stdout.count("Total params:") == 2  # one model summary a stack
    job = _job(sweep_dir, "0.03", 1, 16)
    assert yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) == [
        "optimizer.lr=0.03", "seed=1", "model.width=16", *COMMON, ]  # fmt: skip
    events = sorted(p.suffix for p in job.glob("events.out.tfevents.*"))
    assert len(events) == 2 and events[-1] == ".hparams"  # a TensorBoard run of its own: its scalars and options
    hparams = read_hparams(job)  # what the command line gave, beside the groups' options: the table tells jobs apart
    assert hparams["optimizer.lr"] == pytest.approx(0.03) and hparams["seed"] == 1 and hparams["data"] == "iris"
    assert hparams["trainer.max_epochs"] == 6 and hparams["callbacks.model_checkpoint.write_seconds"] == 0
    log = (job / "train.log").read_text()
    assert f"Run directory: {job}" in log and log.count("Run directory:") == 1
    learner = load_learner(job / "checkpoints" / "best.ckpt")  # a checkpoint of one model, as eval.py reads it
    assert learner.hparams.optimizer["lr"] == 0.03 and learner.model[0].out_features == 16
    saved = torch.load(job / "checkpoints" / "best.ckpt", weights_only=True)["hyper_parameters"]
    assert yaml.safe_load((job / "hparams.yaml").read_text()) == saved  # its own, as a run alone's
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 8 and (sweep_dir / "summary.csv").is_file()


def test_a_stacked_job_resumes_on_its_own(stacked, tmp_path):
    sweep_dir, _ = stacked
    copy = shutil.copytree(_job(sweep_dir, "0.003", 1, 8), tmp_path / "resumed")  # resumed in place, as a user would
    more = ["optimizer.lr=0.003", "seed=1", "model.width=8", *COMMON[:-1], "trainer.max_epochs=8"]
    resumed = train(make_cfg(copy, *more, "ckpt_path=last"))
    alone = train(make_cfg(tmp_path / "alone", *more))
    assert resumed["epochs"] == 8 and resumed["val/loss"] == pytest.approx(alone["val/loss"], rel=1e-4)


def test_only_jobs_that_differ_in_learning_rate_and_seed_share_a_stack(tmp_path):
    def key(*overrides):
        return stack_key(make_cfg(tmp_path, *overrides))

    assert key("optimizer.lr=0.1", "seed=1") == key("optimizer.lr=0.01", "seed=2") is not None
    assert key("model.width=8") != key("model.width=16")
    assert key("optimizer=sgd") != key("optimizer=adam")
    assert key("ckpt_path=last") is None  # a resumed run, and a distributed one, run on their own
    assert key("trainer=ddp_cpu") is None
    # a member's weights are updated as one flat row: only by an optimizer that treats each number on its own
    assert key("optimizer._target_=torch.optim.Adafactor") is None
    # a value made from the seed or the learning rate differs with them: those jobs run alone, as they would
    split = "data.split_seed=${seed}"
    assert key(split, "seed=0") != key(split, "seed=1")
    decay = "optimizer.weight_decay=${optimizer.lr}"
    assert key(decay, "optimizer.lr=0.1") != key(decay, "optimizer.lr=0.5")
    assert stack_key(make_cfg(tmp_path / "a")) == stack_key(make_cfg(tmp_path / "b"))  # each job's own directory
    # what a stack would not do for each member as alone: max_time stopped none, detect_anomaly's error every one,
    # a LearningRateMonitor logged every member's rate in each job, a RichProgressBar failed them all, and members
    # sharing a checkpoint directory were each tested on one best checkpoint
    assert key("callbacks=early_stopping", "+trainer.min_epochs=2") is not None
    assert key("+trainer.max_time=00:00:00:03") is None and key("+trainer.detect_anomaly=true") is None
    for callback in ("LearningRateMonitor", "RichProgressBar"):
        assert key(f"+callbacks.extra={{_target_: lightning.pytorch.callbacks.{callback}}}") is None
    assert key("callbacks.model_checkpoint.dirpath=/tmp/shared") is None
    assert key("logger=csv", "logger.csv.save_dir=/tmp/shared") is None
    assert key("callbacks.progress=null", "logger=csv") is not None


def test_each_member_stops_early_when_it_would_alone(tmp_path):
    from dlbasics.stacked import train_stacked

    common = ["callbacks=early_stopping", "callbacks.early_stopping.patience=5", "trainer.max_epochs=100", "logger=csv"]
    lrs = ("0.003", "0.3")
    stacked = train_stacked([make_cfg(tmp_path / lr, *common, f"optimizer.lr={lr}") for lr in lrs])
    alone = [train(make_cfg(tmp_path / f"alone{lr}", *common, f"optimizer.lr={lr}")) for lr in lrs]
    assert [m["epochs"] for m in stacked] == [m["epochs"] for m in alone]
    assert alone[1]["epochs"] < alone[0]["epochs"] < 100  # the faster learner stops first, the other goes on
    for together, solo in zip(stacked, alone, strict=True):
        assert together["test/acc"] == pytest.approx(solo["test/acc"])
        assert together["val/loss"] == pytest.approx(solo["val/loss"], rel=1e-3)


def test_a_stacked_sgd_job_keeps_the_momentum_of_the_job_run_alone(tmp_path):
    """A member's weights are one row, which its optimizer state follows: SGD's momentum, split into the
    parameters' shapes in its checkpoint, is that of the job run alone."""
    from dlbasics.stacked import train_stacked

    common = ["data=iris", "optimizer=sgd", "optimizer.momentum=0.9", "trainer.max_epochs=4", "logger=none"]
    lrs = ("0.01", "0.1")
    train_stacked([make_cfg(tmp_path / lr, *common, f"optimizer.lr={lr}") for lr in lrs])
    train(make_cfg(tmp_path / "alone", *common, "optimizer.lr=0.1"))
    mine, theirs = (torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=True) for d in ("0.1", "alone"))
    for key, value in theirs["state_dict"].items():
        torch.testing.assert_close(mine["state_dict"][key], value, rtol=1e-4, atol=1e-6)
    mine_opt, theirs_opt = mine["optimizer_states"][0], theirs["optimizer_states"][0]
    assert mine_opt["param_groups"] == theirs_opt["param_groups"]
    assert mine_opt["state"].keys() == theirs_opt["state"].keys() == {0, 1, 2, 3}
    for i, state in theirs_opt["state"].items():
        assert mine_opt["state"][i]["momentum_buffer"].shape == state["momentum_buffer"].shape
        torch.testing.assert_close(
            mine_opt["state"][i]["momentum_buffer"], state["momentum_buffer"], rtol=1e-3, atol=1e-6
        )


def test_a_stacked_job_without_a_val_split_keeps_its_best_by_training_loss_as_alone(tmp_path):
    from dlbasics.stacked import train_stacked

    common = ["experiment=ch1_gradient_descent", "trainer.max_epochs=5", "logger=none"]
    cfgs = [make_cfg(tmp_path / lr, *common, f"optimizer.lr={lr}") for lr in ("1e-5", "5e-5")]
    for cfg in cfgs:
        OmegaConf.resolve(cfg)  # as the launcher hands them over: ${monitor.metric} is a value by then
    stacked = train_stacked(cfgs)
    alone = train(make_cfg(tmp_path / "alone", *common, "optimizer.lr=5e-5"))
    assert stacked[1]["checkpoint"] == str(tmp_path / "5e-5" / "checkpoints" / "best.ckpt")
    assert [m["status"] for m in (*stacked, alone)] == ["completed", "diverged", "diverged"]  # 5e-5's loss grew
    mine, theirs = (torch.load(m["checkpoint"], weights_only=True) for m in (stacked[1], alone))
    assert list(mine["callbacks"]) == list(theirs["callbacks"])
    assert any("'monitor': 'train/loss'" in key for key in mine["callbacks"])
    path, alone_path = (np.array(c["callbacks"]["LossLandscape"]["path"]) for c in (mine, theirs))
    np.testing.assert_allclose(path, alone_path, rtol=1e-5)  # the landscape's path, as far as the best epoch
    assert (mine["epoch"], mine["global_step"]) == (theirs["epoch"], theirs["global_step"])
    assert mine["first_loss"] == pytest.approx(theirs["first_loss"], rel=1e-5)  # its own, not the stack's
    for k, v in theirs["state_dict"].items():
        torch.testing.assert_close(mine["state_dict"][k], v)


def test_a_job_refused_by_its_config_fails_alone_and_bad_data_fails_every_job(tmp_path, capsys):
    from dlbasics.stacked import train_stacked

    cfgs = [make_cfg(tmp_path / lr, "logger=none", f"optimizer.lr={lr}") for lr in ("0.01", "-1")]
    good, bad = train_stacked(cfgs)
    assert good["status"] == "completed" and bad is None
    assert read_metrics(tmp_path / "-1")["status"] == "failed"
    assert "error: optimizer.lr must be a positive number; got -1" in capsys.readouterr().err
    cfgs = [make_cfg(tmp_path / f"csv{i}", "data=csv", "data.path=nope.csv", "data.target=y") for i in range(2)]
    assert train_stacked(cfgs) == [None, None]
    assert all(read_metrics(tmp_path / f"csv{i}")["status"] == "failed" for i in range(2))
    assert capsys.readouterr().err.count("error: data.path") == 1
    cfgs = [make_cfg(tmp_path / f"t{lr}", f"optimizer.lr={lr}", "trainer.max_epochs=-2") for lr in ("0.1", "0.01")]
    assert train_stacked(cfgs) == [None, None]  # the trainer every job shares
    assert all(read_metrics(tmp_path / f"t{lr}")["status"] == "failed" for lr in ("0.1", "0.01"))
    assert capsys.readouterr().err.count("error: trainer: `max_epochs` must be a non-negative integer") == 1
    # the options a run alone refuses before it reads its data: a half-precision Adam diverged, a seed was ignored
    for option, message in [
        ("trainer.precision=16-true", "error: trainer.precision=16-true: the optimizer's eps=1e-08 is 0 in float16"),
        ("+data.shuffle_seed=7", "error: data.shuffle_seed is the run's to set"),
    ]:
        cfgs = [make_cfg(tmp_path / f"o{lr}{option}", option, f"optimizer.lr={lr}") for lr in ("0.1", "0.01")]
        assert train_stacked(cfgs) == [None, None]
        assert capsys.readouterr().err.count(message) == 2


def test_a_job_whose_directory_holds_another_run_is_refused_and_that_run_kept(tmp_path, capsys):
    from dlbasics.stacked import train_stacked

    train(make_cfg(tmp_path / "0.01", "logger=none", "optimizer.lr=0.01"))
    kept = {p: p.read_bytes() for p in (tmp_path / "0.01").rglob("*") if p.is_file()}
    cfgs = [make_cfg(tmp_path / lr, "logger=none", f"optimizer.lr={lr}") for lr in ("0.01", "0.1")]
    earlier, new = train_stacked(cfgs)
    assert earlier is None and new["status"] == "completed"
    assert "already holds a run (its metrics.json, completed). Train it more epochs with ckpt_path=last" in (
        capsys.readouterr().err
    )
    assert {p: p.read_bytes() for p in (tmp_path / "0.01").rglob("*") if p.is_file()} == kept


def test_a_bug_while_a_stack_is_set_up_fails_every_job_of_it_and_keeps_its_traceback(tmp_path, monkeypatch):
    from dlbasics import stacked as module

    built, real = [], module.build_learner

    def build_learner(cfg, data):  # a bug in the second job's model
        built.append(cfg)
        if len(built) == 2:
            raise RuntimeError("boom")
        return real(cfg, data)

    monkeypatch.setattr(module, "build_learner", build_learner)
    cfgs = [make_cfg(tmp_path / lr, "logger=none", f"optimizer.lr={lr}") for lr in ("0.01", "0.1")]
    with pytest.raises(RuntimeError, match="boom"):
        module.train_stacked(cfgs)
    failed = {"status": "failed", "error": "boom", "seconds": 0.0}
    assert [read_metrics(tmp_path / lr) for lr in ("0.01", "0.1")] == [failed, failed]  # none left `running`


def test_jobs_refused_or_failed_leave_the_others_training_as_they_would_alone(tmp_path, capsys):
    """Each member's batch order is its own job's, whichever jobs of the stack were refused or failed."""
    from dlbasics.stacked import train_stacked

    jobs = [("abc", "abc"), ("s0", 0), ("s1", 1), ("s1", 1)]  # a bad seed; the last job given the third's directory
    results = train_stacked([make_cfg(tmp_path / name, *COMMON, "logger=none", f"seed={seed}") for name, seed in jobs])
    err = capsys.readouterr().err
    assert results[0] is None and "error: seed must be an integer from 0 to 2**32 - 1; got 'abc'." in err
    assert results[3] is None and f"'{tmp_path / 's1'}' already holds a run" in err
    assert read_metrics(tmp_path / "abc")["status"] == "failed"
    for seed, together in [(0, results[1]), (1, results[2])]:
        alone = train(make_cfg(tmp_path / f"alone{seed}", *COMMON, "logger=none", f"seed={seed}"))
        assert together["val/loss"] == pytest.approx(alone["val/loss"], rel=1e-4)
        assert together["epochs"] == alone["epochs"] == 6


def test_a_stacked_job_stops_early_once_min_epochs_are_done_as_alone(tmp_path, caplog):
    from dlbasics.stacked import train_stacked

    options = ["data=iris", "callbacks=early_stopping", "callbacks.early_stopping.patience=3", "logger=none"]
    options += ["+trainer.min_epochs=40", "trainer.max_epochs=100"]
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        together = train_stacked([make_cfg(tmp_path / f"lr{lr}", *options, f"optimizer.lr={lr}") for lr in (0.03, 0.1)])
        caplog.clear()
        alone = train(make_cfg(tmp_path / "alone", *options, "optimizer.lr=0.1"))
    assert together[1]["epochs"] == alone["epochs"] >= 40  # patience 3 alone would stop it in 5 epochs
    assert together[0]["epochs"] >= 40
    said = [m for m in caplog.messages if m.startswith(f"Stopped early after epoch {alone['epochs']} of 100: ")]
    assert len(said) == 1 and said[0] in (tmp_path / "lr0.1" / "train.log").read_text()  # its log says so too


def test_stacked_jobs_log_to_a_file_only_where_the_job_logging_does(tmp_path):
    result = run_script(
        "train.py", "-m", "optimizer.lr=0.01,0.1", "trainer.max_epochs=2", "logger=none", "hydra/launcher=stacked",
        "hydra/job_logging=console", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 jobs trained side by side" in result.stdout and len(list(tmp_path.glob("*/metrics.json"))) == 2
    assert not list(tmp_path.glob("*/*.log"))  # as Hydra's console job logging writes none for a run alone


def test_a_stacked_job_writes_a_weights_only_checkpoint_beside_a_full_one_as_alone(tmp_path, capsys):
    """The stack's checkpoint was taken once a step whatever was asked for: a full checkpoint after a weights-only
    one at the same step failed every job (KeyError 'optimizer_states'); the other way, weights only held all."""
    from dlbasics.stacked import train_stacked

    full = "{_target_: dlbasics.callbacks.Checkpoints, dirpath: '${run_dir}/full', filename: full, monitor: val/acc"
    full += ", mode: max}"
    common = ["logger=none", "trainer.max_epochs=3", "+callbacks.model_checkpoint.save_weights_only=true"]
    common.append(f"+callbacks.full={full}")
    stacked = train_stacked([make_cfg(tmp_path / lr, *common, f"optimizer.lr={lr}") for lr in ("0.003", "0.03")])
    alone = train(make_cfg(tmp_path / "alone", *common, "optimizer.lr=0.03"))
    assert [m["status"] for m in stacked] == ["completed", "completed"] == [alone["status"], "completed"]
    for run in (tmp_path / "0.03", tmp_path / "alone"):
        weights = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
        whole = torch.load(run / "full" / "full.ckpt", weights_only=True)
        assert "optimizer_states" not in weights and "optimizer_states" in whole
    again = [make_cfg(tmp_path / f"twice{lr}", *common[:2], "+callbacks.again=${callbacks.model_checkpoint}")
             for lr in ("0.003", "0.03")]  # fmt: skip
    assert train_stacked(again) == [None, None]  # as alone: Lightning refuses two callbacks of one state
    assert "callbacks.again is callbacks.model_checkpoint again" in capsys.readouterr().err


def test_jobs_that_differ_in_more_than_learning_rate_and_seed_run_alone_as_in_any_sweep(tmp_path):
    result = run_script(
        "train.py", "-m", "model.width=4,8", "trainer.max_epochs=2", "logger=none", "hydra/launcher=stacked",
        f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Launching 2 jobs locally: 0 in 0 stack(s), 2 alone" in result.stdout
    assert "side by side" not in result.stdout
    for width in (4, 8):
        job = tmp_path / f"model.width={width}"
        assert read_metrics(job)["status"] == "completed" and read_metrics(job)["epochs"] == 2
        assert load_learner(job / "checkpoints" / "best.ckpt").model[0].out_features == width
    assert len(pd.read_csv(tmp_path / "summary.csv")) == 2


def test_a_stack_steps_directly_unless_a_members_callback_hooks_its_steps_and_trains_the_same(tmp_path, monkeypatch):
    """The stack's own callbacks pass every hook on to the members': it took Lightning's manual_backward and
    optimizer step whatever they were (module.direct_steps), about 0.2 ms of a step for 8 members."""
    from lightning.pytorch import LightningModule

    from dlbasics.stacked import train_stacked

    from .test_train import HOOK_CALLS

    lightnings = []
    manual_backward = LightningModule.manual_backward
    monkeypatch.setattr(
        LightningModule, "manual_backward", lambda *a, **k: lightnings.append(1) or manual_backward(*a, **k)
    )
    common = ["data.batch_size=16", "trainer.max_epochs=3", "logger=none"]
    lrs = ("0.003", "0.03")
    train_stacked([make_cfg(tmp_path / "direct" / lr, *common, f"optimizer.lr={lr}") for lr in lrs])
    assert lightnings == []
    HOOK_CALLS.clear()
    hooks = "+callbacks.step_hooks._target_=tests.test_train.StepHooks"
    train_stacked([make_cfg(tmp_path / "hooked" / lr, *common, hooks, f"optimizer.lr={lr}") for lr in lrs])
    steps = 3 * 6  # 90 training rows: 6 minibatches an epoch
    assert len(lightnings) == steps  # one backward pass a step, for the whole stack
    assert HOOK_CALLS["on_before_backward"] == HOOK_CALLS["on_before_optimizer_step"] == steps * len(lrs)
    for lr in lrs:
        direct, hooked = (
            torch.load(tmp_path / d / lr / "checkpoints" / "last.ckpt", weights_only=True) for d in ("direct", "hooked")
        )
        assert direct["global_step"] == hooked["global_step"] == steps
        assert all(torch.equal(direct["state_dict"][k], hooked["state_dict"][k]) for k in direct["state_dict"])


def test_the_progress_line_goes_on_with_a_member_still_training(tmp_path, capsys, monkeypatch):
    """The first member's line, shown for the stack: it stayed at 'epoch 1/5 ... nan' once that member diverged,
    while the other trained on."""
    from dlbasics.stacked import train_stacked

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    cfgs = [
        make_cfg(tmp_path / lr, "logger=none", "trainer.max_epochs=5", f"optimizer.lr={lr}") for lr in ("1e30", "1e-3")
    ]
    diverged, trained = train_stacked(cfgs)
    assert diverged["status"] == "diverged" and trained["status"] == "completed"
    out = capsys.readouterr().out
    assert out.count("\repoch 5/5  train/loss") == 1 and "nan" not in out.split("\repoch 5/5")[1].split("\n")[0]
