"""Callbacks for a short, useful console: a keras-like model summary and a one-line progress display."""

import logging
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger("dlbasics")


def summarize(learner) -> str:
    """The model as keras' model.summary() shows it (course, 2.4): layers, output shapes, parameters."""
    meta, objective = learner.hparams.data, learner.objective
    rows = [("Layer (type)", "Output shape", "Param #")]
    for i, layer in enumerate(learner.model):
        width = getattr(layer, "out_features", None) or rows[-1][1]
        shape = width if isinstance(width, str) else f"(None, {width})"
        rows.append((f"{i} {type(layer).__name__}", shape, f"{sum(p.numel() for p in layer.parameters()):,}"))
    widths = [max(len(r[j]) for r in rows) + 3 for j in range(3)]
    lines = ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    classes = f", {len(meta['classes'])} classes" if meta["classes"] else ""
    params = sum(p.numel() for p in learner.parameters())
    return "\n".join(
        [
            f"Model: {type(learner.model).__name__}, {meta['n_features']} inputs, {meta['task']}{classes}",
            *lines,
        ]
        + [
            f"Output activation: {objective.output_activation}   Loss: {objective.loss}",
            f"Total params: {params:,}",
        ]
    )


class ModelSummary(L.Callback):
    @rank_zero_only
    def on_fit_start(self, trainer, learner):
        log.info(summarize(learner))


class EpochProgress(ProgressBar):
    """One line, rewritten as training goes: epoch, train loss, val loss. Silent when not on a terminal."""

    def __init__(self, refresh_seconds: float = 0.25):
        super().__init__()
        self.refresh_seconds = refresh_seconds
        self._enabled = sys.stdout.isatty()
        self._shown = 0.0

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = sys.stdout.isatty()

    def _show(self, trainer, final: bool = False) -> None:
        now = time.monotonic()
        if not self.is_enabled or (not final and now - self._shown < self.refresh_seconds):
            return
        self._shown = now
        m = trainer.callback_metrics
        losses = "  ".join(f"{k} {float(m[k]):.4g}" for k in ("train/loss", "val/loss") if k in m)
        sys.stdout.write(
            f"\repoch {trainer.current_epoch}/{trainer.max_epochs}  {losses}\033[K" + ("\n" if final else "")
        )
        sys.stdout.flush()

    # Epoch metrics are logged in the module's own on_train_epoch_end, which runs after this
    # callback's: the line shows the epoch just finished when the next one starts.
    def on_train_epoch_start(self, trainer, learner):
        if trainer.current_epoch > 0:
            self._show(trainer)

    def on_train_end(self, trainer, learner):
        self._show(trainer, final=True)
