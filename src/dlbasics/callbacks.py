"""Callbacks: a keras-like model summary, a one-line progress display, chapter 1's data and loss landscape,
checkpoints; the CSV logger a resumed run keeps its metrics.csv with, and a TensorBoard logger that writes a step's
metrics as one event."""

import csv
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.fabric.utilities.logger import _add_prefix  # as Lightning's loggers prefix their keys
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import csv_logs, tensorboard
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from dlbasics.errors import UserError, is_number, made_dir
from dlbasics.files import write_whole

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
    classes += f", {meta['n_outputs']} outputs" if not meta["classes"] and meta["n_outputs"] > 1 else ""
    params = sum(p.numel() for p in learner.parameters())
    return "\n".join(
        [
            f"Model: {type(learner.model).__name__}, {meta['n_features']} input{'s' * (meta['n_features'] != 1)}, "
            f"{meta['task']}{classes}",
            *lines,
        ]
        + [
            f"Output activation: {objective.output_activation}   Loss: {objective.loss}",
            f"Total params: {params:,}",
        ]
    )


def _listed(names: Sequence, most: int = 10) -> str:
    shown = ", ".join(map(str, names[:most]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def describe_data(meta: dict, rows: dict[str, int]) -> str:
    """The data as the run found it, in one line: where its rows went, what it predicts, from what (course 2.2: the
    data dictates the input and output layers)."""
    targets = meta["target"] if isinstance(meta["target"], list) else [meta["target"]]
    named = ", ".join(f"'{t}'" for t in targets)
    if meta["task"] == "regression":
        target = f"target {named}, a quantity" if len(targets) == 1 else f"targets {named}, a quantity each"
    else:
        classes = meta["classes"]
        positive = f"; the output is p({classes[1]})" if meta["task"] == "binary" else ""
        target = f"target {named}, {len(classes)} classes ({_listed(classes)}{positive})"
    splits = ", ".join(f"{n} {split}" for split, n in rows.items() if n)
    categories = meta.get("categories", {})
    features = [f"{f} ({len(categories[f])} categories)" if f in categories else f for f in meta["features"]]
    return (
        f"Data: {meta['source']['path']}, {meta['rows']} rows ({splits}); {target}; "
        f"{len(features)} feature{'s' * (len(features) != 1)}: {_listed(features)}"
    )


def _log_apart(to_files: str, to_console: str | None) -> None:
    """A line for the log files (a job's train.log) and another, or none, for the console and the other handlers."""
    for handler in logging.getLogger().handlers:
        line = to_files if isinstance(handler, logging.FileHandler) else to_console
        if line is not None and log.isEnabledFor(logging.INFO) and handler.level <= logging.INFO:
            handler.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, line, None, None))  # a record each


class ModelSummary(L.Callback):
    """The data and the model's summary as training starts. On the console, a model summarized in full before in this
    process (the sweep's last job's, as Hydra's basic launcher runs its jobs one after another in one process) is one
    line, and data described before is not described again; each job's own log file has them in full."""

    shown: set[str] = set()

    @rank_zero_only
    def on_fit_start(self, trainer, learner):
        rows = {split: len(trainer.datamodule.rows[split]) for split in ("train", "val", "test")}
        data, text = describe_data(learner.hparams.data, rows), summarize(learner)
        first, *_, params = text.splitlines()
        for line, again in ((data, None), (text, f"{first}; {params} (as above)")):
            if line in ModelSummary.shown:
                _log_apart(line, again)
            else:
                log.info(line)
                ModelSummary.shown.add(line)


class EpochProgress(ProgressBar):
    """One line, rewritten as training goes: epoch, train loss, val loss. Silent when not on a terminal."""

    def __init__(self, refresh_seconds: float = 0.25):
        _check_seconds("callbacks.progress.refresh_seconds", refresh_seconds)
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
        losses = "  ".join(f"{k} {float(m[k]):#.4g}" for k in ("train/loss", "val/loss") if k in m)
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


def sample(n: int, rows: int) -> torch.Tensor | None:
    """`rows` of n row numbers, drawn at random (the same in every run), or None where there are no more."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:rows] if n > rows else None


def _check_counts(callback: str, **counts) -> None:
    for option, value in counts.items():
        if not is_number(value, int) or value < 2:
            raise UserError(f"callbacks.{callback}.{option} must be an integer >= 2; got {value!r}.")


def show(trainer, fig, tag: str, path: Path) -> None:
    """A figure in TensorBoard's Images tab, under `tag`, and in the file `path`."""
    from dlbasics import figures

    for logger in trainer.loggers:
        if isinstance(logger, tensorboard.TensorBoardLogger):
            logger.experiment.add_figure(tag, fig, global_step=trainer.global_step, close=False)
    write_whole(path, lambda tmp: figures.save(fig, tmp))


class LossLandscape(L.Callback):
    """Chapter 1's picture: the loss over a model's one or two parameters, and the path gradient descent took.

    Logs each parameter (train/w, and train/b with a bias) every epoch; when training ends, writes
    landscape.png and trajectory.csv to `dirpath` and shows the figure in TensorBoard's Images tab.
    Models with more than two parameters are skipped. The path is kept in the checkpoints, so that a
    resumed run draws it from the start. The path's losses are over every training row, the surface's over
    at most `rows` of them, drawn at random (a million rows at 100 x 100 points took minutes).
    """

    def __init__(
        self, dirpath: str, w_range: tuple[float, float] = (-2.0, 10.0), points: int = 100, rows: int = 10_000
    ):
        pair = isinstance(w_range, Sequence) and not isinstance(w_range, str) and len(w_range) == 2
        if not (pair and all(map(is_number, w_range)) and w_range[0] < w_range[1]):
            raise UserError(f"callbacks.loss_landscape.w_range must be [low, high], low < high; got {w_range!r}.")
        _check_counts("loss_landscape", points=points, rows=rows)
        self.dirpath = made_dir("callbacks.loss_landscape.dirpath", dirpath)
        self.w_range, self.points, self.rows = tuple(w_range), points, rows
        self.names: list[str] = []
        self.path: list[list[float]] = []

    def on_train_start(self, trainer, learner):
        names = []
        if sum(p.numel() for p in learner.model.parameters()) <= 2:
            for name, p in learner.model.named_parameters():
                base = "b" if name.endswith("bias") else "w"
                names += [base] if p.numel() == 1 else [f"{base}{i + 1}" for i in range(p.numel())]
        if names != self.names or not self.path:  # not resumed (load_state_dict): the path starts here
            self.names, self.path = names, [self._values(learner)] if names else []

    def state_dict(self) -> dict:
        # a copy of the list (its points are never changed): a checkpoint taken now keeps the path so far
        return {"names": list(self.names), "path": self.path[:]}

    def load_state_dict(self, state: dict) -> None:
        self.names, self.path = list(state["names"]), list(state["path"])

    @staticmethod
    def _values(learner) -> list[float]:
        return [v for p in learner.model.parameters() for v in p.detach().flatten().tolist()]

    def on_train_epoch_end(self, trainer, learner):
        if self.names:
            self.path.append(self._values(learner))
            values = {f"train/{n}": torch.tensor(v) for n, v in zip(self.names, self.path[-1], strict=True)}
            learner.publish(values, log=False)  # logged with the epoch's loss, by the module's epoch end

    @staticmethod
    @torch.no_grad()
    def _losses(learner, x, y, values) -> np.ndarray:
        """The loss at each row of `values` (a value per parameter, in the path's order): the points evaluated
        as the members of one stacked model (vmap), a chunk of about 4M outputs at a time."""
        values = torch.as_tensor(np.asarray(values), dtype=learner.dtype, device=learner.device)
        model, losses = learner.model, []
        for points in values.split(max(1, 2**22 // len(x))):
            params, start = {}, 0
            for name, p in model.named_parameters():
                params[name] = points[:, start : start + p.numel()].reshape(len(points), *p.shape)
                start += p.numel()
            o = torch.func.vmap(lambda one: torch.func.functional_call(model, one, (x,)))(params)
            losses.append(learner.objective.reduce(learner.objective.per_row(o, y)))
        return torch.cat(losses).cpu().numpy()

    @rank_zero_only
    def on_train_end(self, trainer, learner):
        if not self.names:
            return
        from dlbasics import figures

        x, y = trainer.datamodule.splits["train"]
        x, y = x.to(learner.device, learner.dtype), y.to(learner.device)
        path = np.array(self.path)
        losses = self._losses(learner, x, y, path)
        finite = np.isfinite(losses) & np.isfinite(path).all(1)
        if not finite.all():  # a diverged run: draw the steps that are still numbers
            path, losses = path[: np.argmin(finite)], losses[: np.argmin(finite)]
        if len(path) < 2:
            return
        steps = "steps" if trainer.global_step == len(self.path) - 1 else "epochs"  # minibatches: steps an epoch
        method = learner.hparams.optimizer["_target_"].rsplit(".", 1)[-1]  # SGD on the whole split each step:
        method = "gradient descent" if method == "SGD" and steps == "steps" else method  # chapter 1's
        title = f"{len(path) - 1} {steps} of {method}, learning rate {learner.hparams.optimizer['lr']:g}"
        w_lo, w_hi = min(self.w_range[0], path[:, 0].min()), max(self.w_range[1], path[:, 0].max())
        grid_w = np.linspace(w_lo, w_hi, self.points)
        drawn, scale = sample(len(x), self.rows), 1.0
        if drawn is not None:  # the surface from a sample of the rows; a sum of squares scaled to all of them
            title += f"\n(the surface over {self.rows:,} of the {len(x):,} training rows)"
            scale = len(x) / self.rows if learner.objective.summed else 1.0
            x, y = x[drawn.to(x.device)], y[drawn.to(y.device)]
        if len(self.names) == 1:
            curve = scale * self._losses(learner, x, y, grid_w[:, None])
            fig = figures.landscape_1d(grid_w, curve, path[:, 0], losses, title=title, method=method)
        else:
            # b gets as wide a window as w, centred on its path, so that the valley shows, and a margin for the
            # labels of the path's ends
            pad = max(w_hi - w_lo - np.ptp(path[:, 1]), 0) / 2 + 0.05 * np.ptp(path[:, 1])
            grid_b = np.linspace(path[:, 1].min() - pad, path[:, 1].max() + pad, self.points)
            w, b = np.meshgrid(grid_w, grid_b)  # a row of the surface for each b
            surface = scale * self._losses(learner, x, y, np.column_stack([w.ravel(), b.ravel()])).reshape(w.shape)
            fig = figures.landscape_2d(
                grid_w, grid_b, surface, path[:, 0], path[:, 1], self.names, title=title, method=method
            )
        trajectory = pd.DataFrame(path, columns=self.names).assign(loss=losses).rename_axis(steps[:-1])
        write_whole(self.dirpath / "trajectory.csv", trajectory.to_csv)
        show(trainer, fig, "landscape", self.dirpath / "landscape.png")


class DataFit(L.Callback):
    """Chapter 1's first picture (1.2.1, PRICE against RM): the training rows of a regression on one feature,
    with the model's prediction over them as training ends, in fit.png in `dirpath` and TensorBoard's Images
    tab; at most `rows` of them, drawn at random (a million take seconds to draw, and show no more). Other
    data is skipped."""

    def __init__(self, dirpath: str, points: int = 200, rows: int = 10_000):
        _check_counts("data_fit", points=points, rows=rows)
        self.dirpath, self.points, self.rows = made_dir("callbacks.data_fit.dirpath", dirpath), points, rows

    @rank_zero_only
    def on_train_end(self, trainer, learner):
        meta = learner.hparams.data
        if meta["task"] != "regression" or meta["n_features"] != 1 or meta["n_outputs"] != 1 or "categories" in meta:
            return
        from dlbasics import figures

        x, y = (t.cpu() for t in trainer.datamodule.splits["train"])  # on the GPU after training there
        low, high = float(x.min()), float(x.max())
        grid = torch.linspace(low - (low == high), high + (low == high), self.points).reshape(-1, 1)  # x constant
        with torch.no_grad():
            predicted = learner.objective.predict(learner(grid.to(learner.device, learner.dtype))).cpu()
        if meta.get("mean") is not None:  # in the CSV's units, where the features were standardized
            mean, std = meta["mean"][0], meta["std"][0]
            x, grid = x * std + mean, grid * std + mean
        epochs = f"{trainer.current_epoch} epoch{'s' * (trainer.current_epoch != 1)}"
        title = f"{meta['target']} against {meta['features'][0]}: the model after {epochs}"
        title += " (diverged)" if learner.diverged else ""
        x, y, grid, predicted = (t.reshape(-1) for t in (x, y, grid, predicted))
        rows, drawn = "training rows", sample(len(x), self.rows)
        if drawn is not None:
            rows = f"{self.rows:,} of the {len(x):,} training rows"
            x, y = x[drawn], y[drawn]
        fig = figures.data_fit(x, y, grid, predicted, meta["features"][0], meta["target"], title, rows)
        show(trainer, fig, "data_fit", self.dirpath / "fit.png")


def _check_seconds(option: str, value) -> None:
    if not is_number(value) or value < 0:
        raise UserError(f"{option} must be a number of seconds >= 0; got {value!r}.")


def _copy(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


class Checkpoints(ModelCheckpoint):
    """Lightning's ModelCheckpoint (the best by the monitored metric, and the last), written lazily and atomically.

    Its one file name (best.ckpt) gets the epoch with save_top_k=3 (best-epoch7.ckpt, ...), which would otherwise
    be three checkpoints under one name, of which Lightning would keep the last.

    A checkpoint is taken in memory whenever ModelCheckpoint would save one, and written to disk at most
    every `write_seconds`, when training ends and when it is interrupted: a small model does not pay a
    file write per epoch, and an interruption keeps the last completed epoch. Each file is written
    under a temporary name and renamed, so a kill mid-write leaves the previous checkpoint whole.
    """

    def __init__(self, write_seconds: float = 10.0, **kwargs):
        if kwargs.get("save_on_train_epoch_end") is False:  # it would wait for a validation loop there is not
            raise UserError(
                "callbacks.model_checkpoint.save_on_train_epoch_end=false is not supported: checkpoints are taken "
                "at the end of each epoch, after its validation pass. Leave it out."
            )
        _check_seconds("callbacks.model_checkpoint.write_seconds", write_seconds)
        filename = kwargs.get("filename")
        if kwargs.get("save_top_k", 1) not in (0, 1) and filename and "{" not in filename:
            kwargs["filename"] = filename + "-epoch{epoch}"  # save_top_k=3: best-epoch7.ckpt, ..., not one best.ckpt
        if kwargs.get("dirpath") is not None:  # None: Lightning's, in the trainer's root directory
            made_dir("callbacks.model_checkpoint.dirpath", kwargs["dirpath"])
        super().__init__(**kwargs)
        self.write_seconds = write_seconds
        self._pending: dict[str, dict] = {}
        self._snapshot: tuple[int, dict] | None = None
        self._written = time.monotonic()

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        if self._snapshot is None or self._snapshot[0] != trainer.global_step:  # best and last share one
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(self.save_weights_only)
            # training goes on updating the weights and optimizer state in place: keep copies of those
            checkpoint["state_dict"] = {k: v.clone() for k, v in checkpoint["state_dict"].items()}
            if "optimizer_states" in checkpoint:
                checkpoint["optimizer_states"] = [
                    {**o, "state": {i: {k: _copy(v) for k, v in s.items()} for i, s in o["state"].items()}}
                    for o in checkpoint["optimizer_states"]
                ]
            self._snapshot = trainer.global_step, checkpoint
        self._pending[filepath] = self._snapshot[1]
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if time.monotonic() - self._written >= self.write_seconds:
            self.write(trainer)

    def load_state_dict(self, state_dict: dict) -> None:
        """Lightning keeps the best checkpoint's score only where it was taken, in the same directory. A run
        directory moved or copied, and resumed there, holds its best under the same name: its paths are taken
        as this directory's, and the best kept (a worse later epoch overwrote it). Resumed into a new run
        directory (which holds no run: check_free), the best is chosen anew there."""
        taken = state_dict.get("dirpath")
        if taken is not None and taken != self.dirpath:

            def here(path):
                return os.path.join(self.dirpath, os.path.basename(path)) if path else path

            best = state_dict.get("best_model_path") or ""
            if best and os.path.isfile(here(best)):
                paths = ("best_model_path", "kth_best_model_path", "last_model_path")
                state_dict = (
                    state_dict
                    | {k: here(state_dict.get(k)) for k in paths}
                    | {"best_k_models": {here(k): v for k, v in state_dict.get("best_k_models", {}).items()}}
                )
            else:  # the resumed run's best, where it still is, until an epoch here is better
                if self.save_top_k and self.monitor:
                    log.info(f"The best checkpoint is chosen anew in this run's directory ({self.dirpath}).")
                state_dict = self.state_dict() | {"best_model_path": best if os.path.isfile(best) else ""}
            state_dict["dirpath"] = self.dirpath
        super().load_state_dict(state_dict)

    def _monitor_candidates(self, trainer) -> dict[str, torch.Tensor]:
        # ModelCheckpoint deep-copies the metrics each time; ours are new tensors each epoch, never changed
        return {
            **trainer.callback_metrics,
            "epoch": torch.tensor(trainer.current_epoch),
            "step": torch.tensor(trainer.global_step),
        }

    def _remove_checkpoint(self, trainer, filepath: str) -> None:
        if self._pending.pop(filepath, None) is None:
            super()._remove_checkpoint(trainer, filepath)

    def write(self, trainer) -> None:
        for path, checkpoint in self._pending.items():
            try:
                trainer.strategy.save_checkpoint(checkpoint, f"{path}.tmp")
            except OSError:  # a full disk: no half-written file left beside the whole one
                Path(f"{path}.tmp").unlink(missing_ok=True)
                raise
            if trainer.is_global_zero:
                os.replace(f"{path}.tmp", path)
        self._pending.clear()
        self._written = time.monotonic()

    def on_train_epoch_end(self, trainer, learner) -> None:
        super().on_train_epoch_end(trainer, learner)
        # Lightning 2.6 refreshes last.ckpt only when a best one was taken: taking it every epoch is cheap here,
        # and a resumed run must start from the last completed epoch (nor taken at this step already)
        if self._should_save_on_train_epoch_end(trainer) and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, learner) -> None:
        super().on_train_end(trainer, learner)
        self.write(trainer)

    def on_exception(self, trainer, learner, exception: BaseException) -> None:
        self.write(trainer)  # what was taken at the end of the last completed epoch


class _KeptMetrics(csv_logs.ExperimentWriter):
    def __init__(self, log_dir: str, purge_step: int | None = None):
        self.purge_step = purge_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        # Lightning's deletes a metrics.csv it finds; this one adds to it, under the columns it has, without the
        # rows of purge_step and after (as TensorBoard's writer hides them): the epochs a resumed run trains again
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            self.metrics_keys = list(reader.fieldnames or [])
            rows = [] if self.purge_step is None else list(reader)
        kept = [row for row in rows if row.get("step") and float(row["step"]) < self.purge_step]
        if len(kept) < len(rows):

            def write(tmp: Path) -> None:
                with open(tmp, "w", newline="") as file:
                    writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                    writer.writeheader()
                    writer.writerows(kept)

            write_whole(Path(self.metrics_file_path), write)

    def flush(self) -> None:
        """Writes what it holds, as the loggers are flushed once a second and when a run is interrupted: Lightning
        writes a hundred steps at a time, and an interrupted run lost the epochs since."""
        self.save()


class CSVLogger(csv_logs.CSVLogger):
    """Lightning's CSVLogger, except that a run resumed in its own directory (ckpt_path=last) keeps the epochs
    its metrics.csv holds and adds its own, as its TensorBoard log does, where Lightning's starts the file anew.
    `purge_step`: the rows from which it drops, as a resumed run trains those epochs again (run.purge_from)."""

    purge_step: int | None = None

    @property
    @rank_zero_experiment
    def experiment(self) -> csv_logs.ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeptMetrics(log_dir=self.log_dir, purge_step=self.purge_step)
        return self._experiment


class TensorBoardLogger(tensorboard.TensorBoardLogger):
    """Lightning's TensorBoardLogger, writing the metrics of a step as one event (a summary of several values),
    where Lightning's writes an event a metric. TensorBoard's writer computes each event's CRC32C in Python: an
    8-job sweep of 300 epochs, 4 metrics an epoch, took 0.65 s to log that way and takes 0.30 s. TensorBoard
    shows the same curves."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        scalars = {k: v for k, v in metrics.items() if not isinstance(v, dict)}  # a dict: add_scalars, as Lightning
        super().log_metrics({k: v for k, v in metrics.items() if k not in scalars}, step)
        values = []
        for k, v in _add_prefix(scalars, self._prefix, self.LOGGER_JOIN_CHAR).items():
            try:
                values.append(Summary.Value(tag=k, simple_value=float(v)))  # as add_scalar makes it
            except (TypeError, ValueError, RuntimeError) as err:  # Lightning's words
                raise ValueError(
                    f"you tried to log {v} which is currently not supported. Try a dict or a scalar/tensor."
                ) from err
        if values:
            self.experiment._get_file_writer().add_summary(Summary(value=values), step)  # as log_hyperparams writes
