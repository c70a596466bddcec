"""The course's experiments give the course's numbers, and its figures are drawn."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlbasics import figures
from dlbasics.run import train

from .conftest import ROOT, make_cfg


def least_squares_w() -> float:
    """sum(x y) / sum(x^2) for RM -> PRICE: the w that gradient descent on y = w x converges to (3.653)."""
    boston = pd.read_csv(ROOT / "data" / "boston.csv")
    return float((boston["RM"] * boston["PRICE"]).sum() / (boston["RM"] ** 2).sum())


def course_gradient_descent(lr: float, steps: int = 10) -> np.ndarray:
    """The course's update, w(t+1) = w(t) - lr * sum_i 2 (w(t) x_i - y_i) x_i, from w(0) = 0, in float64."""
    boston = pd.read_csv(ROOT / "data" / "boston.csv")
    x, y = boston["RM"].to_numpy(), boston["PRICE"].to_numpy()
    w = [0.0]
    for _ in range(steps):
        w.append(w[-1] - lr * np.sum(2 * (w[-1] * x - y) * x))
    return np.array(w)


def sse(w: np.ndarray) -> np.ndarray:
    boston = pd.read_csv(ROOT / "data" / "boston.csv")
    return ((w[:, None] * boston["RM"].to_numpy() - boston["PRICE"].to_numpy()) ** 2).sum(1)


@pytest.fixture(scope="module")
def chapter1(tmp_path_factory):
    runs = {}
    for lr in (1e-6, 1e-5, 5e-5):
        run_dir = tmp_path_factory.mktemp(f"lr{lr}")
        metrics = train(
            make_cfg(run_dir, "experiment=ch1_gradient_descent", f"optimizer.lr={lr}", "trainer.max_epochs=10")
        )
        runs[lr] = (run_dir, metrics, pd.read_csv(run_dir / "trajectory.csv"))
    return runs


@pytest.mark.parametrize("lr", [1e-6, 1e-5, 5e-5])
def test_chapter1_follows_the_course_update(chapter1, lr):
    run_dir, metrics, path = chapter1[lr]
    reference = course_gradient_descent(lr)
    assert len(path) == 11 and metrics["epochs"] == 10 and metrics["params"] == 1
    np.testing.assert_allclose(path["w"], reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(path["loss"], sse(reference), rtol=1e-5)
    assert metrics["train/w"] == pytest.approx(reference[-1], rel=1e-5)


def test_chapter1_three_stories(chapter1):
    slow, good, diverging = (chapter1[lr][2]["w"].to_numpy() for lr in (1e-6, 1e-5, 5e-5))
    best = least_squares_w()
    assert abs(good[-1] - best) < 0.03  # converging to the least-squares w
    assert abs(slow[-1] - best) > 1.0  # too slow: still far after 10 steps
    distance = diverging - best
    assert np.all(np.sign(distance[1:]) == -np.sign(distance[:-1]))  # w oscillates around the minimum...
    assert np.all(np.diff(np.abs(distance)) > 0)  # ...with growing amplitude
    assert np.all(np.diff(chapter1[5e-5][2]["loss"]) > 0)  # and the loss grows at every step
    # and the runs say so, as the course does: the loss never became NaN, yet it ended above its first epoch's
    assert [chapter1[lr][1]["status"] for lr in (1e-6, 1e-5, 5e-5)] == ["completed", "completed", "diverged"]


def test_chapter1_tensorboard_has_w_and_loss_at_every_step_and_the_landscape(chapter1):
    run_dir, _, path = chapter1[1e-5]
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    w = events.Scalars("train/w")
    assert [e.step for e in w] == list(range(1, 11))  # one point per gradient-descent step
    np.testing.assert_allclose([e.value for e in w], path["w"][1:], rtol=1e-6)
    assert len(events.Scalars("train/loss")) == 10
    assert {"landscape", "data_fit"} <= set(events.Tags()["images"])
    assert (run_dir / "fit.png").is_file()


@pytest.fixture
def drawn(monkeypatch):
    """What the data figure of a run is drawn from (its arguments) and the figure itself."""
    drawn, data_fit = {}, figures.data_fit

    def draw(*args):
        drawn.update(args=args, fig=data_fit(*args))
        return drawn["fig"]

    monkeypatch.setattr(figures, "data_fit", draw)
    return drawn


def test_chapter1_landscape_is_the_courses_loss(chapter1):
    """The curve drawn is L(w) = Σ (w x - y)² over the 506 houses, at every point of its grid."""
    from dlbasics.callbacks import LossLandscape
    from dlbasics.data import TabularData
    from dlbasics.run import load_learner

    learner = load_learner(chapter1[1e-5][0] / "checkpoints" / "last.ckpt")
    x, y = TabularData.from_meta(learner.hparams.data).splits["train"]
    grid = np.linspace(-2, 10, 100)
    np.testing.assert_allclose(LossLandscape._losses(learner, x, y, grid[:, None]), sse(grid), rtol=1e-5)


def test_a_landscape_over_many_rows_draws_its_surface_from_a_sample(tmp_path, monkeypatch):
    """The surface's 100 points over a sample of the rows (a million took 88 s), its sum of squares scaled to all
    of them; the path's losses over every row."""
    drawn = {}
    landscape_1d = figures.landscape_1d
    monkeypatch.setattr(figures, "landscape_1d", lambda *a, **kw: drawn.update(args=a, **kw) or landscape_1d(*a, **kw))
    ch1 = ["experiment=ch1_gradient_descent", "logger=none", "+callbacks.loss_landscape.rows=200"]
    train(make_cfg(tmp_path, *ch1))
    grid, curve, path_w, path_loss = drawn["args"]
    assert drawn["title"].endswith("\n(the surface over 200 of the 506 training rows)")
    # an estimate of the course's L(w) from 40% of the rows (without the scale, 2.5 times too small)
    np.testing.assert_allclose(curve, sse(grid), rtol=0.35)
    assert abs(grid[np.argmin(curve)] - least_squares_w()) < 0.2
    np.testing.assert_allclose(path_loss, sse(path_w), rtol=1e-5)  # exact


def test_chapter1_landscape_is_drawn(chapter1):
    run_dir = chapter1[1e-5][0]
    with Image.open(run_dir / "landscape.png") as image:
        assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 400
    fig = figures.landscape_1d(np.linspace(-2, 10, 50), sse(np.linspace(-2, 10, 50)), [0.0, 1.5], [3.0, 1.0])
    curve, path = fig.axes[0].get_lines()
    assert path.get_xdata().tolist() == [0.0, 1.5] and len(curve.get_xdata()) == 50
    assert [t.get_text() for t in fig.axes[0].texts] == ["$w_{(0)}$", "$w_{(1)}$"]


@pytest.mark.parametrize(("lr", "sides"), [(1e-6, ["right", "left"]), (5e-5, ["right", "right"])])
def test_chapter1_labels_its_first_and_last_w_off_the_steps(chapter1, lr, sides):
    """Each on the side away from its neighbour: at 5e-5, w(0)'s and w(10)'s were drawn over the steps to their
    right (the course puts both to the left, x=w-1)."""
    path = chapter1[lr][2]
    fig = figures.landscape_1d(np.linspace(-2, 10, 50), sse(np.linspace(-2, 10, 50)), path["w"], path["loss"])
    assert [(t.get_text(), t.get_horizontalalignment()) for t in fig.axes[0].texts] == [
        ("$w_{(0)}$", sides[0]),
        ("$w_{(10)}$", sides[1]),
    ]


def test_the_data_is_drawn_in_the_csvs_units_with_the_models_prediction(tmp_path, drawn):
    options = ["data=boston_rm", "data.standardize=true", "model=perceptron", "logger=none", "trainer.max_epochs=3"]
    train(make_cfg(tmp_path, *options))
    x, y, grid, predicted, xlabel, ylabel, title, rows = drawn["args"]
    boston = pd.read_csv(ROOT / "data" / "boston.csv")
    assert (xlabel, ylabel, rows) == ("RM", "PRICE", "training rows")
    assert title == "PRICE against RM: the model after 3 epochs"
    assert len(x) == len(y) == 304  # the training rows, in rooms
    assert np.isclose(x.numpy()[:, None], boston["RM"].to_numpy()[None, :], atol=1e-4).any(1).all()
    assert float(grid.min()) == pytest.approx(float(x.min())) and float(grid.max()) == pytest.approx(float(x.max()))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    w, b = (checkpoint["state_dict"][f"model.0.{k}"].item() for k in ("weight", "bias"))
    meta = checkpoint["hyper_parameters"]["data"]
    z = w * (grid - meta["mean"][0]) / meta["std"][0] + b  # y = w x + b, x and y standardized: in the CSV's units
    np.testing.assert_allclose(predicted, z * meta["y_std"] + meta["y_mean"], rtol=1e-4)
    assert (tmp_path / "fit.png").is_file()


def test_a_diverged_models_data_figure_says_so_and_keeps_to_the_data(tmp_path, drawn):
    ch1 = ["experiment=ch1_gradient_descent", "trainer.max_epochs=10", "logger=none"]
    train(make_cfg(tmp_path, *ch1, "optimizer.lr=1", "+callbacks.data_fit.rows=100"))  # diverged in its 5th step
    _, y, _, predicted, _, _, title, rows = drawn["args"]
    assert title.endswith("(diverged)") and float(predicted.abs().max()) > 1e6 * float(y.max())
    assert len(y) == 100 and rows == "100 of the 506 training rows"  # at most `rows` of them drawn
    low, high = drawn["fig"].axes[0].get_ylim()
    assert low < float(y.min()) and float(y.max()) < high < 2 * float(y.max())  # the houses, not the line's 1e24


def test_the_data_figures_range_takes_in_a_line_off_the_data():
    """The 5e-5 run's line y = -0.95 x lies below every house: the figure's range takes it in (a diverged one's
    1e24 would squash the houses, and is left out)."""
    x, y = np.linspace(4, 9, 50), np.linspace(5, 50, 50)
    fig = figures.data_fit(x, y, x, -0.95 * x, "RM", "PRICE")
    low, high = fig.axes[0].get_ylim()
    assert low < -0.95 * 9 and 50 < high < 60
    low, high = figures.data_fit(x, y, x, 1e24 * x, "RM", "PRICE").axes[0].get_ylim()
    assert 0 < low < 5 and 50 < high < 60


def test_a_constant_feature_has_its_prediction_drawn_about_it(tmp_path, make_csv, drawn):
    frame = pd.read_csv(make_csv(kind="regression", features=1)).assign(f0=3.0)
    frame.to_csv(tmp_path / "constant.csv", index=False)
    train(make_cfg(tmp_path, "data=csv", f"data.path={tmp_path / 'constant.csv'}", "data.target=y", "logger=none"))
    grid = drawn["args"][2]
    assert float(grid.min()) < 3.0 < float(grid.max())  # a line about x = 3, not one point


def test_a_resumed_run_diverges_by_its_first_epochs_loss(tmp_path, caplog):
    """A resumed segment of one epoch compares its loss with the run's first epoch, kept in its checkpoints."""
    ch1 = ["experiment=ch1_gradient_descent", "optimizer.lr=5e-5", "logger=none"]
    first = train(make_cfg(tmp_path, *ch1, "trainer.max_epochs=1"))
    assert first["status"] == "completed"  # one epoch: nothing to compare it with
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["first_loss"] == pytest.approx(first["train/loss"])
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        resumed = train(make_cfg(tmp_path, *ch1, "trainer.max_epochs=2", "ckpt_path=last"))
    assert resumed["status"] == "diverged" and resumed["train/loss"] > first["train/loss"]
    grew = f"grew, from {first['train/loss']:#.4g} in the first epoch to {resumed['train/loss']:#.4g} in the last."
    assert f"Diverged: the training loss {grew} A lower optimizer.lr converges." in caplog.text


def test_a_resumed_run_draws_its_whole_path(tmp_path):
    ch1 = ["experiment=ch1_gradient_descent", "logger=none"]
    train(make_cfg(tmp_path / "resumed", *ch1, "trainer.max_epochs=4"))
    train(make_cfg(tmp_path / "resumed", *ch1, "trainer.max_epochs=10", "ckpt_path=last"))
    train(make_cfg(tmp_path / "alone", *ch1, "trainer.max_epochs=10"))
    resumed, alone = (pd.read_csv(tmp_path / d / "trajectory.csv") for d in ("resumed", "alone"))
    assert len(resumed) == 11 and resumed.equals(alone)  # w(0) to w(10), not the resumed part alone


def test_landscape_over_weight_and_bias(tmp_path):
    train(make_cfg(tmp_path, "experiment=ch1_gradient_descent", "model.bias=true", "trainer.max_epochs=10"))
    path = pd.read_csv(tmp_path / "trajectory.csv")
    assert list(path.columns) == ["step", "w", "b", "loss"] and len(path) == 11
    assert (tmp_path / "landscape.png").stat().st_size > 10_000


def test_landscape_over_two_weights(tmp_path, make_csv, monkeypatch):
    drawn = {}
    landscape_2d = figures.landscape_2d
    monkeypatch.setattr(figures, "landscape_2d", lambda *a, **kw: drawn.update(kw) or landscape_2d(*a, **kw))
    path = make_csv(n=40, features=2, kind="regression")
    cfg = make_cfg(tmp_path, "data=csv", f"data.path={path}", "data.target=y", "model=perceptron", "model.bias=false")
    assert train(cfg)["params"] == 2
    # a point an epoch of minibatches, by Adam (the default): not "steps of gradient descent", as chapter 1's are
    assert list(pd.read_csv(tmp_path / "trajectory.csv").columns) == ["epoch", "w1", "w2", "loss"]
    assert drawn["method"] == "Adam" and drawn["title"] == "3 epochs of Adam, learning rate 0.001"
    assert (tmp_path / "landscape.png").is_file()


def test_larger_models_skip_the_landscape(tmp_path):
    metrics = train(make_cfg(tmp_path, "data=boston", "model=perceptron", "logger=none"))
    assert metrics["status"] == "completed" and not (tmp_path / "landscape.png").exists()


@pytest.mark.parametrize("experiment, params", [("ex2_iris_mlp", 803), ("ex3_boston_mlp", 801)])
def test_exercise_parameter_counts(tmp_path, experiment, params):
    metrics = train(make_cfg(tmp_path, f"experiment={experiment}", "logger=none"))
    assert metrics["params"] == params


def test_exercise3_relu_output_is_not_dead(tmp_path):
    metrics = train(make_cfg(tmp_path, "experiment=ex3_boston_mlp", "trainer.max_epochs=30", "logger=none"))
    assert metrics["test/rmse"] < 6.5  # a dead ReLU output predicts 0: an RMSE over 20


def test_exercise1_parameter_count_from_a_generated_csv(tmp_path, make_csv):
    path = make_csv(n=100, features=10, kind="multiclass")
    cfg = make_cfg(tmp_path, "data=csv", f"data.path={path}", "data.target=y", "model.width=20", "logger=none")
    assert train(cfg)["params"] == 283


def test_binary_perceptron(tmp_path):
    metrics = train(make_cfg(tmp_path, "experiment=perceptron_iris_binary", "trainer.max_epochs=50", "logger=none"))
    assert metrics["params"] == 5 and metrics["test/acc"] == 1.0  # setosa and versicolor are separable


def test_course_figures(tmp_path):
    paths = figures.main(tmp_path)
    assert [p.name for p in paths] == ["activations.png", "squared_error.png", "logistic_loss.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) >= 300
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)  # None: more than that
            assert colours is None or len(colours) > 16  # curves, axes and text drawn, not a blank canvas
