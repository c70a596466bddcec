"""Training end to end, in process: what a run leaves, and what eval and predict make of it."""

import logging
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from dlbasics.command import OutputDirectory, cli
from dlbasics.data import TabularData
from dlbasics.errors import UserError
from dlbasics.losses import METRICS
from dlbasics.run import evaluate, load_learner, predict, predictions, train

from .conftest import CONF, ROOT, make_cfg, read_hparams, read_metrics, run_script

CLASSIFICATION = {"val/loss", "val/acc", "test/loss", "test/acc", "train/loss"}
REGRESSION = {"val/loss", "val/rmse", "test/rmse", "test/mae", "test/r2", "train/loss"}


@pytest.mark.parametrize("data", ["iris", "iris_binary", "boston", "boston_rm", "csv"])
@pytest.mark.parametrize("model", ["mlp", "perceptron"])
def test_every_data_and_model_trains(tmp_path, make_csv, data, model):
    extra = [f"data.path={make_csv(kind='multiclass')}", "data.target=y"] if data == "csv" else []
    cfg = make_cfg(tmp_path, f"data={data}", f"model={model}", "logger=none", "model.output_activation=auto", *extra)
    metrics = train(cfg)
    expected = REGRESSION if data.startswith("boston") else CLASSIFICATION
    assert expected <= metrics.keys()
    task = "regression" if data.startswith("boston") else "multiclass" if data != "iris_binary" else "binary"
    measured = sorted(k[4:] for k in metrics if k.startswith("val/") and k != "val/loss_best")
    assert measured == sorted(METRICS[task])  # what monitor accepts
    assert metrics["val/loss_best"] <= metrics["val/loss"]  # the best checkpoint's, which was tested
    assert all(math.isfinite(metrics[k]) for k in expected)
    assert metrics["status"] == "completed" and metrics["epochs"] == 3
    assert read_metrics(tmp_path) == pytest.approx(metrics)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and (tmp_path / "checkpoints" / "best.ckpt").is_file()


def test_hidden_layers_of_unequal_widths_train_from_the_command_lines_list(tmp_path, capsys):
    """model.hidden=[20,10] (course 2.1: a layer's width each) reaches the model as Hydra's ListConfig."""
    metrics = train(make_cfg(tmp_path, "model.hidden=[20,10]", "logger=none"))
    assert metrics["status"] == "completed" and metrics["params"] == (4 * 20 + 20) + (20 * 10 + 10) + (10 * 3 + 3)
    assert load_learner(metrics["checkpoint"]).hparams.model["hidden"] == [20, 10]  # a plain list in the checkpoint
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path / "bad", "model.hidden=[20,0]"))
    assert (
        "model.hidden must be a list of integers >= 1, the hidden layers' widths (model.hidden=[20,10]); got [20, 0]."
        in (capsys.readouterr().err)
    )


def test_the_tensorboard_logger_logs_what_lightnings_does(tmp_path):
    """Ours writes a step's scalars as one event: with a prefix, a tensor, a dict (add_scalars) and a value that
    is no number, as Lightning's."""
    from dlbasics.callbacks import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path, name="", version="", prefix="lab")
    logger.log_metrics({"loss": torch.tensor(0.5), "acc": 1, "lr": {"a": 0.1, "b": 0.2}}, step=3)
    with pytest.raises(ValueError, match="you tried to log text which is currently not supported"):
        logger.log_metrics({"loss": "text"}, step=4)
    logger.finalize("success")
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    assert {t: [(e.step, e.value) for e in events.Scalars(t)] for t in events.Tags()["scalars"]} == {
        "lab-loss": [(3, 0.5)],
        "lab-acc": [(3, 1.0)],
    }
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["lab-lr_a", "lab-lr_b"]  # add_scalars' runs


def test_tensorboards_hparams_filter_by_status_shows_a_diverged_run_as_a_failure(tmp_path):
    """Its status filter listed a diverged job among the successes; only its `status` option said otherwise."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams.api_pb2 import Status
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    for lr, status, ended in (("1e-05", "completed", "STATUS_SUCCESS"), ("5e-05", "diverged", "STATUS_FAILURE")):
        run_dir = tmp_path / lr
        cfg = make_cfg(run_dir, "experiment=ch1_gradient_descent", f"optimizer.lr={lr}", "trainer.max_epochs=10")
        assert train(cfg)["status"] == status and read_hparams(run_dir)["status"] == status
        (end,) = [
            HParamsPluginData.FromString(value.metadata.plugin_data.content).session_end_info.status
            for path in run_dir.glob("events.out.tfevents.*")
            for event in EventFileLoader(str(path)).Load()
            for value in event.summary.value
            if value.tag == "_hparams_/session_end_info"
        ]
        assert Status.Name(end) == ended


def test_iris_learns_and_logs_to_tensorboard(tmp_path):
    metrics = train(make_cfg(tmp_path, "trainer.max_epochs=30"))
    assert metrics["test/acc"] >= 0.85
    assert metrics["params"] == 803
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "val/loss", "val/acc", "test/acc", "test/loss"} <= set(scalars)
    assert len(events.Scalars("train/loss")) == 30 and len(events.Scalars("val/loss")) == 30
    assert "hp_metric" not in scalars  # no -1 placeholder
    assert not (tmp_path / "fit.png").exists()  # drawn for regression on one feature only
    assert events.Scalars("test/acc")[-1].value == pytest.approx(metrics["test/acc"])
    train(make_cfg(tmp_path, "trainer.max_epochs=32", "ckpt_path=last"))  # resumed: HPARAMS shows the run as it ended
    summaries = [
        value
        for path in tmp_path.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(path)).Load()
        for value in event.summary.value
        if value.tag.startswith("_hparams_/")
    ]
    # no experiment summary: TensorBoard makes the table's columns from every run's options and scalars
    assert sorted(v.tag for v in summaries) == ["_hparams_/session_end_info", "_hparams_/session_start_info"]
    start = next(v for v in summaries if v.tag.endswith("start_info")).metadata.plugin_data.content
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["optimizer.lr"].number_value == pytest.approx(1e-3)
    assert hparams["model.activation"].string_value == "relu"
    assert hparams["data.standardize"].string_value == "true" and hparams["data.features"].string_value == "null"
    assert hparams["status"].string_value == "completed"
    assert hparams["trainer.max_epochs"].number_value == hparams["epochs"].number_value == 32
    # Lightning's hparams.yaml beside the logs held {}: it holds the module's, as the checkpoints do
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert yaml.safe_load((tmp_path / "hparams.yaml").read_text()) == saved


def test_regression_metrics_agree_with_each_other(tmp_path):
    metrics = train(make_cfg(tmp_path, "data=boston", "trainer.max_epochs=20", "logger=csv"))
    assert metrics["test/mae"] <= metrics["test/rmse"]
    assert 0 < metrics["test/r2"] < 1
    assert metrics["test/rmse"] < 9  # the spread of Boston prices: learning happened
    logged = pd.read_csv(tmp_path / "metrics.csv")
    assert logged["train/loss"].notna().sum() == 20
    assert logged.dropna(subset="train/loss")["epoch"].tolist() == list(range(20))  # as Lightning's self.log


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_regression_learns_alike_in_any_units_of_its_target(tmp_path, make_csv, optimizer):
    """data.standardize scales the target too: a target in millions (prices in dollars) had test r2 -0.03 where
    the same in units had 0.999 (Adam's steps of 1e-3 do not take an output to millions), and SGD diverged."""
    path, metrics = make_csv(n=300, features=3, kind="regression"), {}
    for units in (1e-4, 1.0, 1e6):
        scaled = tmp_path / f"y{units:g}.csv"
        pd.read_csv(path).eval(f"y = (3 + y) * {units}").to_csv(scaled, index=False)
        data = ["data=csv", f"data.path={scaled}", "data.target=y", f"optimizer={optimizer}", "optimizer.lr=0.01"]
        metrics[units] = train(make_cfg(tmp_path / f"{units:g}", *data, "trainer.max_epochs=20", "logger=none"))
    assert metrics[1.0]["test/r2"] > 0.9
    for units in (1e-4, 1e6):
        assert metrics[units]["test/r2"] == pytest.approx(metrics[1.0]["test/r2"], abs=1e-4)
        assert metrics[units]["test/rmse"] == pytest.approx(metrics[1.0]["test/rmse"] * units, rel=1e-3)
    predicted = pd.read_csv(predict(make_cfg(tmp_path, f"ckpt_path={metrics[1e6]['checkpoint']}",
        f"input={tmp_path / 'y1e+06.csv'}", f"output={tmp_path / 'p.csv'}", config="predict")))  # fmt: skip
    assert ((predicted["predicted_y"] - predicted["y"]) ** 2).mean() ** 0.5 < 0.2 * predicted["y"].std()


def test_r2_of_a_target_far_from_zero_is_that_of_its_predictions(tmp_path, make_csv):
    path = make_csv(n=200, kind="regression")
    pd.read_csv(path).eval("y = 2010 + y / 2").to_csv(path, index=False)  # years, say: float32 sums of y² hold no r2
    metrics = train(make_cfg(tmp_path, "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
    learner = load_learner(metrics["checkpoint"])
    x, y = TabularData.from_meta(learner.hparams.data).splits["test"]
    with torch.no_grad():
        residuals = (learner.objective.predict(learner(x)) - y).double()
    expected = 1 - residuals.square().sum() / (y.double() - y.double().mean()).square().sum()
    assert 0.1 < expected < 0.99  # neither trivial nor perfect after 3 epochs
    assert metrics["test/r2"] == pytest.approx(float(expected), abs=1e-4)


def test_several_targets_are_a_regression_with_an_output_neuron_each(tmp_path, make_csv):
    """The course, 2.2: "when regression is at stake, the number of neurons in the output layer is equal to the
    number of features to be predicted by the model". Each target is learnt in its own units; the loss is the
    course's (3.1), (1/n) Σ ‖ŷ - y‖², and the metrics scikit-learn's over all targets (r2 the mean of theirs)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score, root_mean_squared_error

    path = make_csv(n=300, kind="regression")
    frame = pd.read_csv(path).eval("z = 1e6 * (f0 - f1) + 5e7")  # another quantity, in millions
    frame.to_csv(path, index=False)
    data = ["data=csv", f"data.path={path}", "data.target=[y,z]", "logger=none"]
    metrics = train(make_cfg(tmp_path / "run", *data, "trainer.max_epochs=20"))
    learner = load_learner(metrics["checkpoint"])
    assert learner.model[-1].out_features == 2 and learner.hparams.data["features"] == ["f0", "f1", "f2"]
    x, y = TabularData.from_meta(learner.hparams.data).splits["test"]
    with torch.no_grad():
        predicted = learner.objective.predict(learner(x)).double().numpy()
    y = y.double().numpy()
    assert (r2_score(y, predicted, multioutput="raw_values") > 0.9).all()  # both learnt, in millions as in units
    assert metrics["test/r2"] == pytest.approx(r2_score(y, predicted), abs=1e-4)
    assert metrics["test/loss"] == pytest.approx(2 * mean_squared_error(y, predicted), rel=1e-4)  # summed: 2 targets
    assert metrics["test/mae"] == pytest.approx(mean_absolute_error(y, predicted), rel=1e-4)
    assert metrics["test/rmse"] == pytest.approx(root_mean_squared_error(y, predicted), rel=1e-4)  # each target's
    assert evaluate(make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", config="eval"))["test/r2"] == (
        pytest.approx(metrics["test/r2"], rel=1e-6)
    )
    new = tmp_path / "new.csv"
    frame.drop(columns=["y", "z"]).head(5).to_csv(new, index=False)
    out = pd.read_csv(
        predict(make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", f"input={new}", config="predict"))
    )
    assert list(out.columns) == ["f0", "f1", "f2", "predicted_y", "predicted_z"]
    assert ((out["predicted_z"] - frame["z"].head(5)).abs() < 0.1 * frame["z"].std()).all()


def test_eval_gives_the_runs_test_metrics(tmp_path):
    metrics = train(make_cfg(tmp_path / "run", "data=boston", "trainer.max_epochs=5", "logger=none"))
    with_eval = evaluate(make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", config="eval"))
    for key in ("test/rmse", "test/mae", "test/r2", "test/loss"):
        assert with_eval[key] == pytest.approx(metrics[key], rel=1e-6)


def test_eval_finds_moved_data_with_data_path_and_refuses_other_data(tmp_path, make_csv, capsys):
    path = make_csv(n=80, kind="regression")
    metrics = train(make_cfg(tmp_path / "run", "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
    moved = path.rename(tmp_path / "moved.csv")
    ckpt = f"ckpt_path={metrics['checkpoint']}"
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, ckpt, config="eval"))
    assert f"data_path: no file '{path}', the CSV this checkpoint was trained on" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, ckpt, f"data_path={tmp_path / 'nope.csv'}", config="eval"))
    nope = f"data_path: no file '{tmp_path / 'nope.csv'}'. Give the path of the CSV this checkpoint was trained on"
    assert f"{nope}, '{path}'" in capsys.readouterr().err
    again = evaluate(make_cfg(tmp_path, ckpt, f"data_path={moved}", config="eval"))
    assert again["test/rmse"] == pytest.approx(metrics["test/rmse"], rel=1e-6)
    pd.read_csv(moved).head(70).to_csv(tmp_path / "fewer.csv", index=False)
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, ckpt, f"data_path={tmp_path / 'fewer.csv'}", config="eval"))
    assert "has 70 rows, the CSV this checkpoint was trained on had 80: not the same data" in capsys.readouterr().err
    pd.read_csv(moved).sort_values("y").to_csv(tmp_path / "sorted.csv", index=False)  # its test split: other rows
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, ckpt, f"data_path={tmp_path / 'sorted.csv'}", config="eval"))
    assert "sorted.csv' has other test rows than the CSV this checkpoint was trained on" in capsys.readouterr().err
    pd.read_csv(moved).eval("f2 = 10 * f2").to_csv(tmp_path / "changed.csv", index=False)  # a feature not the first
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, ckpt, f"data_path={tmp_path / 'changed.csv'}", config="eval"))
    assert "changed.csv' has other test rows than the CSV this checkpoint was trained on" in capsys.readouterr().err

    iris = train(make_cfg(tmp_path / "iris", "logger=none"))  # classes sorted by a feature keep their labels' order
    frame = pd.read_csv(ROOT / "data" / "iris.csv", index_col=0).sort_values(["target", "petal length (cm)"])
    frame.to_csv(tmp_path / "iris_sorted.csv")
    with pytest.raises(SystemExit):
        cli(
            evaluate,
            make_cfg(
                tmp_path, f"ckpt_path={iris['checkpoint']}", f"data_path={tmp_path / 'iris_sorted.csv'}", config="eval"
            ),
        )
    assert "iris_sorted.csv' has other test rows than the CSV" in capsys.readouterr().err
    # iris saved without its index column: its first feature was read as the index, and named as missing
    pd.read_csv(ROOT / "data" / "iris.csv", index_col=0).to_csv(tmp_path / "iris_no_index.csv", index=False)
    cfg = make_cfg(
        tmp_path, f"ckpt_path={iris['checkpoint']}", f"data_path={tmp_path / 'iris_no_index.csv'}", config="eval"
    )
    assert evaluate(cfg)["test/loss"] == pytest.approx(iris["test/loss"], rel=1e-6)
    typo = pd.read_csv(ROOT / "data" / "iris.csv", index_col=0).astype({"sepal width (cm)": object})
    typo.loc[5, "sepal width (cm)"] = "?"
    typo.to_csv(tmp_path / "iris_typo.csv")
    with pytest.raises(SystemExit):  # its fix is the file's: eval.py has no data.features to leave a column out with
        cli(
            evaluate,
            make_cfg(
                tmp_path, f"ckpt_path={iris['checkpoint']}", f"data_path={tmp_path / 'iris_typo.csv'}", config="eval"
            ),
        )
    assert capsys.readouterr().err.endswith("(first '?', at data row 6). Fix or drop them in the CSV.\n")
    pd.read_csv(moved).drop(columns="y").to_csv(tmp_path / "no_target.csv", index=False)
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, ckpt, f"data_path={tmp_path / 'no_target.csv'}", config="eval"))
    err = capsys.readouterr().err  # eval.py has no data.target to give
    assert err.startswith(
        f"error: data_path: '{tmp_path / 'no_target.csv'}' is not this checkpoint's data: no column 'y'"
    )


def test_eval_refuses_a_file_whose_labels_are_not_the_checkpoints_classes(tmp_path, make_csv, capsys):
    path = make_csv(n=80, kind="binary")
    metrics = train(make_cfg(tmp_path / "run", "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(path).replace({"y": {"no": "nah"}}).to_csv(renamed, index=False)  # still sorted before 'yes'
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", f"data_path={renamed}", config="eval"))
    assert capsys.readouterr().err == (
        f"error: data_path: '{renamed}' is not this checkpoint's data: 'y' has labels that are not the checkpoint's "
        "classes ('no', 'yes'): 'nah'.\n"
    )


def test_predict_writes_classes_and_probabilities_beside_the_input(tmp_path, make_csv):
    path = make_csv(n=80, kind="binary")
    metrics = train(make_cfg(tmp_path / "run", "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
    new = tmp_path / "new.csv"
    pd.read_csv(path).drop(columns="y").head(5).to_csv(new, index=False)
    out = predict(make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", f"input={new}", config="predict"))
    assert out == tmp_path / "new_predictions.csv"
    result = pd.read_csv(out)
    assert list(result.columns) == ["f0", "f1", "f2", "predicted_y", "p(no)", "p(yes)"]
    assert set(result["predicted_y"]) <= {"yes", "no"}
    assert (result["p(no)"] + result["p(yes)"]).round(5).eq(1).all()
    assert ((result["p(yes)"] > 0.5) == (result["predicted_y"] == "yes")).all()
    from_python = predictions(load_learner(metrics["checkpoint"]), pd.read_csv(new))  # the same, in Python
    assert from_python.drop(columns=["p(no)", "p(yes)"]).equals(result.drop(columns=["p(no)", "p(yes)"]))
    assert np.allclose(from_python[["p(no)", "p(yes)"]], result[["p(no)", "p(yes)"]], rtol=1e-6)
    ids = pd.read_csv(path).drop(columns="y").head(5).set_axis(range(1000, 1005))  # a saved index: the rows' ids
    ids.to_csv(new)
    with_ids = predict(make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", f"input={new}", config="predict"))
    assert with_ids.read_text().splitlines()[0] == ",f0,f1,f2,predicted_y,p(no),p(yes)"  # kept, to join on
    assert pd.read_csv(with_ids, index_col=0).index.tolist() == list(range(1000, 1005))
    assert pd.read_csv(with_ids, index_col=0).reset_index(drop=True).equals(result)


def test_predict_points_out_rows_far_outside_the_training_data(tmp_path, make_csv, caplog):
    """A feature in other units (cents for dollars) was predicted from without a word: p = 1.0 for every row."""
    path = make_csv(n=80, kind="binary")
    metrics = train(make_cfg(tmp_path / "run", "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
    meta = load_learner(metrics["checkpoint"]).hparams.data
    new, rows = tmp_path / "new.csv", pd.read_csv(path).drop(columns="y").head(5)
    rows.to_csv(new, index=False)
    cfg = make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", f"input={new}", config="predict")
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        predict(cfg)
        assert "standard deviations" not in caplog.text  # rows like the training rows
        rows.loc[[1, 3], "f2"] *= 1000
        rows.to_csv(new, index=False)
        predict(cfg)
    assert (
        f"2 rows of 5 have a feature more than 10 standard deviations from the training rows' mean (first at data "
        f"row 2: 'f2' {rows.loc[1, 'f2']:.4g}, where the training rows had {meta['mean'][2]:.4g} ± "
        f"{meta['std'][2]:.4g}): the predictions there extrapolate. Check its units." in caplog.text
    )


def test_a_feature_of_categories_trains_tests_and_predicts_with_its_categories(tmp_path, capsys):
    rng = np.random.default_rng(0)
    city, x = rng.choice(["Lyon", "Paris", "Rome"], 300), rng.normal(size=300)
    y = x + np.select([city == "Lyon", city == "Paris"], [-3.0, 0.0], 3.0) + 0.1 * rng.normal(size=300)
    (path := tmp_path / "t.csv").write_text(pd.DataFrame({"x": x, "city": city, "y": y}).to_csv(index=False))
    data = ["data=csv", f"data.path={path}", "data.target=y", "logger=none"]
    metrics = train(make_cfg(tmp_path / "run", *data, "trainer.max_epochs=30"))
    assert metrics["test/r2"] > 0.9  # the city is most of y: x alone explains a seventh of its variance
    learner = load_learner(metrics["checkpoint"])
    assert learner.hparams.data["categories"] == {"city": ["Lyon", "Paris", "Rome"]}
    assert learner.model[0].in_features == 4  # x and a 0/1 input per city
    ckpt = f"ckpt_path={metrics['checkpoint']}"
    assert evaluate(make_cfg(tmp_path, ckpt, config="eval"))["test/r2"] == pytest.approx(metrics["test/r2"], rel=1e-6)
    new = pd.DataFrame({"x": [0.0, 0.0, 0.0], "city": ["Rome", "Lyon", "Paris"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    out = pd.read_csv(predict(make_cfg(tmp_path, ckpt, f"input={tmp_path / 'new.csv'}", config="predict")))
    np.testing.assert_allclose(out["predicted_y"], [3.0, -3.0, 0.0], atol=0.5)
    new.assign(city=["Rome", "Oslo", "Paris"]).to_csv(tmp_path / "oslo.csv", index=False)
    with pytest.raises(SystemExit):
        cli(predict, make_cfg(tmp_path, ckpt, f"input={tmp_path / 'oslo.csv'}", config="predict"))
    assert (
        "input: column 'city' has a category the model was not trained on: 'Oslo'. It knows 'Lyon', 'Paris', 'Rome'."
        in capsys.readouterr().err
    )


def test_predict_names_missing_feature_columns(tmp_path, make_csv, capsys):
    path = make_csv(kind="regression")
    metrics = train(make_cfg(tmp_path / "run", "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
    new = tmp_path / "new.csv"
    pd.read_csv(path)[["f0", "f1"]].to_csv(new, index=False)
    cfg = make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", f"input={new}", config="predict")
    with pytest.raises(SystemExit) as exit_:
        cli(predict, cfg)
    assert exit_.value.code == 2
    assert "no column 'f2'. The columns are: f0, f1. The model takes: f0, f1, f2." in capsys.readouterr().err


def test_predict_names_what_is_wrong_with_its_input_and_output(tmp_path, make_csv, capsys):
    path = make_csv(kind="regression")
    metrics = train(make_cfg(tmp_path / "run", "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
    words, semicolons = tmp_path / "words.csv", tmp_path / "semicolons.csv"
    words.write_text("f0,f1,f2\n1.5,2,3\n0.5,abc,1\n")
    semicolons.write_text("f0;f1;f2\n1.5;2;3\n")
    (decimal_commas := tmp_path / "decimal_commas.csv").write_text("f0;f1;f2\n1,5;2,25;3\n")  # a European CSV
    (header := tmp_path / "header.csv").write_text("f0,f1,f2\n")
    good = tmp_path / "good.csv"
    pd.read_csv(path).drop(columns="y").head(4).to_csv(good, index=False)
    kept = {p: p.read_bytes() for p in (path, Path(metrics["checkpoint"]))}
    cases = [
        ([f"input={tmp_path / 'none.csv'}"], "input: no file"),
        ([f"input={words}"], "input: column 'f1' holds numbers, and 1 row with a value that is not (first 'abc', at"),
        ([f"input={semicolons}"], "Its fields look separated by ';', not commas"),
        ([f"input={decimal_commas}"], "input: the fields of '"),  # not 'a comma at the end of each row'
        ([f"input={decimal_commas}"], "decimal_commas.csv' look separated by ';', not commas: save it as comma-"),
        ([f"input={words}", f"output={tmp_path / 'no' / 'out.csv'}"], "output: no directory"),
        ([f"input={words}", f"output={words}"], "is the input file"),
        ([f"input={words}", f"output={tmp_path}"], f"output: '{tmp_path}' is a directory; give a file in it"),
        ([f"input={words}", f"output={path}"], f"output: '{path}' exists and is not predictions of this model's"),
        ([f"input={words}", f"output={metrics['checkpoint']}"], "exists and is not predictions of this model's"),
        ([f"input={header}"], f"input: '{header}' has a header but no data rows"),
        (
            [f"input={good}", "output=/proc/predictions.csv"],
            "output: cannot write '/proc/predictions.csv': No such file",
        ),
    ]
    for overrides, message in cases:
        with pytest.raises(SystemExit) as exit_:
            cli(predict, make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", *overrides, config="predict"))
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1
    assert words.read_text() == "f0,f1,f2\n1.5,2,3\n0.5,abc,1\n"  # the input is never overwritten
    assert all(p.read_bytes() == content for p, content in kept.items())  # nor the data, nor a checkpoint
    cfg = make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", f"input={good}", config="predict")
    assert pd.read_csv(predict(cfg)).equals(pd.read_csv(predict(cfg)))  # its own predictions: written again
    pd.read_csv(good).to_csv(tmp_path / "good.csv.gz", index=False)
    cfg.input = str(tmp_path / "good.csv.gz")
    assert predict(cfg) == tmp_path / "good_predictions.csv"  # not good.csv_predictions.csv


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data=csv", "data.path=missing.csv", "data.target=y"], "data.path: no file 'missing.csv'"),
        (["data=iris", "data.target=species"], "data.target: no column 'species'"),
        (["loss=mse"], "loss=mse does not fit a multiclass task"),
        (["model.depth=-2"], "model.depth must be an integer >= 0; got -2"),
        (["model.width=0"], "model.width must be an integer >= 1; got 0"),
        (["optimizer.lr=-0.1"], "optimizer.lr must be a positive number; got -0.1"),
        (["data.test_fraction=1.2"], "data.test_fraction must be in [0, 1); got 1.2"),
        (["+trainer.limit_train_batches=0.5"], "trainer.limit_train_batches=0.5 is not supported: each epoch"),
        (["+trainer.check_val_every_n_epoch=5"], "trainer.check_val_every_n_epoch=5 is not supported"),
        (["+trainer.gradient_clip_val=1.0"], "trainer.gradient_clip_val=1.0 is not supported: each minibatch takes"),
        (["+trainer.gradient_clip_algorithm=norm"], "trainer.gradient_clip_algorithm=norm is not supported: each"),
        (["+trainer.accumulate_grad_batches=2"], "accumulate_grad_batches=2 is not supported: each minibatch takes"),
        (["data=csv"], "data.path is required: add data.path=... to the command line."),
        (
            ["data=csv", "data.path=data/boston.csv"],
            "data.target is required: add data.target=COLUMN, the column to predict. The columns are: CRIM, ZN,",
        ),
        (["data.index_col=9"], "data.index_col=9 is not a column of 'data/iris.csv': give a column number from 0 to 5"),
        (  # a name: was a KeyError's traceback, from the reader that reads a file in pieces
            ["data.index_col=nope"],
            "data.index_col='nope' is not a column of 'data/iris.csv': give a column number from 0 to 5",
        ),
        (["data.batch_size=abc"], "data.batch_size must be a positive integer, or null for the whole split; got 'abc'"),
        (["data.features=[]"], "data.features is empty: name the feature columns"),
        (["data.split_seed=abc"], "data.split_seed must be an integer >= 0; got 'abc'"),
        (["data.val_fraction=abc"], "data.val_fraction must be in [0, 1); got 'abc'"),
        (["data.standardize=maybe"], "data.standardize must be true or false; got 'maybe'"),
        (["model.bias=abc"], "model.bias must be true or false; got 'abc'"),
        (["trainer.devices=abc"], "trainer: `devices` selected with `"),
        (  # a typo for 10 started a hundred processes and filled the machine's memory
            ["trainer.accelerator=cpu", "trainer.devices=100"],
            f"trainer.devices=100 would start 100 training processes on this machine's {os.cpu_count()} CPUs, which "
            f"only slow each other down and fill its memory. Give at most trainer.devices={os.cpu_count()}.",
        ),
        (["data=boston", "data.features=[RM,TAX,RM]"], "data.features: ['RM'] listed more than once"),
        (["seed=abc"], "seed must be an integer from 0 to 2**32 - 1; got 'abc'"),
        (["seed=-1"], "seed must be an integer from 0 to 2**32 - 1; got -1"),  # was a traceback from seed_everything
        (["threads=-3"], "threads must be a positive integer"),
        (["ckpt_path=nope.ckpt"], "ckpt_path: no file 'nope.ckpt'"),
        (["data=boston", "monitor.metric=val/acc"], "monitor.metric=val/acc is not measured every epoch; use one of"),
        (["data.val_fraction=0", "monitor.metric=val/acc"], "(there is no val split: data.val_fraction=0)"),
        (["monitor.mode=up"], "monitor.mode must be min or max; got 'up'"),
        (["+callbacks.model_checkpoint.save_on_train_epoch_end=false"], "save_on_train_epoch_end=false is not"),
        (
            ["callbacks.model_checkpoint.write_seconds=abc"],
            "model_checkpoint.write_seconds must be a number of seconds",
        ),
        (["+callbacks.progress.refresh_seconds=-1"], "callbacks.progress.refresh_seconds must be a number of seconds"),
        (["+callbacks.loss_landscape.points=1"], "callbacks.loss_landscape.points must be an integer >= 2; got 1"),
        (
            ["+callbacks.loss_landscape.w_range=[3,1]"],
            "callbacks.loss_landscape.w_range must be [low, high], low < high",
        ),
        (["+callbacks.loss_landscape.w_range=5"], "callbacks.loss_landscape.w_range must be [low, high], low < high"),
        # options of the libraries' classes, of a type their signatures name (was a TypeError epochs later)
        (
            ["callbacks=early_stopping", "callbacks.early_stopping.patience=abc"],
            "early_stopping.patience must be an integer; got 'abc'",
        ),
        (["trainer.max_epochs=abc"], "trainer.max_epochs must be an integer or null; got 'abc'"),
        (
            ["callbacks.model_checkpoint.save_top_k=1.5"],
            "callbacks.model_checkpoint.save_top_k must be an integer; got 1.5",
        ),
        (
            ["logger=tensorboard", "logger.tensorboard.name=1"],
            "logger.tensorboard.name must be a string or null; got 1",
        ),
        (["+optimizer.eps=abc"], "optimizer.eps must be a number; got 'abc'"),
        (  # what TensorBoardLogger does not take goes to the SummaryWriter it makes at the first log: a traceback
            ["+logger.tensorboard.flush_sec=5"],
            "logger.tensorboard: unknown option 'flush_sec' for dlbasics.callbacks.TensorBoardLogger",
        ),
        (
            ["+logger.tensorboard.log_dir=/x"],
            "logger.tensorboard: unknown option 'log_dir' for dlbasics.callbacks.TensorBoardLogger",
        ),
        # the SummaryWriter's options and the loggers' directories, made as training starts: was a traceback
        (["logger.tensorboard.max_queue=x"], "logger.tensorboard.max_queue must be a number; got 'x'"),
        (
            ["logger.tensorboard.save_dir=/dev/null/x"],
            "logger.tensorboard.save_dir: cannot write /dev/null/x: Not a directory. Give a directory you can write",
        ),
        (["logger=csv", "logger.csv.save_dir=/dev/null/x"], "logger.csv.save_dir: cannot write /dev/null/x: Not a"),
        # the callbacks' directories, made as they are built: were a traceback, the figures' after training
        (
            ["callbacks.model_checkpoint.dirpath=/dev/null/x"],
            "callbacks.model_checkpoint.dirpath: cannot make '/dev/null/x' (Not a directory). Give one you can write",
        ),
        (["callbacks.data_fit.dirpath=/dev/null/x"], "callbacks.data_fit.dirpath: cannot make '/dev/null/x' (Not a"),
        (["callbacks.loss_landscape.dirpath=/dev/null/x"], "callbacks.loss_landscape.dirpath: cannot make '/dev/null"),
        # the run's own arguments, which outweighed them without a word
        (["+model.n_outputs=7"], "model.n_outputs comes from the data, never from an option: leave it out."),
        (["+data.shuffle_seed=7"], "data.shuffle_seed is the run's to set: the batch order follows seed=..."),
        # the checks of the libraries we configure, named by the config entry that reached them
        (["trainer.max_epochs=-2"], "trainer: `max_epochs` must be a non-negative integer or -1"),
        (["+trainer.epochs=5"], "trainer: unknown option 'epochs' for lightning.pytorch.Trainer"),
        (  # adam.yaml's, which the user never typed: its way out was not said
            ["optimizer._target_=torch.optim.RMSprop"],
            "optimizer: unknown option 'fused' for torch.optim.RMSprop: check its spelling, or take it out: "
            "'~optimizer.fused'.",
        ),
        (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer: Invalid momentum value: -1"),
        (["trainer.accelerator=tpu"], "trainer: Requirement 'torch_xla"),  # ...: an option given needs a package
        # Lightning's options that have nothing to act on, or that the run sets from options of its own
        (["+trainer.fast_dev_run=true"], "trainer.fast_dev_run=true is not supported: a quick run is trainer.max_ep"),
        (["+trainer.overfit_batches=1"], "trainer.overfit_batches=1 is not supported: each epoch trains on every"),
        (["trainer.log_every_n_steps=50"], "trainer.log_every_n_steps=50 is not supported: an epoch's metrics are"),
        (["+trainer.enable_checkpointing=false"], "trainer.enable_checkpointing is the run's to set: checkpoints come"),
        (["+trainer.logger=false"], "trainer.logger is the run's to set: the loggers come from logger= (none, csv or"),
        (["+trainer.default_root_dir=/x"], "trainer.default_root_dir is the run's to set: a run's directory is Hydra"),
        (["+trainer.strategy=ddp_spawn"], "trainer.strategy=ddp_spawn is not supported: its processes keep the run's"),
        # a class misnamed, or not named, or not of its kind: was a traceback from Hydra or, later, Lightning
        (["optimizer._target_=torch.optim.Adamm"], "optimizer._target_: there is no torch.optim.Adamm. Did you mean "),
        (  # one inside another entry
            ["+trainer.strategy={_target_:lightning.pytorch.strategies.DDPStrategyy}"],
            "trainer.strategy._target_: there is no lightning.pytorch.strategies.DDPStrategyy. Did you mean "
            "lightning.pytorch.strategies.DDPStrategy?",
        ),
        (
            ["+callbacks.lr={_target_:lightning.pytorch.callbacks.LearningRateMonitr}"],
            "callbacks.lr._target_: there is no lightning.pytorch.callbacks.LearningRateMonitr. Did you mean "
            "lightning.pytorch.callbacks.LearningRateMonitor?",
        ),
        (["+callbacks.lr={logging_interval:step}"], "callbacks.lr names no class: give it one, e.g. +callbacks.lr="),
        (["+callbacks.relu={_target_:torch.nn.ReLU}"], "callbacks.relu._target_=torch.nn.ReLU is not a Lightning"),
        (  # it trained as without it: its schedule is stepped by automatic optimization
            ["+callbacks.swa={_target_:lightning.pytorch.callbacks.StochasticWeightAveraging,swa_lrs:0.5}"],
            "callbacks.swa is not supported: it needs Lightning's automatic optimization",
        ),
        (
            ["+callbacks.bar={_target_:lightning.pytorch.callbacks.TQDMProgressBar}"],
            "only one progress bar is supported. Add callbacks.progress=null to show yours in place of the project's",
        ),
        (
            ["+callbacks.gas={_target_:lightning.pytorch.callbacks.GradientAccumulationScheduler,scheduling:{0:2}}"],
            "callbacks.gas is not supported: each minibatch takes its own optimizer step",
        ),
        (
            ["callbacks=early_stopping", "callbacks.early_stopping.monitor=val_loss"],
            "callbacks.early_stopping.monitor=val_loss is not measured every epoch; use one of train/loss, val/loss",
        ),
        (
            ["optimizer=sgd", "optimizer._target_=torch.optim.LBFGS", "~optimizer.momentum", "~optimizer.weight_decay"],
            "optimizer._target_: LBFGS is not supported: its step evaluates the loss again",
        ),
        # valid options that trained silently to a wrong end, or to a traceback
        (["monitor.metric=val/acc", "monitor.mode=min"], "monitor.mode=min: val/acc is better when higher. Leave"),
        (  # stopped when the accuracy had not fallen for 20 epochs: the mode is monitor.mode's, for val/loss
            ["callbacks=early_stopping", "callbacks.early_stopping.monitor=val/acc"],
            "callbacks.early_stopping.monitor=val/acc is better when higher, and callbacks.early_stopping.mode is min. "
            "Give monitor.metric=val/acc, which sets",
        ),
        (["trainer.precision=16-true"], "trainer.precision=16-true: the optimizer's eps=1e-08 is 0 in float16"),
        (  # test r2 -5.6: every prediction under 1 thousand dollars
            ["data=boston", "model.output_activation=sigmoid"],
            "model.output_activation=sigmoid gives values from 0 to 1, and the target 'PRICE' goes from 5 to 50: use "
            "model.output_activation=relu (for values never negative) or identity (or auto).",
        ),
        (["+callbacks.lrf._target_=lightning.pytorch.callbacks.LearningRateFinder"], "the learning rate is optimizer"),
        (["+callbacks.bsf._target_=lightning.pytorch.callbacks.BatchSizeFinder"], "the batch size is data.batch_size"),
        (  # it saved at the epochs' ends whose step count was a multiple
            [
                "+callbacks.ck._target_=lightning.pytorch.callbacks.ModelCheckpoint",
                "+callbacks.ck.every_n_train_steps=4",
            ],
            "callbacks.ck.every_n_train_steps is not supported: checkpoints are taken at the end of an epoch",
        ),
        (["+trainer.use_distributed_sampler=false"], "trainer.use_distributed_sampler=false is not supported: under"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, overrides, message):
    with pytest.raises(SystemExit) as exit_:
        cli(train, make_cfg(tmp_path, *overrides))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert read_metrics(tmp_path)["status"] == "failed"


def test_a_monitored_accuracy_keeps_its_best_epoch_the_highest(tmp_path):
    """monitor.mode follows the metric: monitor.metric=val/acc kept the epoch of the lowest accuracy as best.ckpt."""
    metrics = train(make_cfg(tmp_path, "logger=csv", "monitor.metric=val/acc", "trainer.max_epochs=8"))
    log = pd.read_csv(tmp_path / "metrics.csv").dropna(subset=["val/acc"])
    assert log["val/acc"].min() < log["val/acc"].max() == pytest.approx(metrics["val/acc_best"])
    first_best = log.loc[log["val/acc"].idxmax(), "epoch"]  # a later epoch as good is no improvement
    assert torch.load(metrics["checkpoint"], weights_only=True)["epoch"] == first_best


def test_a_csv_of_a_header_alone_is_one_line_that_names_data_path(tmp_path, capsys):
    (tmp_path / "header.csv").write_text("a,y\n")
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path, "data=csv", f"data.path={tmp_path / 'header.csv'}", "data.target=y"))
    assert (
        capsys.readouterr().err
        == "error: data.path: the CSV has a header (a, y) but no data rows: add rows below it.\n"
    )


def test_resuming_with_other_model_options_is_refused_before_training(tmp_path, capsys):
    first = train(make_cfg(tmp_path / "run", "logger=none", "trainer.max_epochs=1"))
    with pytest.raises(SystemExit) as exit_:
        cli(train, make_cfg(tmp_path / "other", f"ckpt_path={first['checkpoint']}", "model.width=50"))
    assert exit_.value.code == 2
    assert "holds a model trained with other options (model.width=100). Resume with" in capsys.readouterr().err
    metrics = read_metrics(tmp_path / "other")
    assert metrics["status"] == "failed" and metrics["error"].startswith("ckpt_path: ")
    assert not (tmp_path / "other" / "checkpoints" / "last.ckpt").exists()  # nothing trained


def test_a_required_option_left_out_is_one_line(tmp_path, capsys):
    for fn, config, key in ((evaluate, "eval", "ckpt_path"), (predict, "predict", "input")):
        with pytest.raises(SystemExit) as exit_:
            cli(fn, make_cfg(tmp_path, config=config))
        assert exit_.value.code == 2
        assert capsys.readouterr().err == f"error: {key} is required: add {key}=... to the command line.\n"


def test_callbacks_progress_null_shows_no_progress_display(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    train(make_cfg(tmp_path, "logger=none", "callbacks.progress=null"))
    out, err = capsys.readouterr()
    assert "poch" not in out + err and "Testing" not in out + err  # neither ours nor Lightning's default bar


def test_eval_refuses_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, "ckpt_path=data/iris.csv", config="eval"))
    assert "is refused: it is not a complete PyTorch checkpoint" in capsys.readouterr().err


def test_eval_on_an_accelerator_the_machine_lacks_names_its_own_option(tmp_path, capsys):
    """It said Lightning's words alone, or offered trainer=ddp_cpu, which eval.py refuses."""
    metrics = train(make_cfg(tmp_path / "run", "logger=none", "trainer.max_epochs=1"))
    with pytest.raises(SystemExit):  # no Linux machine has Apple's GPU
        cli(evaluate, make_cfg(tmp_path, f"ckpt_path={metrics['checkpoint']}", "accelerator=mps", config="eval"))
    err = capsys.readouterr().err
    assert err.startswith("error: accelerator=mps: `MPSAccelerator` can not run on your system") and err.endswith(
        ". Give accelerator=cpu.\n"
    )


def test_eval_refuses_a_checkpoint_without_a_test_split_or_with_weights_of_another_model(tmp_path, capsys):
    run = train(make_cfg(tmp_path / "run", "logger=none", "trainer.max_epochs=1", "data.test_fraction=0"))
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, f"ckpt_path={run['checkpoint']}", config="eval"))
    assert "error: this checkpoint's data has no test split (it was trained with data.test_fraction=0)" in (
        capsys.readouterr().err
    )
    ckpt = torch.load(run["checkpoint"], weights_only=True)
    ckpt["hyper_parameters"]["model"]["width"] = 50  # its weights are of width 100
    torch.save(ckpt, tmp_path / "edited.ckpt")
    with pytest.raises(SystemExit):
        cli(evaluate, make_cfg(tmp_path, f"ckpt_path={tmp_path / 'edited.ckpt'}", config="eval"))
    assert "edited.ckpt' holds weights that do not fit its own model (" in capsys.readouterr().err


def test_command_line_errors_end_without_traceback(tmp_path):
    """As a user sees it: one line, exit status 2, no Python traceback, also for what Hydra cannot compose."""
    bad_csv = run_script("train.py", "data=csv", "data.path=nope.csv", "data.target=y", f"hydra.run.dir={tmp_path}")
    assert bad_csv.returncode == 2
    assert (
        bad_csv.stderr.strip()
        == f"error: data.path: no file 'nope.csv' in {ROOT}. Give the path of a CSV file: data.path=path/to/file.csv"
    )
    (tmp_path / "file").touch()
    unwritable = run_script("train.py", f"hydra.run.dir={tmp_path / 'file' / 'run'}")
    assert unwritable.returncode == 2
    assert unwritable.stderr.startswith("error: hydra.run.dir: cannot make") and unwritable.stderr.count("\n") == 1
    (tmp_path / "here").mkdir()  # Hydra would make the working directory the run's
    empty = run_script(str(ROOT / "train.py"), "hydra.run.dir=''", cwd=tmp_path / "here")
    assert empty.returncode == 2 and not list((tmp_path / "here").iterdir())
    assert empty.stderr == "error: hydra.run.dir is empty. Give the run a directory of its own: hydra.run.dir=...\n"
    elsewhere = run_script(str(ROOT / "train.py"), f"run_dir={tmp_path / 'elsewhere'}", cwd=tmp_path / "here")
    assert elsewhere.returncode == 2 and not list((tmp_path / "here").iterdir())  # no run split in two directories
    assert elsewhere.stderr == "error: run_dir is Hydra's directory for the run, its record and log too: give " \
        "hydra.run.dir=... instead.\n"  # fmt: skip
    # what Hydra cannot compose: its few lines (exit status 1) become one with the nearest choice or key
    unknown = run_script("train.py", "model=mlpp", f"hydra.run.dir={tmp_path}")
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "error: model=mlpp: no such config. Did you mean model=mlp? Choose one of: mlp, perceptron.\n"
    )
    misspelt = run_script("train.py", "model.depth=2", "model.widht=10", f"hydra.run.dir={tmp_path / 'misspelt'}")
    assert misspelt.returncode == 2
    assert misspelt.stderr == (
        "error: model.widht: no such key. Did you mean model.width? `python train.py --cfg job` shows every key.\n"
    )
    assert not (tmp_path / "misspelt").exists()  # nothing was run
    unrecorded = run_script("train.py", "hydra.output_subdir=null", f"hydra.run.dir={tmp_path / 'unrecorded'}")
    assert unrecorded.returncode == 2 and unrecorded.stderr.startswith("error: hydra.output_subdir=null is not")
    null = run_script("train.py", "model=null", f"hydra.run.dir={tmp_path / 'null'}")  # Hydra's own refusal
    assert null.returncode == 2
    assert null.stderr == (
        "error: model=null: a config group takes one of its configs, not null "
        "(`python train.py --help` shows the config groups and their options)\n"
    )


def test_a_run_directory_named_from_hydras_choices_is_made_before_the_run(tmp_path, monkeypatch):
    """The default hydra.run.dir reads ${hydra:runtime.choices...}, which needs HydraConfig: it was not set yet,
    and every default run printed Hydra's warning that the callback failed."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # as when Hydra calls on_run_start; restored after
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            "train", [f"hydra.run.dir={tmp_path}/${{hydra:runtime.choices.data}}-run"], return_hydra_config=True
        )
    OutputDirectory().on_run_start(cfg)
    assert (tmp_path / "iris-run").is_dir()


def test_an_interpolation_on_the_command_line_is_one_line_that_names_its_key(tmp_path, monkeypatch, capsys):
    """'model.width=${nope}': reading Hydra's list of overrides item by item resolved it. Hydra printed that the
    callback OutputDirectory had failed, and the run's line did not say which option named nothing."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # as when Hydra calls on_run_start; restored after
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", ["model.width=${nope}", f"hydra.run.dir={tmp_path}/run"], return_hydra_config=True)
    OutputDirectory().on_run_start(cfg)  # raised InterpolationKeyError
    assert (tmp_path / "run").is_dir()
    with pytest.raises(SystemExit):
        cli(train, make_cfg(tmp_path / "run", "model.width=${nope}"))
    assert capsys.readouterr().err == (
        "error: model.width: Interpolation key 'nope' not found: a ${...} names a key of the config, or an "
        "environment variable.\n"
    )


def test_a_run_of_a_csv_is_named_after_its_file(tmp_path, make_csv, monkeypatch):
    """Every CSV of a lab went to logs/csv-mlp/, and TensorBoard named each run csv-mlp."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # restored after the test
    gz, dotted = make_csv(name="wine.csv.gz"), make_csv(name="2024.01.iris.CSV")
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        for overrides, name in [
            (["data=csv", f"data.path={gz}", "data.target=y"], "wine-mlp"),
            (["data=csv", f"data.path={dotted}", "data.target=y"], "2024.01.iris-mlp"),
            ([], "iris-mlp"),
        ]:
            cfg = compose("train", overrides, return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)  # as Hydra sets it before it makes the run's directory
            assert Path(cfg.hydra.run.dir).parent == Path("logs", name)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["hparams_search=iris_optuna", "model.depth=2"],
            "hparams_search=iris_optuna searches over many runs: add -m "
            "(python train.py -m hparams_search=iris_optuna model.depth=2)",
        ),
        (["hydra/sweeper=optuna"], "hydra/sweeper=optuna searches over many runs: add -m (python train.py -m "),
        (  # a sweep refuses hydra.run.dir
            ["hparams_search=iris_optuna", "hydra.run.dir=out"],
            "hparams_search=iris_optuna searches over many runs: add -m "
            "(python train.py -m hparams_search=iris_optuna hydra.sweep.dir=out)",
        ),
        (["~data"], "data is needed and not in the config (taken out with ~data?)."),  # was refused in its run dir
    ],
)
def test_a_search_without_multirun_or_without_data_is_refused_before_the_run(
    tmp_path, monkeypatch, capsys, overrides, message
):
    """Without -m, Hydra ran one job of the default options, exit status 0, as if the search had been done."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # as when Hydra calls on_run_start; restored after
    monkeypatch.setattr("sys.argv", ["train.py", *overrides])
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", [*overrides, f"hydra.run.dir={tmp_path}/run"], return_hydra_config=True)
    with pytest.raises(SystemExit) as exit_:
        OutputDirectory().on_run_start(cfg)
    assert exit_.value.code == 2 and not (tmp_path / "run").exists()
    assert capsys.readouterr().err.startswith(f"error: {message}")


def test_commands_to_paste_name_the_script_as_it_was_run(tmp_path, monkeypatch):
    """python ~/dlbasics/train.py from another directory printed `Resume: python train.py ...`, which runs nothing."""
    from dlbasics.command import script
    from dlbasics.run import resume_hint

    monkeypatch.setattr("sys.argv", ["/home/you/my labs/train.py", "seed=1"])
    assert script() == "'/home/you/my labs/train.py'" and script("eval.py") == "eval.py"
    assert resume_hint(tmp_path).startswith("Resume: python '/home/you/my labs/train.py' hydra.run.dir=")
    monkeypatch.setattr("sys.argv", ["/usr/bin/pytest"])  # not one of the project's scripts
    assert resume_hint(tmp_path).startswith("Resume: python train.py hydra.run.dir=")


@pytest.mark.parametrize(
    "given, hook, message",
    [
        ("hydra.sweep.dir", "on_run_start", "hydra.sweep.dir is not used by a run (without -m), which goes to"),
        ("hydra.run.dir", "on_multirun_start", "hydra.run.dir is not used by a sweep (-m), which goes to hydra.sweep"),
    ],
)
def test_the_directory_option_of_the_other_mode_is_refused(tmp_path, monkeypatch, capsys, given, hook, message):
    """Hydra ignores it: `-m ... hydra.run.dir=D` wrote the sweep to logs/multiruns/DATE, and D was never made."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # as when Hydra calls the hook; restored after
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", [f"{given}={tmp_path}/d"], return_hydra_config=True)
    with pytest.raises(SystemExit) as exit_:
        getattr(OutputDirectory(), hook)(cfg)
    assert exit_.value.code == 2 and not any(tmp_path.iterdir())
    assert capsys.readouterr().err.startswith(f"error: {message}")


def test_early_stopping_says_when_and_why_it_stopped(tmp_path, caplog):
    """It stopped after 5 of 200 epochs and the console looked like a full run's: only metrics.json said 5."""
    options = ["callbacks=early_stopping", "callbacks.early_stopping.patience=3", "optimizer.lr=0.1", "logger=none"]
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        metrics = train(make_cfg(tmp_path, *options, "trainer.max_epochs=200"))
    assert metrics["status"] == "completed" and metrics["epochs"] < 200
    line = f"Stopped early after epoch {metrics['epochs']} of 200: val/loss had not improved for 3 epochs."
    assert caplog.messages.count(line) == 1
    assert caplog.messages.index(line) < next(i for i, m in enumerate(caplog.messages) if m.startswith("test/"))


def test_an_optuna_search_optimizes_in_the_monitored_metrics_direction(tmp_path, monkeypatch, capsys):
    """hparams_search=iris_optuna monitor.metric=val/acc minimized the accuracy: its best trial was the worst."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # as when Hydra calls the hook; restored after
    search = ["hparams_search=iris_optuna", f"hydra.sweep.dir={tmp_path}/s"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        for metric, direction in [("val/loss", "minimize"), ("val/acc", "maximize")]:
            cfg = compose("train", [*search, f"monitor.metric={metric}"], return_hydra_config=True)
            assert cfg.hydra.sweeper.direction == direction
        OutputDirectory().on_multirun_start(cfg)  # val/acc, maximized: a sweep
        cfg = compose("train", [*search, "hydra.sweeper.direction=maximize"], return_hydra_config=True)
    with pytest.raises(SystemExit):
        OutputDirectory().on_multirun_start(cfg)
    assert capsys.readouterr().err == (
        "error: hydra.sweeper.direction=maximize searches for the worst val/loss (monitor.mode=min): leave it out, "
        "as it follows monitor.mode.\n"
    )
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):  # optuna's "No trials are completed yet"
        cfg = compose(
            "train", [*search, "hydra.sweeper.n_trials=0", f"hydra.sweep.dir={tmp_path}/n"], return_hydra_config=True
        )
    with pytest.raises(SystemExit):
        OutputDirectory().on_multirun_start(cfg)
    assert (
        capsys.readouterr().err == "error: hydra.sweeper.n_trials must be an integer >= 1 (the runs it makes); got 0.\n"
    )
    assert not (tmp_path / "n").exists()  # refused before the sweep's directory is made


def test_a_sweep_of_no_jobs_is_refused(tmp_path, monkeypatch, capsys):
    """-m seed=range(0,0) said "Launching 0 jobs" and exited 0, with nothing else."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", [f"hydra.sweep.dir={tmp_path}/s"], return_hydra_config=True)
    with open_dict(cfg):  # as Hydra's multirun has them: compose() takes no sweep
        cfg.hydra.overrides.task = ["optimizer.lr=0.1,0.01", "seed=range(3,3)"]
    with pytest.raises(SystemExit) as exit_:
        OutputDirectory().on_multirun_start(cfg)
    assert exit_.value.code == 2 and not (tmp_path / "s").exists()
    assert capsys.readouterr().err == (
        "error: seed=range(3,3) gives no value, so the sweep has no jobs: give it one value or more.\n"
    )


def test_depth_or_width_beside_hidden_widths_is_refused(tmp_path, monkeypatch):
    """model.hidden, from an experiment say, outweighs depth and width: -m model.depth=1,2,3 trained one model."""
    from dlbasics.run import check_run_options

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # as in a run, whose overrides Hydra holds
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", ["model.hidden=[20,10]", "model.depth=3"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with pytest.raises(UserError, match=r"^model.depth is not used: model.hidden=\[20, 10\] gives the hidden"):
        check_run_options(cfg)
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", ["model.hidden=[20,10]"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    check_run_options(cfg)  # hidden alone: the mlp config's depth and width are defaults, not given


def test_a_csv_of_ones_own_without_data_csv_is_refused(tmp_path, monkeypatch, make_csv):
    """Forgetting data=csv read the file with iris's settings: its first column taken as the index (a feature
    gone without a word), its target taken as classes."""
    from dlbasics.run import check_run_options

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    path = make_csv(kind="regression")
    for overrides, refused in [
        ([f"data.path={path}", "data.target=y"], True),
        ([f"data.path={ROOT / 'data' / 'iris.csv'}"], False),  # the course's file, from another directory
        (["data=iris", f"data.path={path}", "data.target=y"], False),  # iris's settings, asked for
        (["data=csv", f"data.path={path}", "data.target=y"], False),
    ]:
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose("train", overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        if refused:
            with pytest.raises(
                UserError,
                match=r"^data.path is given without data=csv: the default data=iris would "
                r"read it with its own settings \(index_col=0, task=multiclass\). Add data=csv",
            ):
                check_run_options(cfg)
        else:
            check_run_options(cfg)


def test_the_model_is_summarized_in_full_once_in_a_process(tmp_path, caplog, monkeypatch):
    """A sweep's jobs of one model (the basic launcher's, in one process) printed the same 7-line table each."""
    from dlbasics.callbacks import ModelSummary

    monkeypatch.setattr(ModelSummary, "shown", set())
    job_log = logging.FileHandler(tmp_path / "train.log", delay=True)  # as Hydra's job logging writes a job's log
    with caplog.at_level("INFO", logger="dlbasics"):
        for lr in (0.01, 0.1):
            if lr == 0.1:
                logging.getLogger().addHandler(job_log)
            try:
                train(make_cfg(tmp_path / str(lr), f"optimizer.lr={lr}", "logger=none", "trainer.max_epochs=1"))
            finally:
                logging.getLogger().removeHandler(job_log)
                job_log.close()
        train(make_cfg(tmp_path / "wider", "model.width=8", "logger=none", "trainer.max_epochs=1"))
    summaries = [m for m in caplog.messages if m.startswith("Model: ")]
    assert summaries[1] == "Model: MLP, 4 inputs, multiclass, 3 classes; Total params: 803 (as above)"
    assert "Layer (type)" in summaries[0] and "Layer (type)" in summaries[2]  # another model: in full
    assert sum(m.startswith("Data: ") for m in caplog.messages) == 1  # the console describes the data once
    logged = (tmp_path / "train.log").read_text()  # the second job's own log: in full, as if it had run alone
    assert logged.startswith("Data: data/iris.csv, 150 rows") and "Layer (type)" in logged and "as above" not in logged


def test_the_run_says_what_it_found_in_the_data(tmp_path, caplog, monkeypatch, make_csv):
    """Which columns are the features, which class a binary model's output is the probability of, how many rows
    each split got: a user saw only "7 inputs, binary, 2 classes"."""
    from dlbasics.callbacks import ModelSummary

    monkeypatch.setattr(ModelSummary, "shown", set())
    path = make_csv(n=50, kind="binary")
    with caplog.at_level("INFO", logger="dlbasics"):
        train(make_cfg(tmp_path / "b", "data=csv", f"data.path={path}", "data.target=y", "logger=none"))
        train(make_cfg(tmp_path / "r", "data=boston", "data.target=[PRICE,LSTAT]", "logger=none"))
    data = [m for m in caplog.messages if m.startswith("Data: ")]
    assert data == [
        f"Data: {path}, 50 rows (30 train, 10 val, 10 test); target 'y', 2 classes (no, yes; the output is p(yes)); "
        "3 features: f0, f1, f2",
        "Data: data/boston.csv, 506 rows (304 train, 101 val, 101 test); targets 'PRICE', 'LSTAT', a quantity each; "
        "6 features: RM, CRIM, INDUS, NOX, AGE, TAX",
    ]
    assert any(m.startswith("Model: MLP, 6 inputs, regression, 2 outputs\n") for m in caplog.messages)


def test_progress_line_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    train(make_cfg(tmp_path / "pipe", "logger=none"))
    assert "epoch" not in capsys.readouterr().out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    train(make_cfg(tmp_path / "tty", "logger=none"))
    out = capsys.readouterr().out
    assert "\repoch 3/3  train/loss" in out and "val/loss" in out


def test_max_steps_stops_within_an_epoch(tmp_path):
    """An epoch is one Lightning step, yet trainer.max_steps counts steps of gradient descent (minibatches)."""
    metrics = train(make_cfg(tmp_path, "data.batch_size=16", "trainer.max_epochs=5", "trainer.max_steps=10"))
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    # 90 training rows: 6 minibatches an epoch, so the 10th step is the 4th of the second epoch
    assert last["global_step"] == 10 and metrics["epochs"] == 2 and metrics["status"] == "completed"


def test_double_precision_trains_in_float64_to_the_same_numbers(tmp_path):
    single = train(make_cfg(tmp_path / "32", "logger=none"))
    double = train(make_cfg(tmp_path / "64", "logger=none", "trainer.precision=64-true"))
    assert double["status"] == "completed" and double["val/loss"] == pytest.approx(single["val/loss"], rel=1e-5)
    weights = torch.load(tmp_path / "64" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(w.dtype == torch.float64 for w in weights.values())


HOOK_CALLS = Counter()


class StepHooks(L.Callback):
    """A user's callback on the hooks around each step, e.g. to log gradient norms."""

    def on_before_backward(self, trainer, learner, loss):
        HOOK_CALLS["on_before_backward"] += 1

    def on_after_backward(self, trainer, learner):
        HOOK_CALLS["on_after_backward"] += all(p.grad is not None for p in learner.parameters())

    def on_before_optimizer_step(self, trainer, learner, optimizer):
        HOOK_CALLS["on_before_optimizer_step"] += 1


def test_callbacks_on_the_step_hooks_are_called_at_every_step_and_train_the_same(tmp_path):
    """Steps call loss.backward() and the optimizer directly when nothing hooks them (module.direct_steps),
    and go through Lightning's manual_backward and optimizer step when a callback does: same weights."""
    common = ["data.batch_size=16", "trainer.max_epochs=3", "logger=none"]
    train(make_cfg(tmp_path / "direct", *common))
    HOOK_CALLS.clear()
    train(make_cfg(tmp_path / "hooked", *common, "+callbacks.step_hooks._target_=tests.test_train.StepHooks"))
    steps = 3 * 6  # 90 training rows: 6 minibatches an epoch
    assert dict(HOOK_CALLS) == dict.fromkeys(
        ["on_before_backward", "on_after_backward", "on_before_optimizer_step"], steps
    )
    direct, hooked = (
        torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=True) for d in ("direct", "hooked")
    )
    assert direct["global_step"] == hooked["global_step"] == steps
    assert direct["state_dict"].keys() == hooked["state_dict"].keys()
    assert all(torch.equal(direct["state_dict"][k], hooked["state_dict"][k]) for k in direct["state_dict"])


LOOPS_CHECKED = []


class LoopsAsLightning(L.Callback):
    """Compares the checkpoints' "loops" (module.loops_state) with Lightning's own at every epoch's end."""

    def on_train_epoch_end(self, trainer, learner):
        connector = trainer._checkpoint_connector
        ours, lightnings = connector._get_loops_state_dict(), type(connector)._get_loops_state_dict(connector)
        LOOPS_CHECKED.append((connector._get_loops_state_dict.func.__name__, ours == lightnings))


def test_checkpoints_hold_the_loops_state_lightning_would_write(tmp_path):
    """Checkpoints are taken every epoch; their loop progress is made by loops_state, not dataclasses.asdict."""
    LOOPS_CHECKED.clear()
    checks = "+callbacks.loops._target_=tests.test_train.LoopsAsLightning"
    cfg = make_cfg(tmp_path, "data.batch_size=16", "logger=none", checks)
    train(cfg)
    assert LOOPS_CHECKED == [("loops_state", True)] * 3
    loops = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["loops"]
    # taken at the last epoch's end, which Lightning counts as completed once its hooks are over
    assert loops["fit_loop"]["epoch_progress"]["total"] == dict(ready=3, started=3, processed=3, completed=2)
    assert loops["fit_loop"]["epoch_loop.manual_optimization.optim_step_progress"]["total"]["completed"] == 3 * 6


def test_hydra_job_chdir_reads_the_data_from_where_the_command_started(tmp_path):
    """hydra.job.chdir=true runs the job in its run directory: data/iris.csv is still the project's."""
    overrides = ["hydra.job.chdir=true", "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={tmp_path}"]
    run = run_script("train.py", *overrides)
    assert run.returncode == 0, run.stderr
    assert read_metrics(tmp_path)["status"] == "completed"


def test_lightnings_lines_are_shown_once_and_a_first_runs_font_cache_not_at_all(tmp_path):
    """A job imports Lightning and matplotlib after Hydra has set up logging (dlbasics.command): Lightning's lines
    were shown twice (the second on stderr as `INFO: ...`), and matplotlib's `generated new fontManager` once."""
    args = ["train.py", "callbacks=early_stopping", "+callbacks.early_stopping.verbose=true", "trainer.max_epochs=3",
            "logger=none", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    env = os.environ | {"MPLCONFIGDIR": str(tmp_path / "matplotlib")}  # a machine's first run: no font cache
    run = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr == ""
    improved = [line for line in run.stdout.splitlines() if line.startswith("Metric val/loss improved")]
    assert len(improved) == 3 and len(set(improved)) == 3  # one an epoch, each once
    assert "fontManager" not in run.stdout and run.stdout.startswith("Data: data/iris.csv")
    logged = (tmp_path / "run" / "train.log").read_text().splitlines()
    assert improved == [line for line in logged if "improved" in line]  # and in the run's log


def test_a_sweep_of_eval_jobs_that_fail_exits_non_zero(tmp_path):
    run = run_script(str(ROOT / "eval.py"), "-m", "ckpt_path=a.ckpt,b.ckpt", cwd=tmp_path)
    assert run.returncode == 1 and run.stderr.count("error: ckpt_path: no file") == 2
    assert run.stderr.endswith("error: 2 of the sweep's jobs failed (above).\n")


def test_save_top_k_keeps_the_k_best_checkpoints_and_tests_the_best(tmp_path):
    """With one file name for all of them, Lightning kept one, took every epoch for a new best, and tested the last."""
    options = ["callbacks.model_checkpoint.save_top_k=3", "trainer.max_epochs=40", "optimizer.lr=0.3", "logger=csv"]
    metrics = train(make_cfg(tmp_path, *options))
    logged = pd.read_csv(tmp_path / "metrics.csv").dropna(subset="val/loss").astype({"epoch": int})
    best3 = logged.nsmallest(3, "val/loss")["epoch"].tolist()
    assert best3[0] != 39  # lr 0.3 overshoots: the best epoch is not the last
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("best*.ckpt")) == sorted(
        f"best-epoch{e}.ckpt" for e in best3
    )
    assert metrics["checkpoint"] == str(tmp_path / "checkpoints" / f"best-epoch{best3[0]}.ckpt")
    assert metrics["val/loss_best"] == pytest.approx(logged["val/loss"].min())


def test_max_time_as_lightning_documents_it(tmp_path):
    """A dict, as Lightning checks for one: the config's was a DictConfig (ConfigAttributeError: total_seconds)."""
    assert train(make_cfg(tmp_path, "+trainer.max_time={minutes:5}", "logger=none"))["status"] == "completed"


def test_a_run_without_max_epochs_trains_to_lightnings_default_or_max_steps(tmp_path):
    """~trainer.max_epochs: Lightning's 1000 epochs, here cut by max_steps (it failed at the end, having trained)."""
    metrics = train(make_cfg(tmp_path, "~trainer.max_epochs", "trainer.max_steps=12"))  # 6 minibatches an epoch
    assert metrics["status"] == "completed" and metrics["epochs"] == 2


def test_what_lightning_logs_is_at_the_steps_ours_are(tmp_path):
    """A Lightning callback logs at Lightning's count of batches, one an epoch here: it is kept at the step count."""
    lr_monitor = "+callbacks.lr_monitor={_target_:lightning.pytorch.callbacks.LearningRateMonitor}"
    train(make_cfg(tmp_path, lr_monitor))  # iris: 6 minibatches an epoch, 3 epochs
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [6, 12, 18]
    assert {e.step for e in events.Scalars("lr-Adam")} == {0, 6, 12}  # as each epoch's steps start


@pytest.mark.parametrize("precision", ["32-true", "64-true"])  # the example input of the model's dtype
def test_tensorboard_draws_the_models_graph_when_asked(tmp_path, precision):
    """logger.tensorboard.log_graph=true: Lightning traces the model on its example input (without one it warned)."""
    train(
        make_cfg(
            tmp_path, "+logger.tensorboard.log_graph=true", "trainer.max_epochs=1", f"trainer.precision={precision}"
        )
    )
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    nodes = events.Graph().node
    assert any("Linear" in node.name for node in nodes)
    inputs = [[d.size for d in n.attr["_output_shapes"].list.shape[0].dim] for n in nodes if n.name.startswith("input")]
    assert inputs == [[1, 4]]  # a row of iris' 4 features


def test_the_closing_line_gives_each_metric_four_digits(tmp_path, caplog):
    """A perfect test accuracy read `test/acc 1  test/loss 0.01917`, as if rounded, where 0.9333 had four digits."""
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        metrics = train(make_cfg(tmp_path, "data=iris_binary", "logger=none", "trainer.max_epochs=20"))
    assert metrics["test/acc"] == 1.0  # setosa apart from the others: a line tells them apart
    assert f"test/acc 1.000  test/loss {metrics['test/loss']:#.4g}" in caplog.messages
