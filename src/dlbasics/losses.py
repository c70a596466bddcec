"""The losses of chapter 3 and the output activations of 2.3.1, tied to the task the data defines.

Every function takes model outputs o of shape (rows, outputs), or (members, rows, outputs) for several
models trained side by side: one code path, whose values have the members' axis in front when there is one.
A single model has none, so its step pays for no view of its outputs (each is a node of the backward pass).
"""

import torch
import torch.nn.functional as F
from torch import nn

from dlbasics.errors import UserError

LOSSES = {"regression": ("mse", "sse"), "binary": ("logistic",), "multiclass": ("logistic",)}
OUTPUT_ACTIVATIONS = {
    "regression": ("identity", "relu", "sigmoid"),
    "binary": ("sigmoid",),
    "multiclass": ("softmax",),
}
ALL_LOSSES = ("auto", "mse", "sse", "logistic")
METRICS = {"regression": ("loss", "rmse", "mae", "r2"), "binary": ("loss", "acc"), "multiclass": ("loss", "acc")}
ALL_OUTPUTS = ("auto", "identity", "relu", "sigmoid", "softmax")


def loss_for(task: str, loss: str) -> str:
    """The loss that `loss` names for a task: auto is the task's own."""
    return LOSSES[task][0] if loss == "auto" else loss


class Objective(nn.Module):
    """What a model is trained for: its loss, its output activation and the metrics of its task.

    `loss="auto"` is the MSE for regression and the logistic loss for classification;
    `output_activation="auto"` is identity, sigmoid or softmax. The logistic loss is computed from
    the logits (log-sum-exp), never from rounded probabilities. `y_center` (the training target's mean) is
    taken from a regression target before its sums are kept for r2: a target of years or prices far from
    zero would leave float32 sums of y and y² with no digits of its variance. With `y_scale` (a standardized
    target's std) o stands for (y - y_center) / y_scale: φ_out(o y_scale + y_center) is the prediction, and the
    loss gradient descent takes is divided by y_scale², so that its steps do not depend on the target's units.
    Several targets (course 2.2: an output neuron for each value to predict) have a center and scale each; a
    row's loss is the sum of its squared errors, ‖ŷ - y‖² (course 3.1), and rmse, mae and r2 are the means of
    the targets' (as scikit-learn's).

    A module only to hold those as buffers, moved with the model to its device and precision; not saved.
    """

    def __init__(
        self,
        task: str,
        loss: str = "auto",
        output_activation: str = "auto",
        y_center: float | list[float] = 0.0,
        y_scale: float | list[float] | None = None,
    ):
        super().__init__()
        if loss not in ALL_LOSSES:
            raise UserError(f"loss must be one of {', '.join(ALL_LOSSES)}; got {loss!r}.")
        if output_activation not in ALL_OUTPUTS:
            raise UserError(
                f"model.output_activation must be one of {', '.join(ALL_OUTPUTS)}; got {output_activation!r}."
            )
        self.task = task
        self.loss = loss_for(task, loss)
        self.output_activation = OUTPUT_ACTIVATIONS[task][0] if output_activation == "auto" else output_activation
        if self.loss not in LOSSES[task]:
            fits = ", ".join(LOSSES[task])
            raise UserError(f"loss={self.loss} does not fit a {task} task: use loss={fits} (or loss=auto).")
        if self.output_activation not in OUTPUT_ACTIVATIONS[task]:
            fits = ", ".join(OUTPUT_ACTIVATIONS[task])
            raise UserError(
                f"model.output_activation={self.output_activation} does not fit a {task} task: "
                f"use one of {fits} (or auto)."
            )
        self.summed = self.loss == "sse"  # chapter 1's sum of squared errors; the others are means
        self.register_buffer("y_center", torch.tensor(y_center), persistent=False)
        self.register_buffer("y_scale", None if y_scale is None else torch.tensor(y_scale), persistent=False)
        self.register_buffer("weights", None if y_scale is None else self.y_scale**-2, persistent=False)

    def predict(self, o: torch.Tensor) -> torch.Tensor:
        """φ_out(o): values (in the target's units) for regression, probabilities for classification."""
        if self.y_scale is not None:
            o = o.mul(self.y_scale).add_(self.y_center)
        if self.output_activation == "softmax":
            return o.softmax(-1)
        if self.output_activation == "identity":
            return o
        return getattr(torch, self.output_activation)(o)

    def per_row(self, o: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of each row, shape (rows,) or (members, rows)."""
        if self.task == "multiclass":  # cross_entropy takes the classes second: (rows, C) or (members, C, rows)
            if o.dim() == 2:
                return F.cross_entropy(o, y, reduction="none")
            return F.cross_entropy(o.transpose(1, 2), y.expand(o.shape[:-1]), reduction="none")
        if self.task == "binary":
            return F.binary_cross_entropy_with_logits(o, y.expand_as(o), reduction="none").sum(-1)
        return (self.predict(o) - y).square().sum(-1)

    def reduce(self, per_row: torch.Tensor) -> torch.Tensor:
        return per_row.sum(-1) if self.summed else per_row.mean(-1)

    def losses(self, o: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's loss, and the loss gradient descent takes: the same reduced, in a standardized target's
        units (each target's squared errors divided by its variance)."""
        if self.weights is None:
            per_row = self.per_row(o, y)
            return per_row, self.reduce(per_row)
        squares = (self.predict(o) - y).square()
        return squares.sum(-1), self.reduce(squares.mul(self.weights).sum(-1))

    def sums(self, o: torch.Tensor, y: torch.Tensor, per_row: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sums over the rows of a batch (one per member, if any), from which `metrics` computes the epoch's values."""
        sums = {"loss": per_row.sum(-1)}
        if self.task == "multiclass":
            sums["correct"] = (o.argmax(-1) == y).sum(-1)
        elif self.task == "binary":
            sums["correct"] = ((o > 0).float() == y).sum((-2, -1))
        else:  # a row's loss is its squared error ‖ŷ - y‖² (mse and sse alike); r2 takes each target's
            errors, centered = self.predict(o) - y, y - self.y_center
            sums.update(
                se=errors.square().sum(-2),
                ae=errors.abs().sum((-2, -1)),
                y=centered.sum(-2),
                y2=centered.square().sum(-2),
            )
        return sums

    def metrics(self, sums: dict[str, torch.Tensor], rows: int) -> dict[str, torch.Tensor]:
        """The epoch's metrics from accumulated sums: loss, and acc or rmse, mae and r2."""
        out = {"loss": sums["loss"] if self.summed else sums["loss"] / rows}
        if "correct" in sums:
            out["acc"] = sums["correct"] / rows
        if "ae" in sums:
            se, targets = sums["se"], sums["se"].shape[-1]
            out["rmse"] = (se / rows).sqrt().mean(-1)  # each target's, averaged, as scikit-learn's
            out["mae"] = sums["ae"] / (rows * targets)
            total = sums["y2"] - sums["y"].square() / rows  # each target's sum of squares about the split's mean
            # As scikit-learn's r2_score: a target without variance scores 1.0 if fitted exactly, else 0.0.
            varies = total > 1e-6 * sums["y2"]
            out["r2"] = torch.where(varies, 1 - se / total.where(varies, 1), (se == 0).float()).mean(-1)
        return out
