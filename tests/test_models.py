import math

import pytest
import torch

from dlbasics.errors import UserError
from dlbasics.losses import Objective
from dlbasics.models import MLP, Perceptron


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_of_the_course():
    assert count(MLP(10, 3, depth=1, width=20)) == 283  # 2.4, exercise 1
    assert count(MLP(4, 3, depth=1, width=100)) == 803  # exercise 2, iris
    assert count(MLP(6, 1, depth=1, width=100)) == 801  # exercise 3, boston
    assert count(Perceptron(1, 1, bias=False)) == 1  # chapter 1: y = w x


def test_depth_width_and_unequal_hidden_widths():
    assert [m.out_features for m in MLP(4, 3, depth=3, width=8) if isinstance(m, torch.nn.Linear)] == [
        8,
        8,
        8,
        3,
    ]
    assert [m.out_features for m in MLP(4, 3, hidden=[20, 10]) if isinstance(m, torch.nn.Linear)] == [
        20,
        10,
        3,
    ]
    assert isinstance(MLP(4, 3, activation="tanh")[1], torch.nn.Tanh)
    assert len(MLP(4, 3, depth=0)) == 1  # no hidden layer: a perceptron


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": -1}, "model.depth must be an integer >= 0; got -1"),
        ({"width": 0}, "model.width must be an integer >= 1; got 0"),
        ({"width": 2.5}, "model.width must be an integer >= 1; got 2.5"),
        ({"activation": "rlu"}, "model.activation must be one of relu, tanh, sigmoid, identity; got 'rlu'"),
        ({"hidden": [20, 0]}, "model.hidden must be a list of integers >= 1, the hidden layers' widths"),
        ({"hidden": "abc"}, "(model.hidden=[20,10]); got 'abc'"),  # was "got 'a'", its first letter
        ({"hidden": 20}, "model.hidden must be a list of integers >= 1"),  # was "int object is not iterable"
    ],
)
def test_bad_architecture_is_named(kwargs, message):
    with pytest.raises(UserError) as err:
        MLP(4, 3, **kwargs)
    assert message in str(err.value)


def test_an_mlp_with_the_identity_activation_is_a_linear_model_whatever_its_depth():
    """The course, 2.3: "if we used the identity function as our activation function, then whatever the depth of
    our MLP, we would fall back to covering only the family of linear models"."""
    torch.manual_seed(0)
    x1, x2 = torch.randn(5, 4), torch.randn(5, 4)
    for activation, linear in (("identity", True), ("relu", False)):
        model = MLP(4, 3, depth=3, width=8, activation=activation)
        with torch.no_grad():  # affine: f(x1 + x2) = f(x1) + f(x2) - f(0)
            gap = model(x1 + x2) - model(x1) - model(x2) + model(torch.zeros(1, 4))
        assert torch.allclose(gap, torch.zeros_like(gap), atol=1e-5) == linear


def test_zeros_init_starts_at_zero():
    assert all(torch.all(p == 0) for p in Perceptron(1, 1, bias=False, init="zeros").parameters())


def test_zeros_init_of_hidden_layers_is_refused():
    """Its neurons would stay alike: `model.init=zeros` on the default MLP ended at chance (test/acc 0.33) silently."""
    with pytest.raises(UserError, match="model.init=zeros leaves a hidden layer's neurons alike"):
        MLP(4, 3, init="zeros")


def test_mse_and_sse_are_the_course_formulas():
    o, y = torch.tensor([[[1.0], [2.0], [4.0]]]), torch.tensor([[1.5], [2.0], [1.0]])
    squared = [0.25, 0.0, 9.0]
    mse, sse = Objective("regression", "mse"), Objective("regression", "sse")
    assert mse.reduce(mse.per_row(o, y)).item() == pytest.approx(sum(squared) / 3)
    assert sse.reduce(sse.per_row(o, y)).item() == pytest.approx(sum(squared))


def test_mse_of_several_targets_is_the_courses_squared_norm():
    """Course 3.1: (1/n) Σ ‖ŷ - y‖², summed over the outputs (it was their mean: half the loss of two targets)."""
    o, y = torch.tensor([[1.0, 10.0], [2.0, 20.0]]), torch.tensor([[0.0, 12.0], [2.0, 17.0]])
    mse = Objective("regression", "mse")
    per_row, loss = mse.losses(o, y)
    assert per_row.tolist() == [1.0 + 4.0, 0.0 + 9.0] and loss.item() == pytest.approx(7.0)
    # standardized targets: the same loss reported, and each target's squared errors over its variance descended
    scaled = Objective("regression", "mse", y_center=[1.0, 15.0], y_scale=[2.0, 4.0])
    per_row, loss = scaled.losses((o - torch.tensor([1.0, 15.0])) / torch.tensor([2.0, 4.0]), y)
    assert per_row.tolist() == pytest.approx([5.0, 9.0])
    assert loss.item() == pytest.approx((1 / 4 + 4 / 16 + 0 + 9 / 16) / 2)


def test_logistic_loss_is_minus_log_probability_of_the_true_class():
    o = torch.tensor([[[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]]])
    y = torch.tensor([0, 2])
    objective = Objective("multiclass")
    p = objective.predict(o)[0]
    expected = (-math.log(p[0, 0]) - math.log(p[1, 2])) / 2
    assert objective.reduce(objective.per_row(o, y)).item() == pytest.approx(expected, rel=1e-6)
    binary = Objective("binary")
    assert binary.per_row(torch.tensor([[[0.0]]]), torch.tensor([[1.0]])).item() == pytest.approx(math.log(2))


def test_logistic_loss_is_finite_for_confident_logits():
    objective = Objective("binary")
    loss = objective.per_row(torch.tensor([[[200.0], [-200.0]]]), torch.tensor([[0.0], [1.0]]))
    assert torch.allclose(
        loss, torch.tensor([[200.0, 200.0]])
    )  # sigmoid(200) rounds to 1 in float32; the loss must not


def test_relu_output_for_prices():
    objective = Objective("regression", output_activation="relu")
    assert objective.predict(torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]


@pytest.mark.parametrize(
    "task, loss, output, message",
    [
        ("regression", "logistic", "auto", "loss=logistic does not fit a regression task: use loss=mse, sse"),
        ("multiclass", "mse", "auto", "loss=mse does not fit a multiclass task: use loss=logistic"),
        ("binary", "auto", "softmax", "model.output_activation=softmax does not fit a binary task"),
        ("multiclass", "auto", "identity", "model.output_activation=identity does not fit a multiclass task"),
        ("regression", "mae", "auto", "loss must be one of auto, mse, sse, logistic; got 'mae'"),
    ],
)
def test_a_loss_that_does_not_fit_the_task(task, loss, output, message):
    with pytest.raises(UserError) as err:
        Objective(task, loss, output)
    assert message in str(err.value)
