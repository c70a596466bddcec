"""Sweep jobs that differ only in learning rate and seed, trained side by side as one stacked model.

Each job keeps a Learner of its own, built from its own config with its own seed, and takes part in
one Lightning run: the stacked forward multiplies the members' weights as one batch, one optimizer
holds a parameter group (and state) per member, its weights as one flat row, and every member sees
the run through a `Member` view: its own metrics, loggers, callbacks, stop and checkpoints. So each
job ends with what a run on its own leaves: its directory, metrics.json, TensorBoard run, best.ckpt
and last.ckpt (a checkpoint of one model, which eval.py, predict.py and resuming read as any other).

The Hydra side, `hydra/launcher=stacked`, is in hydra_plugins/dlbasics_stacked.
"""

import copy
import logging
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping, ProgressBar
from lightning.pytorch.trainer.states import TrainerFn
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from dlbasics.callbacks import ModelSummary
from dlbasics.errors import UserError, instantiate, say_error, user_mistake
from dlbasics.files import write_json
from dlbasics.module import Learner, trusted
from dlbasics.run import (
    best_checkpoint,
    build_learner,
    build_outputs,
    check_run_options,
    claim,
    failure,
    fit_options,
    open_loggers,
    outcome,
    report,
    resume_hint,
    sigterm_interrupts,
    stopped_early,
)

log = logging.getLogger("dlbasics")

# What stacked jobs may differ in; everything else in their configs must be equal.
STACKED_KEYS = ("optimizer.lr", "seed")
# Optimizers whose step treats each number on its own (elementwise), so a member's weights may be updated as one
# flat row. Not LBFGS (a closure, and a search over all weights), nor Adafactor (factored by the weight's shape).
ELEMENTWISE = {
    f"torch.optim.{name}"
    for name in ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "ASGD", "Rprop")
}

# What a stack carries out for each member as a run alone would; a job with anything else runs alone: a Trainer
# option of its own (max_time's clock, detect_anomaly's error, which would stop every member), another callback
# (a LearningRateMonitor would log every member's rate in each job) or logger, or outputs outside its directory
# (checkpoints the members share: each would test the last one's best).
STACKED_TRAINER = {
    *("_target_", "_convert_", "accelerator", "devices", "precision", "deterministic", "enable_model_summary"),
    *("max_epochs", "max_steps", "min_epochs", "min_steps", "num_sanity_val_steps", "log_every_n_steps"),
}
STACKED_PARTS = {
    *(f"dlbasics.callbacks.{name}" for name in ("Checkpoints", "ModelSummary", "EpochProgress", "DataFit")),
    *(f"dlbasics.callbacks.{name}" for name in ("LossLandscape", "TensorBoardLogger", "CSVLogger")),
    "lightning.pytorch.callbacks.EarlyStopping",
}


def stack_key(cfg: DictConfig) -> str | None:
    """Jobs with the same key train as one stack; None: this job runs on its own."""
    if "optimizer" not in cfg or cfg.get("ckpt_path") is not None:  # not a training job, or a resumed one
        return None
    if cfg.optimizer.get("_target_") not in ELEMENTWISE:
        return None
    trainer = cfg.trainer
    if trainer.get("devices", 1) not in (1, "1") or trainer.get("num_nodes", 1) != 1 or trainer.get("strategy"):
        return None
    # Resolved, for a value that interpolates seed or the learning rate (data.split_seed=${seed}) differs
    # with them; each job's own directory, and the paths made from it, do not count.
    job = copy.deepcopy(cfg)
    job.run_dir = "RUN_DIR"
    try:
        rest = OmegaConf.to_container(job, resolve=True)
    except OmegaConfBaseException:
        return None  # alone, it says what is wrong
    if {k for k, v in rest["trainer"].items() if v is not None} - STACKED_TRAINER:
        return None
    for part in [*(rest.get("callbacks") or {}).values(), *(rest.get("logger") or {}).values()]:
        if part is None:
            continue
        if not isinstance(part, dict) or part.get("_target_") not in STACKED_PARTS:
            return None
        if any(not str(part[k]).startswith(job.run_dir) for k in ("dirpath", "save_dir") if k in part):
            return None
    rest.pop("seed", None)
    rest["optimizer"].pop("lr", None)
    return repr(rest)


class Member:
    """One member's view of the stacked run, as its callbacks, loggers and checkpoints read a Trainer.

    Its own: callback_metrics, loggers, callbacks, should_stop, and the epoch and step it stopped at;
    everything else is the run's Trainer. Its checkpoints hold its weights, optimizer state,
    hyperparameters and callback states only: a checkpoint of a model trained alone.
    """

    def __init__(self, index: int, learner: Learner, callbacks: list, loggers: list):
        self._trainer: L.Trainer | None = None  # the run's, once it is built
        self.index, self.lightning_module = index, learner
        # checkpointing last, as Lightning orders a Trainer's: a checkpoint holds what the others did that epoch
        self.callbacks, self.loggers = sorted(callbacks, key=lambda c: isinstance(c, Checkpoint)), loggers
        self.callback_metrics: dict[str, torch.Tensor] = {}
        self.should_stop = False
        self.stopped_at: tuple[int, int] | None = None  # (epochs, global step) when it stopped training
        self.stopped_early: str | None = None  # the line its early stopping says, as a run alone's
        self._checkpoint_connector = self
        learner._trainer = self

    def __getattr__(self, name):
        return getattr(self._trainer, name)

    @property
    def logger(self):
        return self.loggers[0] if self.loggers else None

    @property
    def checkpoint_callback(self):
        return next((c for c in self.callbacks if isinstance(c, Checkpoint)), None)

    @property
    def current_epoch(self) -> int:
        return self.stopped_at[0] if self.stopped_at else self._trainer.current_epoch

    @property
    def global_step(self) -> int:
        return self.stopped_at[1] if self.stopped_at else self._trainer.global_step

    def stop(self) -> None:
        """Called once its last epoch is over: from here its weights and optimizer state stay as they are."""
        self.stopped_at = (self._trainer.current_epoch + 1, self._trainer.global_step)

    def dump_checkpoint(self, weights_only: bool = False) -> dict:
        stacked: Stacked = self._trainer.lightning_module
        checkpoint = dict(stacked.dump_checkpoint(weights_only))
        learner = self.lightning_module
        checkpoint.update(
            state_dict=stacked.member_state_dict(self.index),
            hparams_name="kwargs",
            hyper_parameters=dict(learner.hparams),
            callbacks={c.state_key: state for c in self.callbacks if (state := c.state_dict())},
        )
        learner.on_save_checkpoint(checkpoint)  # its own, where the run's has the stack's
        if not weights_only:
            checkpoint["optimizer_states"] = [stacked.optimizer_state(self.index, checkpoint["optimizer_states"][0])]
        return checkpoint


class Stacked(Learner):
    """Learners that differ only in learning rate (and seed), as one model over a leading `members` axis."""

    def __init__(self, members: list[Learner]):
        L.LightningModule.__init__(self)
        self.automatic_optimization = False
        self.members = nn.ModuleList(members)  # not LightningModule children: Lightning's trainer setter skips them
        self.objective = members[0].objective
        self._sums, self._rows = {}, {}
        self.views: list[Member] = []
        self._dumped: dict[bool, tuple[int, dict]] = {}  # weights_only: (step, checkpoint)
        self._state_dicts: dict[int, dict] = {}  # index: its state_dict, views of its row
        self._parts: dict[int, tuple] = {}  # index: (its row's state tensors, their views per parameter)
        # Each parameter of the members, stacked: shape (members, *shape), in the order of named_parameters.
        self._names = [name for name, _ in members[0].model.named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([m.model.get_parameter(name).detach() for m in members])) for name in self._names
        )
        # looked up once: nn.Module finds its layers and parameters by walking its tree each time
        self._leaves = list(self.stacked)
        self._shapes = [p.shape[1:] for p in self._leaves]
        self._sizes = [p[0].numel() for p in self._leaves]
        self._weights: list[torch.Tensor] = []
        self._share()
        self._layers = list(members[0].model)
        if any(list(layer.parameters()) and not isinstance(layer, nn.Linear) for layer in self._layers):
            raise NotImplementedError("Stacked runs models of Linear layers and activations (the MLP, the Perceptron)")

    def _share(self) -> None:
        """One storage for every weight: a table of a row per member, its parameters end to end. The stacked
        parameters, which the forward reads, are views of its columns; each member's parameters are views of its
        row, which the optimizer updates as one tensor (a group of one, where a member's 4 tensors cost it 2x)."""
        storage = self._weights[0].untyped_storage().data_ptr() if self._weights else None
        if all(p.untyped_storage().data_ptr() == storage for p in self._leaves):
            return  # still the table's: moved where it was
        table = torch.cat([p.data.flatten(1) for p in self._leaves], dim=1)
        for name, stacked, columns in zip(self._names, self._leaves, table.split(self._sizes, dim=1), strict=True):
            stacked.data = columns.view(stacked.shape)
            for i, member in enumerate(self.members):
                member.model.get_parameter(name).data = stacked.data[i]
        self._weights = list(table)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._share()  # moving to a device, or to another dtype, copies each tensor on its own
        self._state_dicts.clear()  # views of the tensors it had
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x of shape (rows, features), or (members, rows, features); outputs (members, rows, outputs)."""
        stacked = iter(self._leaves)
        for layer in self._layers:
            if isinstance(layer, nn.Linear):  # every member's layer at once
                x = torch.matmul(x, next(stacked).transpose(1, 2))
                if layer.bias is not None:
                    x = x + next(stacked).unsqueeze(1)
            else:
                x = layer(x)
        return x

    def descend(self, batch, optimizer) -> None:
        for stacked in self._leaves:
            stacked.grad = None
        self.backpropagate(self._step(batch, "train").sum())  # members are independent: their sum trains each
        grads = torch.cat([stacked.grad.flatten(1) for stacked in self._leaves], dim=1)  # laid out as the weights
        for view, weights in zip(self.views, self._weights, strict=True):
            weights.grad = None if view.stopped_at else grads[view.index]  # the optimizer skips a stopped member
        self.take_step(optimizer)

    def step_callbacks(self) -> list:
        # the trainer's two pass every hook on to the members' callbacks: those are the ones that may use a step's
        return [c for view in self.views for c in view.callbacks]

    def on_train_start(self):
        super().on_train_start()
        # the run's part of the members' checkpoints (dump_checkpoint): each holds its own weights, not the stack's
        self.trainer._checkpoint_connector._get_lightning_module_state_dict = dict

    def on_train_end(self):
        for member in self.members:  # those that stopped early too
            member.flush_logs()

    def configure_optimizers(self):
        rows = zip(self._weights, self.members, strict=True)
        groups = [{"params": [weights], "lr": m.hparams.optimizer["lr"]} for weights, m in rows]
        return trusted("optimizer", self.members[0].hparams.optimizer, _partial_=True)(groups)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Nothing of the stack's own: each member's checkpoint gets its Learner's (Member.dump_checkpoint)."""

    def training_members(self) -> list[tuple[int, Learner]]:
        fitting = self.trainer.state.fn == TrainerFn.FITTING
        return [(v.index, v.lightning_module) for v in self.views if not (fitting and v.stopped_at)]

    def dump_checkpoint(self, weights_only: bool) -> dict:
        """The run's checkpoint (loops, epoch, step), taken once a step (of each kind: with the optimizer's state,
        or weights only) and shared by the members' own."""
        step, dumped = self._dumped.get(weights_only, (None, None))
        if step != self.trainer.global_step:
            dumped = self.trainer._checkpoint_connector.dump_checkpoint(weights_only)
            self._dumped[weights_only] = self.trainer.global_step, dumped
        return dumped

    def member_state_dict(self, index: int) -> dict:
        """Member `index`'s state_dict: views of its weights, made once (the same tensors until the stack moves).
        Live tensors, as Lightning's dump_checkpoint gives: Checkpoints copies each one."""
        if index not in self._state_dicts:
            self._state_dicts[index] = self.members[index].state_dict()
        return dict(self._state_dicts[index])

    def optimizer_state(self, index: int, state: dict) -> dict:
        """Member `index`'s part of the optimizer's state_dict, as its own optimizer would hold it: a state per
        parameter, views of its row's state in the parameters' shapes (a scalar such as Adam's step is the
        row's, in each). Live tensors, as Lightning's dump_checkpoint gives: Checkpoints copies each one."""
        row, n = state["state"].get(index, {}), len(self._shapes)
        live, parts = self._parts.get(index, ((), {}))
        if len(live) != len(row) or any(a is not b for a, b in zip(live, row.values(), strict=True)):
            # made once: the optimizer updates its state tensors in place

            def split(value) -> list:
                if isinstance(value, torch.Tensor) and value.shape == self._weights[index].shape:
                    return [v.view(shape) for v, shape in zip(value.split(self._sizes), self._shapes, strict=True)]
                return [value] * n

            live, parts = tuple(row.values()), {k: split(v) for k, v in row.items()}
            self._parts[index] = live, parts
        return {
            "state": {j: {k: v[j] for k, v in parts.items()} for j in range(n)} if index in state["state"] else {},
            "param_groups": [{**state["param_groups"][index], "params": list(range(n))}],
        }


class _ForMembers:
    """Calls each member's callbacks, hook by hook, with its own view of the run and its own Learner.

    A member that has stopped training sees no more training or validation hooks; it sees the end of the
    run and the test. `monitoring`: the checkpointing and early stopping callbacks, which Lightning calls
    after the module's epoch end; the others otherwise.
    """

    STOPPED_SKIP = ("on_train_batch", "on_train_epoch", "on_validation", "on_before", "on_after", "on_sanity")

    def __init__(self, views: list[Member], monitoring: bool):
        super().__init__()
        self.views, self.monitoring = views, monitoring
        self._calls: dict[str, list] = {}

    def _forward(self, hook: str, *args, **kwargs) -> None:
        if hook not in self._calls:  # only the callbacks that implement the hook
            self._calls[hook] = [
                (v, getattr(c, hook))
                for v in self.views
                for c in v.callbacks
                if isinstance(c, (EarlyStopping, Checkpoint)) == self.monitoring
                and getattr(type(c), hook) is not getattr(L.Callback, hook)
            ]
        skip = hook.startswith(self.STOPPED_SKIP)
        for view, fn in self._calls[hook]:
            if not (skip and view.stopped_at):
                fn(view, view.lightning_module, *args, **kwargs)


def _hook(name: str):
    def forward(self, trainer, stacked, *args, **kwargs):
        self._forward(name, *args, **kwargs)

    return forward


for _name in vars(L.Callback):
    if _name.startswith(("on_", "setup", "teardown")) and "checkpoint" not in _name:
        setattr(_ForMembers, _name, _hook(_name))


class _Callbacks(_ForMembers, L.Callback):
    pass


class _MonitoringCallbacks(_ForMembers, Checkpoint):
    def on_train_epoch_end(self, trainer, stacked):
        self._forward("on_train_epoch_end")
        for view in self.views:
            # as Lightning's fit loop: a stop asked for (early stopping, divergence) waits for min_epochs, min_steps
            if view.should_stop and not view.stopped_at and trainer.fit_loop._can_stop_early:
                view.stop()
        trainer.should_stop = all(v.stopped_at for v in self.views)
        _pass_on_progress(self.views, trainer.callbacks)


def _pass_on_progress(views: list[Member], forwarders: list) -> None:
    """The console's progress line, a member's, goes on with a member still training once its own has stopped."""
    holder = next((v for v in views if any(isinstance(c, ProgressBar) for c in v.callbacks)), None)
    live = next((v for v in views if not v.stopped_at), None)
    if holder is None or live is None or not holder.stopped_at:
        return
    live.callbacks = [c for c in holder.callbacks if isinstance(c, ProgressBar)] + live.callbacks
    holder.callbacks = [c for c in holder.callbacks if not isinstance(c, ProgressBar)]
    for forwarder in forwarders:
        if isinstance(forwarder, _ForMembers):
            forwarder._calls.clear()  # which callbacks have which hooks: found again


def _log_file(run_dir: Path, name: str) -> logging.Handler:
    """A job's log file (its train.log), as Hydra's job logging would write it."""
    handler = logging.FileHandler(run_dir / f"{name}.log")
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _stack(cfg: DictConfig, members: list[Learner], outputs: list) -> tuple["Stacked", L.Trainer]:
    """What every job of the stack shares: its model, with each member's view of the run, and its trainer."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    stacked = Stacked(members)
    for index, (learner, (callbacks, loggers)) in enumerate(zip(members, outputs, strict=True)):
        if index > 0:  # the model summary and the progress line are the console's: shown once
            callbacks = [c for c in callbacks if not isinstance(c, (ModelSummary, ProgressBar))]
        stacked.views.append(Member(index, learner, callbacks, loggers))
    trainer = instantiate(
        cfg.trainer,
        default_root_dir=cfg.run_dir,
        callbacks=[_Callbacks(stacked.views, monitoring=False), _MonitoringCallbacks(stacked.views, monitoring=True)],
        logger=False,
        enable_progress_bar=False,
        **fit_options(cfg.trainer),
    )
    for view in stacked.views:
        view._trainer = trainer
    return stacked, trainer


def _fit_and_test(trainer: L.Trainer, stacked: "Stacked", data) -> list[dict]:
    """Trains the stack, then tests each member with its best weights, all in one pass: each member's outcome."""
    trainer.fit(stacked, datamodule=data)
    fitted = [{k: float(v) for k, v in view.callback_metrics.items()} for view in stacked.views]
    for view in stacked.views:
        view.stopped_early = stopped_early(view)
    if data.has("test"):
        for view in stacked.views:
            best = best_checkpoint(view)
            if best:
                state = torch.load(best, map_location=stacked.device, weights_only=True)["state_dict"]
                view.lightning_module.load_state_dict(state)
        trainer.test(stacked, datamodule=data, verbose=False)
    outcomes = []
    for view, metrics in zip(stacked.views, fitted, strict=True):
        tested = {k: float(v) for k, v in view.callback_metrics.items() if k.startswith("test/")}
        outcomes.append(outcome(metrics | tested, view, view.lightning_module))
    return outcomes


def train_stacked(cfgs: list[DictConfig], log_name: str | None = "train") -> list[dict | None]:
    """Trains the jobs of `cfgs` (equal but for learning rate and seed) as one stacked model.

    Returns what train() returns for each job (None for a job whose config is refused, as cli() does),
    and writes each job's outputs in its own run_dir, with its log in LOG_NAME.log (None: no log file).
    """
    start, root = time.perf_counter(), logging.getLogger()
    dirs = [Path(c.run_dir) for c in cfgs]
    results: list[dict | None] = [None] * len(cfgs)
    jobs, members, outputs, claimed, ready = [], [], [], [], []
    sigterm_interrupts()

    def failed(indices: list[int], err: Exception) -> None:
        """The jobs end as failed, as cli() ends a job run alone: a user's mistake in one line on stderr;
        a bug fails every job of the stack, none of which will train, and keeps its traceback."""
        mistake = user_mistake(err)
        if mistake is not None:
            say_error(mistake)
        for i in indices if mistake is not None else claimed:
            write_json(dirs[i] / "metrics.json", failure(err, None) | {"seconds": 0.0})
        if mistake is None:
            raise err

    for i, run_dir in enumerate(dirs):
        try:
            claim(run_dir, resuming=False)
        except UserError as err:  # another run's directory: left as it is
            say_error(err)
            continue
        claimed.append(i)
        try:
            check_run_options(cfgs[i])  # its seed among them, before the batch orders are drawn from the seeds
            ready.append(i)
        except UserError as err:
            failed([i], err)
    if not ready:
        return results
    try:
        data = instantiate(cfgs[ready[0]].data, shuffle_seed=cfgs[ready[0]].seed)  # the same data for every job
    except Exception as err:
        failed(ready, err)
        return results
    for i in ready:
        cfg = cfgs[i]
        try:
            L.seed_everything(cfg.seed, verbose=False)  # the weights a run of this job alone starts from
            learner = build_learner(cfg, data)
            output = build_outputs(cfg, data)
            open_loggers(cfg, output[1], dict(learner.hparams))
            members.append(learner)
            outputs.append(output)
            jobs.append(i)
        except Exception as err:
            failed([i], err)
    if not members:
        return results
    seeds = [cfgs[i].seed for i in jobs]  # each member's batch order: that of its job run alone
    data.shuffle_seed = seeds if len(set(seeds)) > 1 else seeds[0]  # known now that the members are
    hints = {i: resume_hint(dirs[i]) for i in jobs}  # now: a run refused later may write its own .hydra/ there
    try:
        stacked, trainer = _stack(cfgs[jobs[0]], members, outputs)
    except Exception as err:
        failed(jobs, err)
        return results
    differ = [k for k in STACKED_KEYS if len({str(OmegaConf.select(cfgs[i], k)) for i in jobs}) > 1]
    log.info(f"{len(jobs)} jobs trained side by side as one stacked model ({', '.join(differ) or 'nothing'} differ)")
    logs = {i: _log_file(dirs[i], log_name) for i in jobs} if log_name else {}
    for handler in logs.values():
        root.addHandler(handler)
    outcomes: list[dict] = []
    try:
        outcomes = _fit_and_test(trainer, stacked, data)
    except BaseException as err:
        outcomes = [failure(err, view) for view in stacked.views]
        for member in members:
            member.flush_logs()
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            print(f"Interrupted in epoch {trainer.current_epoch + 1}. Each job resumes on its own:", file=sys.stderr)
            for i in jobs:
                print(f"  {hints[i]}", file=sys.stderr, flush=True)
        raise
    finally:
        for handler in logs.values():
            root.removeHandler(handler)
        seconds = round(time.perf_counter() - start, 3)
        for i, metrics in zip(jobs, outcomes, strict=False):
            results[i] = metrics | {"seconds": seconds}
            write_json(dirs[i] / "metrics.json", results[i])
    for i, view in zip(jobs, stacked.views, strict=True):
        if i in logs:
            root.addHandler(logs[i])
        if view.stopped_early:
            log.info(view.stopped_early)
        report(results[i], view, view.lightning_module, cfgs[i], dirs[i])
        if i in logs:
            root.removeHandler(logs[i])
    return results
