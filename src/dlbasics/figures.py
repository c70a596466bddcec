"""The course's figures, as plain matplotlib functions.

    python -m dlbasics.figures OUTDIR

writes the activation functions (2.3), the squared error (3.1) and the logistic loss (3.2) as PNGs.
Chapter 1's data and loss landscape are drawn by a training run (dlbasics.callbacks.DataFit, LossLandscape).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _path(ax, xs, ys, label: str, title: str, method: str, **axes) -> None:
    """The path the optimizer took (`method`: gradient descent, Adam, ...) as points, its first and last labelled
    (1.2.1), each on the side away from its neighbour on the path, off the steps."""
    ax.plot(xs, ys, "ko-", markersize=4, label=method)
    last = len(xs) - 1
    for t, neighbour in ((0, min(1, last)), (last, max(last - 1, 0))):
        right = xs[t] >= xs[neighbour]
        ax.annotate(
            label.format(t=t), (xs[t], ys[t]), textcoords="offset points", xytext=(6 if right else -6, 6),
            ha="left" if right else "right",
        )  # fmt: skip
    ax.set(title=title or f"Loss landscape and {last} steps of {method}", **axes)
    ax.legend()


def landscape_1d(grid, losses, path_w, path_loss, title: str = "", method: str = "gradient descent"):
    """The loss as a function of one weight, with the path the optimizer took on it."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(grid, losses, "r-", alpha=0.5, label="loss")
    _path(ax, path_w, path_loss, "$w_{{({t})}}$", title, method, xlabel="$w$", ylabel="loss L")
    return fig


def landscape_2d(
    grid_w, grid_b, losses, path_w, path_b, names=("w", "b"), title: str = "", method: str = "gradient descent"
):
    """The loss over two parameters, (w, b) or (w1, w2), as contours, with the path the optimizer took on it."""
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    levels = np.geomspace(max(losses.min(), 1e-12), losses.max(), 25)
    filled = ax.contourf(grid_w, grid_b, losses, levels=levels, cmap="viridis", norm="log")
    ax.contour(grid_w, grid_b, losses, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.6)
    fig.colorbar(filled, ax=ax, label="loss L (log scale)", format="%.3g")
    _path(ax, path_w, path_b, "$t={t}$", title, method, xlabel=f"${names[0]}$", ylabel=f"${names[1]}$")
    return fig


def data_fit(x, y, grid, predicted, xlabel: str, ylabel: str, title: str = "", rows: str = "training rows"):
    """A one-feature regression's rows, y against x (1.2.1: PRICE against RM), and the model's prediction."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.scatter(x, y, s=10, alpha=0.5, label=rows)
    ax.plot(grid, predicted, "r-", lw=2, label="the model's prediction")
    y, predicted = np.asarray(y), np.asarray(predicted)
    low, high = float(y.min()), float(y.max())
    span, line = (high - low) or 1.0, predicted[np.isfinite(predicted)]
    if line.size and low - 10 * span < line.min() and line.max() < high + 10 * span:  # else: the data's range,
        low, high = min(low, float(line.min())), max(high, float(line.max()))  # which a diverged line leaves
    pad = 0.1 * ((high - low) or 1.0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(low - pad, high + pad))
    ax.legend()
    return fig


def activations():
    """tanh, sigmoid and ReLU (2.3): each has a linear regime, none is linear everywhere."""
    x = np.linspace(-5, 5, 201)
    curves = {"tanh": np.tanh(x), "sigmoid": 1 / (1 + np.exp(-x)), "ReLU": np.maximum(x, 0)}
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharex=True, layout="constrained")
    for ax, (name, y) in zip(axes, curves.items(), strict=True):
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.plot(x, y, lw=2)
        ax.set(title=name, xlabel="$x$", ylabel=f"{name}$(x)$")
        ax.grid(alpha=0.3)
    return fig


def squared_error():
    """The squared error against ŷ - y (3.1): large errors are penalized quadratically."""
    e = np.linspace(-3, 3, 201)
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    ax.plot(e, e**2, lw=2)
    ax.set(xlabel="$\\hat{y} - y$", ylabel="$(\\hat{y} - y)^2$", title="Squared error")
    ax.grid(alpha=0.3)
    return fig


def logistic_loss():
    """-log p(ŷ = y) against p (3.2): zero when the true class gets probability 1."""
    p = np.linspace(0.005, 1, 200)
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    ax.plot(p, -np.log(p), lw=2)
    ax.set(xlabel="$p(\\hat{y} = y)$", ylabel="$-\\log p(\\hat{y} = y)$", title="Logistic loss")
    ax.grid(alpha=0.3)
    return fig


def save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(outdir: str) -> list[Path]:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"activations": activations, "squared_error": squared_error, "logistic_loss": logistic_loss}
    return [save(draw(), out / f"{name}.png") for name, draw in figures.items()]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m dlbasics.figures OUTDIR")
    for path in main(sys.argv[1]):
        print(path)
