"""The Lightning module: one model, its objective and its optimizer, as a readable recipe.

Hyperparameters are plain values (the data's meta, the model and optimizer configs), so that a
checkpoint describes itself and loads with `weights_only=True`. Lightning's training step is a whole
epoch: a step of gradient descent per minibatch (a forward, a backward and an optimizer step, nothing
more), then the validation pass. Metrics are accumulated as sums on the device and logged once an epoch.
"""

import inspect
import math
import time
from functools import partial
from itertools import islice

import lightning as L
import torch
from lightning.pytorch.loops.loop import _Loop
from lightning.pytorch.loops.progress import _BaseProgress
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy

from dlbasics.errors import UserError, from_data, instantiate, is_number
from dlbasics.losses import Objective

LOG_SECONDS = 1.0  # how often the loggers are written to during training
TRUSTED = {"model": "dlbasics.models.", "optimizer": "torch.optim."}
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def direct_steps(trainer: L.Trainer, callbacks: list) -> bool:
    """Whether Lightning's manual_backward and optimizer step would do no more than loss.backward() and the
    optimizer's own step: one device, full precision, and no method of the module or of the `callbacks` that
    Lightning would call (the trainer's, or a stack's members') on those hooks.

    Their wrappers cost about 40 µs a step (two thirds of it calling every callback's empty hooks), which
    on a small model is most of a step's overhead. Any strategy, precision plugin or hook takes Lightning's path.
    """
    module = trainer.lightning_module
    return (
        type(trainer.strategy) is SingleDeviceStrategy
        and type(trainer.precision_plugin) is Precision
        and type(module).backward is L.LightningModule.backward
        and all(
            getattr(type(o), h) is getattr(base, h)
            for h in STEP_HOOKS
            for o, base in [(module, L.LightningModule), *((c, L.Callback) for c in callbacks)]
        )
    )


def _progress(tracker: _BaseProgress) -> dict:
    return {k: _progress(v) if isinstance(v, _BaseProgress) else v for k, v in vars(tracker).items()}


def _loop_state(loop: _Loop, state: dict, prefix: str = "") -> dict:
    state[prefix + "state_dict"] = loop.on_save_checkpoint()
    for k, v in vars(loop).items():
        if isinstance(v, _BaseProgress):
            state[prefix + k] = _progress(v)
        elif isinstance(v, _Loop):
            _loop_state(v, state, f"{prefix}{k}.")
    return state


def loops_state(trainer: L.Trainer) -> dict:
    """A checkpoint's "loops", the dict Lightning's `_CheckpointConnector._get_loops_state_dict` makes, in a
    quarter of the time (23 against 80 µs here): Lightning's progress trackers are dataclasses of integers,
    which its `dataclasses.asdict` deep-copies value by value, in the snapshot a checkpoint takes every epoch."""
    return {k: _loop_state(getattr(trainer, k), {}) for k in ("fit_loop", "validate_loop", "test_loop", "predict_loop")}


def trusted(kind: str, cfg: dict, **kwargs):
    """instantiate() restricted to our models and torch's optimizers: a checkpoint names no other code."""
    target = str(cfg.get("_target_", ""))
    if not target.startswith(TRUSTED[kind]):
        raise UserError(f"{kind}._target_ must name a class in {TRUSTED[kind][:-1]}; got {target!r}.")
    return instantiate(cfg, key=kind, _convert_="all", **kwargs)  # model.hidden=[20,10]: a list, not a ListConfig


def check_optimizer(cfg: dict, params) -> None:
    """Makes the optimizer once, as the run is built, so that torch checks its options (optimizer.momentum=-1)
    before any training, also a resume's; one whose step needs a closure (LBFGS evaluates the loss again) is
    refused, where each minibatch takes one step."""
    optimizer = trusted("optimizer", cfg, params=params)
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise UserError(
            f"optimizer._target_: {type(optimizer).__name__} is not supported: its step evaluates the loss again, "
            "where each minibatch takes one step here. Use optimizer=sgd or optimizer=adam."
        )


class Learner(L.LightningModule):
    def __init__(self, data: dict, model: dict, optimizer: dict, loss: str = "auto", seed: int | None = None):
        super().__init__()
        # `seed` (the run's: its first weights and its batch order) is only recorded, so that a checkpoint says
        # it and a resume keeps it; None in the checkpoints of versions that did not record it
        self.save_hyperparameters(logger=False)
        # The step a student writes by hand (Lightning's manual optimization), about a millisecond a step
        # cheaper than the automatic closure; Trainer-level gradient clipping and accumulation do not apply.
        self.automatic_optimization = False
        model = dict(model)
        # A standardized target: the model's output o stands for (y - mean) / std, which the objective takes back
        # to the CSV's units; otherwise o is y itself, from an output bias that starts at the mean.
        y_mean, y_std = data.get("y_mean", 0.0), data.get("y_std")
        self.objective = Objective(data["task"], loss, model.pop("output_activation", "auto"), y_mean, y_std)
        offset = 0.0 if y_std else y_mean
        sizes = dict(n_features=data["n_features"], n_outputs=data["n_outputs"], output_offset=offset)
        given = sorted(sizes.keys() & model.keys())  # the data's, which would outweigh it
        if given:
            raise UserError(from_data(given[0]))
        self.model = trusted("model", model, **sizes)
        lr = optimizer.get("lr")
        if not is_number(lr) or not 0 < lr < math.inf:
            raise UserError(f"optimizer.lr must be a positive number; got {lr!r}.")
        check_optimizer(optimizer, self.model.parameters())
        self._sums: dict[str, dict[str, torch.Tensor]] = {}
        self._rows: dict[str, int] = {}
        self._unlogged: dict[str, torch.Tensor] = {}
        self._to_log: list[tuple[int, dict[str, float]]] = []
        self._logged_at = time.monotonic()
        self.diverged_epoch: int | None = None  # the epoch whose training loss was not a number: it stopped there
        # the training loss of the run's first epoch (kept in its checkpoints, for a resumed run) and of its last
        self.first_loss: float | None = None
        self.last_loss: float | None = None
        self._direct = False  # direct_steps(trainer), known once training starts

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets _current_fx_name around every hook, dozens of times a step; nn.Module's
        # __setattr__ searches its parameters, buffers and submodules each time. It is neither.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def diverged(self) -> bool:
        """Whether training made the loss worse: it was not a finite number (`diverged_epoch`), or it ended above
        the first epoch's (course 1.2.1: a learning rate too high, the weights swinging ever wider)."""
        grew = None not in (self.first_loss, self.last_loss) and self.last_loss > self.first_loss
        return self.diverged_epoch is not None or grew

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["first_loss"] = self.first_loss

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # a resumed run's first epoch; testing the best checkpoint keeps this run's (older checkpoints have none)
        if self.first_loss is None:
            self.first_loss = checkpoint.get("first_loss")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output-layer pre-activations o, shape (rows, outputs)."""
        return self.model(x)

    @property
    def example_input_array(self) -> tuple[torch.Tensor] | None:
        """forward()'s arguments, for TensorBoard's graph (logger.tensorboard.log_graph=true): a row of zeros of
        the model's dtype (trainer.precision=64-true), in a tuple, which the data module moves as a batch."""
        data = self.hparams.get("data")
        return (torch.zeros(1, data["n_features"], dtype=self.dtype),) if data else None

    def configure_optimizers(self):
        return trusted("optimizer", self.hparams.optimizer, params=self.parameters())

    def _step(self, batch, split: str) -> torch.Tensor:
        x, y = batch
        o = self(x.to(self.dtype))  # the table is float32; trainer.precision=64-true makes the model float64
        per_row, loss = self.objective.losses(o, y)
        sums = {"loss": per_row.detach().sum(-1)} if split == "train" else self.objective.sums(o, y, per_row)
        acc = self._sums.setdefault(split, {})
        for k, v in sums.items():
            acc[k] = acc[k] + v if k in acc else v
        self._rows[split] = self._rows.get(split, 0) + per_row.shape[-1]
        return loss

    def training_step(self, epoch, epoch_idx):
        """One epoch: a step of gradient descent per minibatch, then the validation pass (without a val split, a
        pass over the training rows, whose metrics are the epoch's train/...: of the weights after its steps).

        The training loader hands over a whole epoch as one item (`data.Epochs`): Lightning's loop costs
        about 0.2 ms for each item it hands over and 0.8 ms for its validation loop, more than a small
        model's step.
        """
        train, measured = epoch
        optimizer, max_steps = self.optimizers(), self.trainer.max_steps
        steps_left = None if max_steps < 0 else max(max_steps - self.global_step, 0)  # max_steps=-1: no limit
        for batch in islice(train, steps_left):
            self.descend(batch, optimizer)
        if measured.split == "train":  # measured again below, after the steps
            self._sums.pop("train", None)
            self._rows.pop("train", None)
        self.eval()
        with torch.inference_mode():
            for batch in measured:
                self._step(batch, measured.split)
        self.train()
        # What Lightning logs (self.log, LearningRateMonitor) goes at its count of the batches that stepped, one
        # an epoch here: counted as the steps are, as our own metrics are logged (Lightning adds this batch's 1).
        self.trainer.fit_loop.epoch_loop._batches_that_stepped = self.global_step - 1

    def on_train_start(self):
        self._direct = direct_steps(self.trainer, self.step_callbacks())
        self.trainer._checkpoint_connector._get_loops_state_dict = partial(loops_state, self.trainer)

    def step_callbacks(self) -> list:
        """The callbacks whose hooks Lightning's steps call (on_before_backward, ...)."""
        return self.trainer.callbacks

    def descend(self, batch, optimizer) -> None:
        """One step of gradient descent on a minibatch."""
        optimizer.zero_grad()
        self.backpropagate(self._step(batch, "train"))
        self.take_step(optimizer)

    def backpropagate(self, loss: torch.Tensor) -> None:
        """manual_backward(loss), or loss.backward() itself where that is all it would do (direct_steps).

        DDP averages its processes' gradients: that of a sum over their rows (loss=sse, chapter 1's) is their total."""
        if self._direct:
            loss.backward()
        else:
            self.manual_backward(loss * self.trainer.world_size if self.objective.summed else loss)

    def take_step(self, optimizer) -> None:
        """optimizer.step() on Lightning's LightningOptimizer, or the same without its wrappers: the step
        counted as Lightning's manual optimization counts it (global_step), then the optimizer's own step."""
        if self._direct:
            optimizer._on_before_step()
            optimizer.optimizer.step()
            optimizer._on_after_step()
        else:
            optimizer.step()

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _log_epoch(self, split: str) -> dict[str, torch.Tensor]:
        """The epoch's metrics, one value per member, published to each member still in the run."""
        sums, rows = self._sums.pop(split, None), self._rows.pop(split, 0)
        if sums is None:
            return {}
        if self.trainer.world_size > 1:  # every process saw its share of rows: add them up
            sums = {k: self.trainer.strategy.reduce(v.float(), reduce_op="sum") for k, v in sums.items()}
            rows = int(self.trainer.strategy.reduce(torch.tensor(float(rows), device=self.device), reduce_op="sum"))
        # one value per member: a single model's metrics are scalars, a stack's have the members' axis
        metrics = {k: v.reshape(-1) for k, v in self.objective.metrics(sums, rows).items()}
        for i, member in self.training_members():
            # validation's values go to the loggers with training's, at the end of the same epoch
            member.publish({f"{split}/{k}": v[i] for k, v in metrics.items()}, log=split != "val")
        return metrics

    def training_members(self) -> list[tuple[int, "Learner"]]:
        """(index, Learner) of the models still being trained, or tested: a Learner is its own one member."""
        return [(0, self)]

    def publish(self, metrics: dict[str, torch.Tensor], log: bool = True) -> None:
        """Epoch metrics, straight to where they are read (checkpointing, early stopping, the progress line,
        metrics.json), and to the loggers at the global step with any held back (`log=False`).

        self.log costs about a millisecond a key. The loggers get the epochs' values in one burst a
        second (`flush_logs`): a TensorBoard writer's thread woken for every value slows training down.
        """
        self.trainer.callback_metrics.update(metrics)
        self._unlogged.update(metrics)
        if log:
            values = {k: float(v) for k, v in self._unlogged.items()}
            self._to_log.append((self.global_step, values | {"epoch": float(self.current_epoch)}))  # as self.log
            self._unlogged.clear()
            if time.monotonic() - self._logged_at >= LOG_SECONDS:
                self.flush_logs()

    def flush_logs(self) -> None:
        for logger in self.loggers:
            for step, values in self._to_log:
                logger.log_metrics(values, step=step)
            if self._to_log and hasattr(logger.experiment, "flush"):
                # written now, while training waits: a writer thread running beside it slows every step
                logger.experiment.flush()
        self._to_log.clear()
        self._logged_at = time.monotonic()

    def on_train_end(self):
        for _, member in self.training_members():
            member.flush_logs()

    def on_test_end(self):
        self.on_train_end()

    def on_train_epoch_end(self):
        self._log_epoch("val")  # validated in the epoch's training_step
        members, loss = self.training_members(), self._log_epoch("train").get("loss")
        if loss is None:  # no training step this epoch
            return
        losses = loss.tolist()
        for i, member in members:
            member.last_loss = losses[i]
            if member.first_loss is None:
                member.first_loss = losses[i]
            if not math.isfinite(losses[i]):
                # A diverged model stops here rather than training on NaN for the remaining epochs.
                member.diverged_epoch = self.current_epoch
                member.trainer.should_stop = True

    def on_test_epoch_end(self):
        self._log_epoch("test")
