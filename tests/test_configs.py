"""Every option of every config group composes, and builds the objects it names."""

import pytest
import torch
from hydra.utils import instantiate

from dlbasics.run import build

from .conftest import ROOT, make_cfg

OPTIONS = {
    group: sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml") if p.stem != "default" or group != "data")
    for group in (
        "data",
        "model",
        "loss",
        "optimizer",
        "trainer",
        "callbacks",
        "logger",
        "experiment",
        "hparams_search",
    )
}


def test_every_group_has_options():
    assert OPTIONS["data"] == ["boston", "boston_rm", "csv", "iris", "iris_binary"]
    assert OPTIONS["model"] == ["mlp", "perceptron"]
    assert OPTIONS["loss"] == ["auto", "logistic", "mse", "sse"]
    assert OPTIONS["experiment"] == ["ch1_gradient_descent", "ex2_iris_mlp", "ex3_boston_mlp", "perceptron_iris_binary"]


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in OPTIONS.items() for o in opts])
def test_option_composes_and_builds(tmp_path, make_csv, group, option):
    overrides = [f"{group}={option}"]
    if group == "data" and option == "csv":
        overrides += [f"data.path={make_csv(kind='regression')}", "data.target=y"]
    if group == "loss" and option in ("mse", "sse"):
        overrides.append("data=boston")
    if group == "trainer" and option == "ddp":
        overrides.append("trainer.accelerator=cpu")  # composes for GPUs; this machine has none
    cfg = make_cfg(tmp_path, *overrides)
    data, learner, trainer = build(cfg, tmp_path)
    assert learner.hparams.data["n_features"] == data.meta["n_features"]
    optimizer = instantiate(cfg.optimizer, params=learner.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert trainer.max_epochs == 3  # the command line wins over a group's or an experiment's own


def test_the_accelerator_is_autos_unless_the_environment_pins_it(tmp_path, monkeypatch):
    assert make_cfg(tmp_path).trainer.accelerator == "cpu"  # conftest pins the suite to the CPU
    monkeypatch.delenv("DLBASICS_ACCELERATOR")
    assert make_cfg(tmp_path).trainer.accelerator == "auto"  # Lightning's choice: a GPU where there is one
    assert make_cfg(tmp_path, "trainer.accelerator=gpu").trainer.accelerator == "gpu"
