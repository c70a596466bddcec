"""The course's models: the Perceptron (1.1) and the Multi-Layer Perceptron (2.1).

Both return the output layer's pre-activation o; the output activation belongs to the objective
(dlbasics.losses), which applies it in the numerically stable way the loss needs.
"""

import torch
from torch import nn

from dlbasics.errors import UserError, is_number

# identity: the course's remark (2.3) that an MLP without a non-linear activation is a linear model
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}
INITS = ("default", "zeros")


def _check_count(name: str, value, minimum: int) -> None:
    if not is_number(value, int) or value < minimum:
        raise UserError(f"model.{name} must be an integer >= {minimum}; got {value!r}.")


class MLP(nn.Sequential):
    """`depth` hidden layers of `width` neurons (or the widths in `hidden`), each followed by `activation`.

    n_features and n_outputs come from the data, never from the user; so does output_offset, where the
    output layer's bias starts (the mean target, for regression).
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        depth: int = 1,
        width: int = 100,
        hidden: list[int] | None = None,
        activation: str = "relu",
        bias: bool = True,
        init: str = "default",
        output_offset: float | list[float] = 0.0,
    ):
        if not isinstance(bias, bool):
            raise UserError(f"model.bias must be true or false; got {bias!r}.")
        if hidden is None:
            _check_count("depth", depth, 0)
            _check_count("width", width, 1)
            hidden = [width] * depth
        if not isinstance(hidden, (list, tuple)) or not all(is_number(w, int) and w >= 1 for w in hidden):
            raise UserError(
                f"model.hidden must be a list of integers >= 1, the hidden layers' widths (model.hidden=[20,10]); "
                f"got {hidden!r}."
            )
        if activation not in ACTIVATIONS:
            raise UserError(f"model.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}.")
        if init not in INITS:
            raise UserError(f"model.init must be one of {', '.join(INITS)}; got {init!r}.")
        if init == "zeros" and hidden:  # every neuron of a layer would get the same gradient, and stay the same
            raise UserError(
                "model.init=zeros leaves a hidden layer's neurons alike for good (the same gradient each), so an "
                "MLP learns nothing: it is for a single layer (model=perceptron). Use model.init=default."
            )
        layers, inputs = [], n_features
        for w in hidden:
            layers += [nn.Linear(inputs, w, bias=bias), ACTIVATIONS[activation]()]
            inputs = w
        layers.append(nn.Linear(inputs, n_outputs, bias=bias))
        super().__init__(*layers)
        if bias:  # e.g. the mean target: no early epochs spent shifting the output, and a ReLU output is alive
            with torch.no_grad():
                self[-1].bias.copy_(torch.as_tensor(output_offset))  # one value, or one a target
        if init == "zeros":  # the course's chapter 1 starts gradient descent from w = 0
            for p in self.parameters():
                nn.init.zeros_(p)


class Perceptron(MLP):
    """The course's Perceptron (1.1), a single neuron a = φ(w·x + b), for regression and binary tasks; for k
    classes, one neuron per class (a single layer, a = softmax(W x + b))."""

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        bias: bool = True,
        init: str = "default",
        output_offset: float | list[float] = 0.0,
    ):
        super().__init__(n_features, n_outputs, hidden=[], bias=bias, init=init, output_offset=output_offset)
