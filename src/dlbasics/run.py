"""From a composed config to objects, and running them: the one place train, eval and predict share."""

import ast
import contextlib
import inspect
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_object, to_absolute_path
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import (
    BatchSizeFinder,
    Checkpoint,
    EarlyStopping,
    GradientAccumulationScheduler,
    LearningRateFinder,
    ModelCheckpoint,
    ProgressBar,
    StochasticWeightAveraging,
)
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.strategies.launchers import subprocess_script
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf

from dlbasics.command import (
    BATCH_LOOP_OPTIONS,
    RUN_OPTIONS,
    RUN_RECORD,
    STEP,
    better,
    check_free,
    given_keys,
    process_rank,
    python_command,
    resumes,
    script,
    sweeping,
)
from dlbasics.data import (
    TabularData,
    columns_of,
    feature_matrix,
    header,
    input_names,
    projects,
    read_csv,
    scale,
    target_names,
)
from dlbasics.errors import (
    UserError,
    as_typed,
    disk_full,
    first_line,
    fits,
    instantiate,
    is_number,
    nearest_keys,
    read,
    unknown_option,
    user_mistake,
)
from dlbasics.files import write_json, write_whole
from dlbasics.losses import METRICS, loss_for
from dlbasics.module import Learner
from dlbasics.sweep import ENDED, status, typed_overrides

log = logging.getLogger("dlbasics")
if process_rank() != 0:  # DDP's other processes run the same code: rank 0 says it once (their warnings still show)
    log.setLevel(logging.WARNING)

# Lightning 2.6 on torch 2.13 warns about its own use of a deprecated torch API, once per run.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# The CSV logger writes into the run directory, which Hydra has already given its .hydra/ folder.
warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
# A column name in a script the font lacks is drawn as boxes in a figure's labels, without a warning per glyph.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
# Lightning announces devices, seeds, tips and signals at INFO on every Trainer: our console keeps its own lines.
for name in (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.pytorch.trainer.connectors.signal_connector",
    "lightning.fabric",
):
    logging.getLogger(name).setLevel(logging.WARNING)
# Imported once Hydra has set up logging (a job imports this module), Lightning's lines (an early stopping's
# verbose=true) go to the run's console and train.log, and to a stderr handler of Lightning's own a second time,
# as "INFO: ...": that one is taken out. Imported before (in process), Lightning keeps its lines on stderr.
logging.getLogger("lightning").handlers.clear()


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


_ddp_processes_command = subprocess_script._hydra_subprocess_cmd


def ddp_processes_command(local_rank: int) -> tuple[list[str], str]:
    """The command that starts DDP's other processes. Lightning's repeats the command line, which in a sweep (-m)
    is the whole sweep's: each process ran every job, and wrote the sweep's summary over the first's (without its
    swept columns), or a sweep of its own where the sweep's directory is named to the second it started. A sweep
    job's processes run that job alone: its options, in its directory."""
    if not sweeping():
        return _ddp_processes_command(local_rank)
    hydra = HydraConfig.get()
    run = [f"hydra.run.dir={as_typed(hydra.runtime.output_dir)}", f"hydra.job.name=train_ddp_process_{local_rank}"]
    command = [
        sys.executable,
        to_absolute_path(sys.argv[0]),
        *typed_overrides(hydra.overrides.task),
        *run,
        "hydra.output_subdir=null",
    ]
    return command, hydra.runtime.cwd


subprocess_script._hydra_subprocess_cmd = ddp_processes_command


COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".tar")  # what pandas reads a CSV from, by its suffix


def check_added(cfg: DictConfig) -> None:
    """A key added on the command line (+key=...) where no code reads it (a top-level one, one of loss or
    monitor, any of eval.py's) would change nothing, without a word: it is refused, with the nearest key."""
    if not HydraConfig.initialized():
        return
    for override in typed_overrides(HydraConfig.get().overrides.task):
        key, _, value = override.removeprefix("+").partition("=")
        parent = key.rpartition(".")[0]
        if override[:1] != "+" or key.startswith(("+", "hydra.")) or read(OmegaConf.select(cfg, parent) or cfg):
            continue
        near = nearest_keys(cfg, key, besides=key)
        raise UserError(
            f"{override}: nothing reads {key}, so it would change nothing."
            + (f" Did you mean {' or '.join(f'{k}={value}' for k in near)}?" if near else "")
            + f" `python {script()} --cfg job` shows every key."
        )


def metrics_line(metrics: dict[str, float]) -> str:
    """test/acc 1.000  test/loss 0.1474: four digits each, a perfect score too (it read 1)."""
    return "  ".join(f"{k} {v:#.4g}" for k, v in sorted(metrics.items()))


YAML = {True: "true", False: "false", None: "null"}  # as the command line writes them; hparams() shows a bool as 1


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = YAML[v] if v is None or isinstance(v, bool) else v if is_number(v) else str(v)
    return out


GROUPS = ("data", "model", "loss", "optimizer")  # every option of these is in the HPARAMS tab


def _given(cfg: DictConfig) -> dict:
    """The options of the command line the groups' do not hold (a sweep's trainer.precision=32-true,64-true), and
    the config chosen in each group it names (data=boston, callbacks=early_stopping)."""
    if not HydraConfig.initialized():
        return {}
    choices, given = HydraConfig.get().runtime.choices, {}
    for override in typed_overrides(HydraConfig.get().overrides.task):
        key = override.lstrip("+").partition("=")[0]
        if key in choices:
            given[key] = choices[key]
        elif not key.startswith(("~", "hydra.", *(f"{g}." for g in GROUPS))):
            value = OmegaConf.select(cfg, key, default=None)
            given.update(_flat({key: plain(value) if OmegaConf.is_config(value) else value}))
    return given


def _log_hparams(trainer: L.Trainer, cfg: DictConfig, metrics: dict) -> None:
    """Writes the run's options, as it ended, to TensorBoard's HPARAMS tab, beside the scalars it logged.

    They go to an event file of their own, which replaces the one an earlier segment of the run wrote
    (`ckpt_path=last`): TensorBoard reads a run's first options only. No experiment summary is written:
    TensorBoard then makes the table's columns from every run's options and scalars, where it would take
    one run's summary for all (a sweep over data=iris,boston would show no accuracy column).
    """
    writers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    if not writers:
        return
    from torch.utils.tensorboard.summary import hparams
    from torch.utils.tensorboard.writer import FileWriter

    options = {k: plain(cfg[k]) for k in GROUPS}
    params = _flat({**options, "seed": cfg.seed, "trainer.max_epochs": trainer.max_epochs})  # Lightning's if not given
    params.update(_given(cfg), status=metrics["status"], epochs=metrics["epochs"], params=metrics["params"])
    _, start, end = hparams(params, {})
    if metrics["status"] != "completed":  # diverged: a failure to TensorBoard's filter by status, not a success
        from tensorboard.plugins.hparams.api_pb2 import Status
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

        plugin = end.value[0].metadata.plugin_data
        ended = HParamsPluginData.FromString(plugin.content)
        ended.session_end_info.status = Status.STATUS_FAILURE
        plugin.content = ended.SerializeToString()
    for logger in writers:
        earlier = list(Path(logger.log_dir).glob("events.out.tfevents.*.hparams"))
        writer = FileWriter(logger.log_dir, filename_suffix=".hparams")
        for summary in (start, end):
            writer.add_summary(summary)
        writer.close()
        for path in earlier:
            path.unlink()


def build(cfg: DictConfig, run_dir: Path):
    """The data module, the Lightning module and the trainer that a composed config describes."""
    data = instantiate(cfg.data, shuffle_seed=cfg.seed)
    learner = build_learner(cfg, data)
    callbacks, loggers = build_outputs(cfg, data)
    # callbacks.model_checkpoint=null means no checkpoints, not Lightning's default of a file every epoch;
    # callbacks.progress=null no progress display, not Lightning's default bar
    trainer = instantiate(
        cfg.trainer,
        default_root_dir=run_dir,
        callbacks=callbacks,
        logger=loggers or False,
        enable_checkpointing=any(isinstance(c, Checkpoint) for c in callbacks),
        enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
        **fit_options(cfg.trainer),
    )
    cpus = os.cpu_count() or 1
    if isinstance(trainer.accelerator, CPUAccelerator) and trainer.num_devices > cpus:  # a process each, at once
        raise UserError(
            f"trainer.devices={cfg.trainer.devices} would start {trainer.num_devices} training processes on this "
            f"machine's {cpus} CPUs, which only slow each other down and fill its memory. Give at most "
            f"trainer.devices={cpus}."
        )
    return data, learner, trainer


def check_half_precision(cfg: DictConfig) -> None:
    """An Adam-like optimizer's eps below float16's smallest normal number is 0 in trainer.precision=16-true,
    and its steps divide by it: the first epoch is NaN."""
    if str(cfg.trainer.get("precision")) not in ("16-true", "16", "half"):
        return
    try:
        parameter = inspect.signature(get_object(cfg.optimizer._target_)).parameters.get("eps")
    except Exception:  # no such optimizer: building it says so
        return
    eps = cfg.optimizer.get("eps", parameter.default if parameter else None)
    if is_number(eps) and eps < torch.finfo(torch.float16).tiny:
        raise UserError(
            f"trainer.precision={cfg.trainer.precision}: the optimizer's eps={eps:g} is 0 in float16, and its steps "
            "divide by it. Use trainer.precision=16-mixed (or bf16-mixed), or +optimizer.eps=1e-4."
        )


# the values each output activation of a regression gives
OUTPUT_RANGES = {"sigmoid": (0.0, 1.0, "from 0 to 1"), "relu": (0.0, math.inf, "of 0 and above")}


def check_output_range(output_activation: str, data: TabularData) -> None:
    """A regression whose output activation cannot give the target's values would train to the nearest it can."""
    low, high, says = OUTPUT_RANGES.get(output_activation, (-math.inf, math.inf, ""))
    if data.meta["task"] != "regression" or not says:
        return
    for target, y in zip(target_names(data.meta["target"]), data.table.y.T, strict=True):
        if y.min() < low or y.max() > high:
            # course 2.3.1: ReLU for a target that is never negative, such as prices
            relu = "relu (for values never negative) or " * (output_activation != "relu" and y.min() >= 0)
            raise UserError(
                f"model.output_activation={output_activation} gives values {says}, and the target "
                f"'{target}' goes from {float(y.min()):g} to {float(y.max()):g}: use "
                f"model.output_activation={relu}identity (or auto)."
            )


def build_learner(cfg: DictConfig, data: TabularData) -> Learner:
    check_output_range(cfg.model.get("output_activation", "auto"), data)
    return Learner(
        data=data.meta, model=plain(cfg.model), optimizer=plain(cfg.optimizer), loss=cfg.loss.name, seed=cfg.seed
    )


# Lightning callbacks that act on what the run sets itself: a batch loop's steps, the data's batch size, the lr
UNSUPPORTED_CALLBACKS = {
    GradientAccumulationScheduler: STEP,  # accumulate_grad_batches by epoch
    BatchSizeFinder: "the batch size is data.batch_size (null: the whole split, gradient descent)",
    LearningRateFinder: "the learning rate is optimizer.lr; a sweep compares some: -m optimizer.lr=1e-3,1e-2,1e-1",
    # its schedule of learning rates is stepped by Lightning's automatic optimization: it trained as without it
    StochasticWeightAveraging: "it needs Lightning's automatic optimization, and each minibatch takes its own "
    "optimizer step here (manual optimization)",
}


def fit_options(trainer: DictConfig) -> dict:
    """What the Trainer gets beside its config: no validation loop, the Learner validates each epoch."""
    for key, (default, why) in BATCH_LOOP_OPTIONS.items():
        value = trainer.get(key)
        if value is not None and value != default:
            given = YAML[value] if isinstance(value, bool) else value  # as typed: true, not True
            raise UserError(f"trainer.{key}={given} is not supported: {why}.")
    for key, why in RUN_OPTIONS.items():
        if key in trainer:
            raise UserError(f"trainer.{key} is the run's to set: {why}.")
    if any(way in str(trainer.get("strategy")) for way in ("spawn", "fork", "notebook")):
        raise UserError(
            f"trainer.strategy={trainer.strategy} is not supported: its processes keep the run's results to "
            "themselves. Use trainer=ddp_cpu, or trainer=ddp on GPUs (strategy ddp)."
        )
    return {"limit_val_batches": 0}


def build_outputs(cfg: DictConfig, data: TabularData) -> tuple[list, list]:
    """A run's callbacks and loggers; without a val split, the monitored val/X follows train/X, in every
    callback that monitors it (also where its config was resolved before, as a stacked job's is)."""
    check_monitor(cfg.monitor, data)
    given, follows, callbacks, states = cfg.monitor.metric, {}, [], {}
    if not data.has("val"):
        cfg.monitor.metric = follows["monitor"] = "train/" + given.split("/", 1)[1]
    for name, c in (cfg.callbacks or {}).items():
        monitor = c.get("monitor") if isinstance(c, DictConfig) else None
        if monitor not in (None, given):  # one a user added or changed: monitor=val_loss
            check_measured(monitor, data, f"callbacks.{name}.monitor")
            mode = c.get("mode", "min")  # Lightning's default; ours follow monitor.mode, for monitor.metric
            if mode != better(monitor):  # early stopping would wait for val/acc to fall
                raise UserError(
                    f"callbacks.{name}.monitor={monitor} is better when {'higher' if mode == 'min' else 'lower'}, "
                    f"and callbacks.{name}.mode is {mode}. Give monitor.metric={monitor}, which sets the metric and "
                    f"its direction for every callback, or callbacks.{name}.mode={better(monitor)}."
                )
        if c:
            callbacks.append(_made(c, f"callbacks.{name}", L.Callback, **(follows if monitor == given else {})))
            # a checkpoint holds each callback's state under its state_key: Lightning refuses two alike (at the
            # Trainer, in a traceback; a stacked job's callbacks never reach it)
            state = callbacks[-1].state_key
            if is_overridden("state_dict", instance=callbacks[-1], parent=L.Callback) and state in states:
                raise UserError(
                    f"callbacks.{name} is callbacks.{states[state]} again ({type(callbacks[-1]).__name__} of the same "
                    "monitor and mode), whose state a checkpoint could not tell apart. Give it another monitor or "
                    "mode, or leave it out."
                )
            states[state] = name
            why = [why for kind, why in UNSUPPORTED_CALLBACKS.items() if isinstance(callbacks[-1], kind)]
            if why:
                raise UserError(f"callbacks.{name} is not supported: {why[0]}.")
            if isinstance(callbacks[-1], ModelCheckpoint) and callbacks[-1]._every_n_train_steps:
                raise UserError(
                    f"callbacks.{name}.every_n_train_steps is not supported: checkpoints are taken at the end of an "
                    "epoch (Lightning's steps within it are not its own). Use every_n_epochs."
                )
    loggers = [_made(cfg.logger[k], f"logger.{k}", Logger) for k in logger_keys(cfg)]
    return callbacks, loggers


def logger_keys(cfg: DictConfig) -> list[str]:
    """The config entries of the run's loggers, in the order of its loggers (logger.NAME=null: none)."""
    return [k for k, c in (cfg.logger or {}).items() if c]


def _made(cfg: DictConfig, key: str, kind: type, **kwargs):
    """A callback or logger from its config entry, which must name a class of that kind."""
    example = "lightning.pytorch." + ("callbacks.LearningRateMonitor" if kind is L.Callback else "loggers.CSVLogger")
    if not isinstance(cfg, DictConfig) or "_target_" not in cfg:
        raise UserError(f"{key} names no class: give it one, e.g. +{key}={{_target_: {example}}}.")
    made = instantiate(cfg, key=key, **kwargs)
    if not isinstance(made, kind):
        raise UserError(f"{key}._target_={cfg._target_} is not a Lightning {kind.__name__}.")
    if isinstance(made, TensorBoardLogger):  # what it does not take goes to the SummaryWriter of its first log
        from torch.utils.tensorboard import SummaryWriter

        writer = inspect.signature(SummaryWriter).parameters
        takes = {*inspect.signature(type(made)).parameters, *writer} - {"kwargs", "log_dir"}  # log_dir: the logger's
        unknown = [str(k) for k in cfg if not str(k).startswith("_") and k not in takes]
        if unknown:
            raise unknown_option(key, unknown[0], cfg._target_)
        for name in cfg.keys() & writer.keys():  # unannotated: of its default's kind (max_queue=10, comment="")
            default, value = writer[name].default, cfg[name]
            kinds = {str} if isinstance(default, str) else {int, float} if is_number(default) else None
            if kinds and not fits(value, kinds, []):
                raise UserError(f"{key}.{name} must be {'a string' if str in kinds else 'a number'}; got {value!r}.")
    return made


def open_loggers(cfg: DictConfig, loggers: list, hparams: dict) -> None:
    """Makes each logger's writer now, as Lightning would as training starts, once the run is past its resume
    checks (which write nothing) and TensorBoard's purge_step is set: a writer it cannot make (a save_dir it cannot
    create) is then one line naming the logger, not a traceback from inside fit.

    The loggers hold the model's hyperparameters (`hparams`, as its checkpoints do) from the start, so that their
    hparams.yaml has them also where the run is interrupted. Lightning logs none (save_hyperparameters(logger=False)):
    TensorBoard's HPARAMS are the run's options and results, written as it ends (_log_hparams)."""
    for key, logger in zip(logger_keys(cfg), loggers, strict=True):
        try:
            logger.log_hyperparams(hparams)
            _ = logger.experiment  # made at first use
        except OSError as err:
            where = err.filename or getattr(logger, "log_dir", None)  # the directory it could not make
            raise UserError(
                f"logger.{key}.save_dir: cannot write {where}: {err.strerror or err}. Give a directory you can write "
                f"to, or leave it out (the run's directory)."
            ) from None
        except Exception as err:
            raise UserError(f"logger.{key}: {first_line(user_mistake(err) or err)}") from None


def check_monitor(monitor: DictConfig, data: TabularData) -> None:
    """The monitored metric must be one the run measures every epoch, in a direction that exists."""
    if not (monitor.metric == "val/loss" and not data.has("val")):  # train/loss then
        check_measured(monitor.metric, data, "monitor.metric")
    if monitor.mode not in ("min", "max"):
        raise UserError(f"monitor.mode must be min or max; got {monitor.mode!r}.")
    if monitor.mode != better(monitor.metric):  # the best checkpoint would be the worst epoch
        raise UserError(
            f"monitor.mode={monitor.mode}: {monitor.metric} is better when "
            f"{'higher' if monitor.mode == 'min' else 'lower'}. Leave monitor.mode out: it follows monitor.metric."
        )


def check_measured(metric: str, data: TabularData, option: str) -> None:
    measured = ["train/loss", *(f"val/{m}" for m in METRICS[data.meta["task"]] if data.has("val"))]
    if metric not in measured:
        without = "" if data.has("val") else " (there is no val split: data.val_fraction=0)"
        raise UserError(f"{option}={metric} is not measured every epoch{without}; use one of {', '.join(measured)}.")


def resume_hint(run_dir: Path) -> str:
    """The command that resumes a run: its overrides, its directory and its last checkpoint."""
    saved = run_dir / ".hydra" / "overrides.yaml"  # as Hydra saved them for this run
    overrides = OmegaConf.to_container(OmegaConf.load(saved), resolve=False) if saved.is_file() else []  # as typed
    kept = [o for o in overrides if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    where = f"hydra.run.dir={as_typed(run_dir)}"
    return "Resume: " + python_command(script("train.py"), *kept, where, "ckpt_path=last")


def claim(run_dir: Path, resuming: bool) -> dict | None:
    """Makes run_dir this run's: its metrics.json says `running` (and which process) until the run ends.
    Another run's directory is refused as check_free says; returns what the resumed run's metrics.json said."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if process_rank() != 0:  # under DDP, the process of rank 0 writes for all
        return None
    path, running = run_dir / "metrics.json", {"status": "running", "host": socket.gethostname(), "pid": os.getpid()}
    with _locked(run_dir):  # of two runs started at once in one directory (two resumes too), one gets it
        try:
            with path.open("x") as f:
                f.write(json.dumps(running) + "\n")
            return None
        except FileExistsError:
            held = check_free(run_dir, resuming)
            # the time of its segments so far: a segment killed without a word (kill -9) loses its own only
            write_json(path, running | ({"seconds": held["seconds"]} if held and "seconds" in held else {}))
            return held


@contextlib.contextmanager
def _locked(directory: Path):
    """The directory to this process alone while it is held (an advisory lock, which the system lets go of
    when the process ends, however it ends); where the system has none (Windows), a no-op."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def check_run_options(cfg: DictConfig) -> None:
    """The options of a run itself (each group checks its own when it is built)."""
    check_added(cfg)
    if "shuffle_seed" in cfg.data:  # the run's own, which would outweigh it
        raise UserError(
            "data.shuffle_seed is the run's to set: the batch order follows seed=... (the split's: data.split_seed)."
        )
    if not is_number(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        raise UserError(f"seed must be an integer from 0 to 2**32 - 1; got {cfg.seed!r}.")
    if cfg.threads is not None and (not is_number(cfg.threads, int) or cfg.threads < 0):
        raise UserError(f"threads must be a positive integer (0 or null: torch's default); got {cfg.threads!r}.")
    given = given_keys(HydraConfig.get().overrides.task) if HydraConfig.initialized() else set()
    unused = sorted({"model.depth", "model.width"}.intersection(given))
    if unused and cfg.model.get("hidden") is not None:  # a sweep of depth=1,2,3 trained one model three times
        raise UserError(
            f"{unused[0]} is not used: model.hidden={list(cfg.model.hidden)} gives the hidden layers' widths. Give "
            "one or the other (model.hidden=null for depth and width)."
        )
    path = None if OmegaConf.is_missing(cfg.data, "path") else Path(to_absolute_path(str(cfg.data.path)))
    if path is not None and OmegaConf.is_missing(cfg.data, "target"):
        if not path.is_file():
            read_csv(str(cfg.data.path))  # which says what is wrong with the path, as given
        columns = columns_of(path, cfg.data.get("index_col"))
        if columns:  # '' for a file that is not a CSV: reading it says why
            raise UserError(
                f"data.target is required: add data.target=COLUMN, the column to predict. The columns are: {columns}."
            )
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    preset = "data.path" in given and "data" not in given and choices.get("experiment") in (None, "null")
    if preset and path.parent not in [p / "data" for p in projects()]:
        data = plain(cfg.data)
        kept = [f"{k}={data[k]}" for k in ("index_col", "task", "features", "standardize") if k not in given]
        kept = [k for k in kept if not k.endswith(("=None", "=True"))]  # csv's own defaults
        raise UserError(
            f"data.path is given without data=csv: the default data={choices.get('data')} would read it with its own "
            f"settings ({', '.join(kept) or 'its target'}). Add data=csv for a CSV of your "
            f"own, or data={choices.get('data')} to keep them."
        )
    check_half_precision(cfg)


class Trained(UserError):
    """A resume of a run that has trained its epochs already."""


def resume_from(ckpt_path: str, trainer, learner: Learner, ended: bool = True) -> tuple[str | None, int]:
    """The checkpoint to resume from and its global step, refused before training if it is not one of ours,
    holds a model of other options or has trained max_epochs already (unless its run had not `ended`: stopped
    while testing, it is tested now). None, 0 for ckpt_path=last where there is none yet."""
    path = Path(ckpt_path)
    if ckpt_path == "last":
        callback = trainer.checkpoint_callback
        if callback is None or not Path(callback.dirpath or "", "last.ckpt").is_file():
            where = f"'{callback.dirpath}'" if callback else "this run (callbacks.model_checkpoint=null)"
            log.info(f"ckpt_path=last: no last.ckpt in {where} yet; training starts afresh.")
            return None, 0
        path = Path(callback.dirpath, "last.ckpt")
    ckpt = read_checkpoint(path)
    saved, ours = ckpt["hyper_parameters"], learner.hparams
    # What its weights stand for: its model, and its data's options that say what it predicts from what, else
    # what the data made of them (a CSV changed since), with the CSV it was trained on
    was = [f"model.{k}={v}" for k, v in saved["model"].items() if ours["model"].get(k) != v]

    def differ(keys):
        return [f"data.{k}={saved['data'].get(k)}" for k in keys if saved["data"].get(k) != ours["data"].get(k)]

    data = differ(("task", "target", "features")) or differ(("categories", "classes", "n_features", "n_outputs"))
    here = ours["data"]["source"]
    source = saved["data"].get("source", here)  # from which rows, in which batches

    def moved(k):  # a key older checkpoints lack is taken as this run's
        return source.get(k, here[k]) != here[k]

    if data and moved("path"):
        data.insert(0, f"data.path={as_typed(source['path'])}")  # another CSV, as it was given (data=boston)
    was += data
    rows_and_batches = ("val_fraction", "test_fraction", "split_seed", "batch_size")
    was += [f"data.{k}={source.get(k)}" for k in rows_and_batches if moved(k)]
    if saved.get("seed", ours["seed"]) != ours["seed"]:  # its batch order; none recorded in older checkpoints
        was += [f"seed={saved['seed']}"]
    task = saved["data"]["task"]
    if loss_for(task, saved.get("loss", "auto")) != loss_for(task, ours["loss"]):  # its best's loss too, in its units
        was += [f"loss={saved.get('loss', 'auto')}"]
    # its optimizer's state holds the options it was made with (torch restores lr, betas, ... from it): another
    # class would not load, another learning rate would be recorded and not used
    if saved["optimizer"]["_target_"] != ours["optimizer"]["_target_"]:
        was += [f"optimizer._target_={saved['optimizer']['_target_']}"]
    else:
        was += [f"optimizer.{k}={v}" for k, v in saved["optimizer"].items() if ours["optimizer"].get(k) != v]
        was += [f"optimizer.{k}=null" for k in ours["optimizer"].keys() - saved["optimizer"].keys()]
    scaled = ("mean", "std", "y_mean", "y_std")  # and in what units: data.standardize, or another version's
    if was == [] and any(saved["data"].get(k) != ours["data"].get(k) for k in scaled):
        was = ["its data scaled otherwise (data.standardize, or a version of dlbasics that did not scale the target)"]
    if was or saved["model"] != ours["model"] or saved["optimizer"] != ours["optimizer"]:
        raise UserError(
            f"ckpt_path: '{path}' holds a model trained with other options ({', '.join(was) or 'other options'}). "
            "Resume with the options it was trained with (its run's .hydra/overrides.yaml)."
        )
    done = ckpt.get("epoch", -1) + 1  # the epochs its run had completed
    if 0 <= trainer.max_epochs <= done and ended:  # nothing to train: eval.py tests a checkpoint as it is
        test = python_command("eval.py", f"ckpt_path={as_typed(path)}")
        raise Trained(
            f"trainer.max_epochs={trainer.max_epochs}: '{path}' has trained {done} epochs already. Resume with more, "
            f"e.g. trainer.max_epochs={2 * done}, or test it with {test}."
        )
    if 0 <= trainer.max_epochs <= done:  # stopped while testing
        log.info(f"Resuming '{path}': its {done} epochs are trained; testing it.")
    else:
        to = f" of {trainer.max_epochs}" if trainer.max_epochs >= 0 else ""
        log.info(f"Resuming '{path}' after epoch {done}{to}.")
    # a callback of other options (monitor.metric=val/acc) does not take the checkpoint's state: Lightning warns raw
    for key in sorted(ckpt.get("callbacks", {}).keys() - {c.state_key for c in trainer.callbacks}):
        name = key.partition("{")[0]
        now = next((c.state_key for c in trainer.callbacks if c.state_key.partition("{")[0] == name), None)
        if now is not None:
            was, new = _key_options(key), _key_options(now)
            changed = ", ".join(f"{k} {was.get(k)} -> {v}" for k, v in new.items() if was.get(k) != v)
            log.info(
                f"{name}: the checkpoint's state is of other options{f' ({changed})' * bool(changed)}; it starts anew."
            )
    return str(path), ckpt["global_step"]


def _key_options(state_key: str) -> dict:
    """The options in a callback's state key (Checkpoints{'monitor': 'val/loss', 'mode': 'min', ...}); {} where they
    are not plain values (a train_time_interval's timedelta)."""
    options = state_key.partition("{")[2]
    try:
        return ast.literal_eval("{" + options) if options else {}
    except (ValueError, SyntaxError):
        return {}


def purge_from(trainer: L.Trainer, step: int) -> None:
    """TensorBoard hides what an earlier segment of the run logged after `step`, the step it resumes from: the
    epochs after its last checkpoint (kill -9, or Ctrl-C between an epoch's log and its checkpoint), or all of it
    where it trains afresh, from step 0 (SummaryWriter's purge_step, written as its first event); the CSV log
    drops those rows."""
    purge = step + 1 if step else 0
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger) and logger._experiment is None:  # its writer is made at first use
            logger._kwargs.setdefault("purge_step", purge)
        elif hasattr(logger, "purge_step") and logger._experiment is None:  # callbacks.CSVLogger
            logger.purge_step = purge


def sigterm_interrupts() -> None:
    """SIGTERM (kill, a scheduler) stops a run as Ctrl-C does: the last completed epoch is kept."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


EPOCH_METRICS = ("train/", "val/")  # measured every epoch; test/ once, at the end


DDP_ENVIRONMENT = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")  # Lightning's launcher's


def end_ddp(environment: dict[str, str | None]) -> None:
    """Undoes what a sweep job's DDP left in this process: its process group, and the variables by which
    Lightning would take the next job's processes as started already (LOCAL_RANK), and wait for them for ever."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for key, value in environment.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def train(cfg: DictConfig) -> dict:
    """Trains, tests on the best checkpoint, and returns the metrics it writes to metrics.json.

    metrics.json is written however the run ends: `completed`, `diverged`, `interrupted` or `failed`.
    """
    run_dir, record = Path(cfg.run_dir), Path(cfg.run_dir, "metrics.json")
    found_at = record.stat().st_mtime_ns if record.is_file() else None
    held = claim(run_dir, resuming=resumes(run_dir, cfg.ckpt_path))
    hint = resume_hint(run_dir)  # now: a run refused later may write its own .hydra/ record here
    start, trainer, learner, metrics, fitting, trained = time.perf_counter(), None, None, {}, False, False
    environment = {k: os.environ.get(k) for k in DDP_ENVIRONMENT}
    try:
        sigterm_interrupts()
        check_run_options(cfg)
        L.seed_everything(cfg.seed, verbose=False)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        data, learner, trainer = build(cfg, run_dir)
        ended = held is None or status(held) in ENDED  # or stopped before its outputs
        try:
            ckpt_path, step = resume_from(cfg.ckpt_path, trainer, learner, ended) if cfg.ckpt_path else (None, 0)
        except Trained:
            if not sweeping() or held is None:
                raise
            log.info(f"{run_dir.name}: trained its epochs already; kept as it ended.")  # a sweep resumed
            return held
        if cfg.ckpt_path:
            purge_from(trainer, step)
        open_loggers(cfg, trainer.loggers, dict(learner.hparams))
        with warnings.catch_warnings():
            if cfg.ckpt_path:  # resuming in the run's own directory: its checkpoints are expected there
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
                warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`")  # resume_from's
            fitting = True
            trainer.fit(learner, datamodule=data, ckpt_path=ckpt_path)
        trained = True
        stop = stopped_early(trainer)
        if stop and trainer.is_global_zero:
            log.info(stop)
        # the last epoch's: of this segment, or of the one before where it had trained its epochs (stopped testing)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()} or {
            k: v for k, v in (held or {}).items() if k.startswith(EPOCH_METRICS) and not k.endswith("_best")
        }
        if data.has("test"):
            trainer.test(learner, datamodule=data, ckpt_path=best_checkpoint(trainer), verbose=False)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
        metrics = outcome(metrics, trainer, learner)
    except BaseException as err:  # Lightning turns Ctrl-C into SystemExit
        stopped = isinstance(err, (KeyboardInterrupt, SystemExit))
        if stopped and (trainer is None or trainer.is_global_zero):
            where = (
                "after training"
                if trained
                else f"in epoch {trainer.current_epoch + 1}"
                if fitting
                else "before training"
            )
            if trainer is not None and trainer.checkpoint_callback is None:  # callbacks.model_checkpoint=null
                hint = f"It kept no checkpoint to resume from; its logs and metrics.json are in {run_dir}."
            print(f"Interrupted {where}. {hint}", file=sys.stderr, flush=True)
        # after training: its last epoch's metrics too, which a resume that only tests reports
        metrics = failure(err, trainer) | (
            {k: v for k, v in metrics.items() if k.startswith(EPOCH_METRICS)} if trained else {}
        )
        if learner is not None:
            learner.flush_logs()  # the loggers hold every completed epoch
        raise
    finally:
        # a run resumed in its own directory: its earlier segments' time too
        metrics["seconds"] = round(time.perf_counter() - start + (held or {}).get("seconds", 0.0), 3)
        if held is not None and not fitting:  # a resume refused before training: the run stays as it ended
            write_json(record, held)
            os.utime(record, ns=(found_at, found_at))  # its time too, by which a sweep tells a job that did not run
            for path, content in RUN_RECORD.items():  # its options, as Hydra recorded them (a sweep's: SweepSummary)
                path.write_bytes(content)
        elif trainer is None or trainer.is_global_zero:
            write_json(record, metrics)
        if sweeping():
            end_ddp(environment)
    if trainer.is_global_zero:
        report(metrics, trainer, learner, cfg, run_dir)
    return metrics


def stopped_early(trainer) -> str | None:
    """The line of an early stopping that ended training, read as it ends (testing the best checkpoint then puts
    back the callbacks' states of its epoch)."""
    for stop in (c for c in trainer.callbacks if isinstance(c, EarlyStopping) and c.stopped_epoch):
        why = stop.stopping_reason_message  # Lightning's; the patience exhausted in the course's words
        if stop.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            why = f"{stop.monitor} had not improved for {stop.patience} epochs"
        return f"Stopped early after epoch {trainer.current_epoch} of {trainer.max_epochs}: {why.rstrip('.')}."
    return None


def outcome(metrics: dict, trainer, learner: Learner) -> dict:
    """A finished run's metrics with its status, epochs, size and best checkpoint, as metrics.json holds them;
    with the best checkpoint's monitored value (`val/loss_best`), which its test metrics go with."""
    # A run that diverged (learner.diverged), or whose numbers blew up on the test rows only, reports no results.
    finite = all(math.isfinite(v) for k, v in metrics.items() if "/" in k)
    completed = not learner.diverged and finite
    if completed:
        metrics = metrics | best_value(trainer)
    return metrics | dict(
        status="completed" if completed else "diverged",
        epochs=trainer.current_epoch,
        params=sum(p.numel() for p in learner.parameters()),
        checkpoint=best_checkpoint(trainer),
    )


def best_value(trainer) -> dict[str, float]:
    """The best checkpoint's monitored value, as metrics.json holds it (`val/loss_best`); none without one."""
    callback = trainer.checkpoint_callback
    if callback is None or callback.best_model_score is None:
        return {}
    return {f"{callback.monitor}_best": float(callback.best_model_score)}


def best_checkpoint(trainer) -> str | None:
    """The path of the run's best checkpoint by the monitored metric; None without checkpointing."""
    return (trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else "") or None


def failure(err: BaseException, trainer) -> dict:
    """metrics.json of a run that was interrupted, or failed, with the error's first line. An interrupted run's
    holds its last epoch's metrics and its best checkpoint's monitored value, by which a sweep's summary ranks it."""
    interrupted = isinstance(err, (KeyboardInterrupt, SystemExit))
    if interrupted:
        metrics = {"status": "interrupted"}
    else:
        metrics = {"status": "failed", "error": first_line(user_mistake(err) or err)}
    if trainer is not None:
        metrics["epochs"] = trainer.current_epoch
    if trainer is not None and interrupted:
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(EPOCH_METRICS)}
        metrics |= best_value(trainer)
    return metrics


def report(metrics: dict, trainer, learner: Learner, cfg: DictConfig, run_dir: Path) -> None:
    """The end of a run: HPARAMS in TensorBoard, and its results and directory on the console and in its log."""
    best = {k: v for k, v in metrics.items() if k.endswith("_best")}
    for logger in trainer.loggers:
        if best:  # a scalar, for the HPARAMS table's column
            logger.log_metrics(best, step=trainer.global_step)
        logger.finalize("success")
    _log_hparams(trainer, cfg, metrics)
    shown = {k: v for k, v in metrics.items() if k.startswith("test/")} or {
        k: v for k, v in metrics.items() if k.startswith(("val/", "train/"))
    }
    log.info(metrics_line(shown))
    if learner.diverged_epoch is not None:
        log.info(f"Diverged: the training loss was not finite in epoch {learner.diverged_epoch + 1}; stopped there.")
    elif learner.diverged:
        log.info(
            f"Diverged: the training loss grew, from {learner.first_loss:#.4g} in the first epoch to "
            f"{learner.last_loss:#.4g} in the last. A lower optimizer.lr converges."
        )
    elif metrics["status"] == "diverged":
        log.info("Diverged: some final metrics are not finite numbers (an overflow); rescale the data.")
    log.info(f"Run directory: {run_dir}")


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by train.py, loaded with weights_only=True; anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"ckpt_path: no file '{path}'. Give a checkpoint of a run: ckpt_path=RUN_DIR/checkpoints/best.ckpt"
        )
    try:
        # mapped, not read: resuming reads only the hyperparameters here (Lightning loads the file itself)
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        why = (
            "it holds pickled objects, not only tensors and plain values"
            if "Unsupported global" in str(err)
            else "it is not a complete PyTorch checkpoint"
        )
        raise UserError(f"ckpt_path: '{path}' is refused: {why}. Give a checkpoint written by train.py.") from None
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hparams, dict) or not {"data", "model", "optimizer"} <= hparams.keys():
        raise UserError(
            f"ckpt_path: '{path}' is a PyTorch file but not a dlbasics checkpoint (no data, model and optimizer)."
        )
    return ckpt


def load_learner(path: str | Path) -> Learner:
    """A Learner rebuilt from a checkpoint alone."""
    ckpt = read_checkpoint(path)
    learner = Learner(**ckpt["hyper_parameters"])
    try:
        learner.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError) as err:
        raise UserError(
            f"ckpt_path: '{path}' holds weights that do not fit its own model ({str(err)[:200]})."
        ) from None
    return learner.eval()


def evaluate(cfg: DictConfig) -> dict:
    """Tests a checkpoint again on its own test split, prepared as the checkpoint says."""
    check_added(cfg)
    learner = load_learner(cfg.ckpt_path)
    data = TabularData.from_meta(learner.hparams.data, path=cfg.data_path)
    if not data.has("test"):
        raise UserError("this checkpoint's data has no test split (it was trained with data.test_fraction=0).")
    try:
        trainer = L.Trainer(
            accelerator=cfg.accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
    except Exception as err:  # accelerator=gpu on a machine without one: Lightning's words, and eval.py's fix
        if user_mistake(err) is None:
            raise
        raise UserError(
            f"accelerator={cfg.accelerator}: {first_line(err).rstrip('.!')}. Give accelerator=cpu."
        ) from None
    trainer.test(learner, datamodule=data, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info(metrics_line(metrics))
    return metrics


FAR = 10.0  # standard deviations of a feature from its training mean beyond which a model extrapolates


def far_out(x: torch.Tensor, meta: dict) -> None:
    """A line for rows with a number far from the training rows' (standardized: |x| > FAR), where the model's
    predictions extrapolate: a price in cents where it learnt dollars, a unit changed."""
    if meta.get("mean") is None:  # data.standardize=false: no statistics to compare with
        return
    names = input_names(meta)
    numbers = [j for j, name in enumerate(names) if name in meta["features"]]  # not a category's 0/1 input
    far = x[:, numbers].abs() > FAR
    if far.any():
        (row, k), rows = map(int, far.nonzero()[0]), int(far.any(1).sum())
        j = numbers[k]
        mean, std = meta["mean"][j], meta["std"][j]
        log.info(
            f"{rows} row{'s' * (rows != 1)} of {len(x)} {'have' if rows != 1 else 'has'} a feature more than "
            f"{FAR:g} standard deviations from the training rows' mean (first at data row {row + 1}: '{names[j]}' "
            f"{float(x[row, j]) * std + mean:.4g}, where the training rows had {mean:.4g} ± {std:.4g}): the "
            "predictions there extrapolate. Check its units."
        )


def predict(cfg: DictConfig) -> Path:
    """Writes the input's rows with the model's predictions beside them: values, or classes and probabilities."""
    check_added(cfg)
    given = Path(cfg.input)
    stem = Path(given.stem).stem if given.suffix in COMPRESSED else given.stem  # new.csv.gz: new_predictions.csv
    path = Path(cfg.output) if cfg.output else given.with_name(stem + "_predictions.csv")
    if not path.parent.is_dir():
        raise UserError(f"output: no directory '{path.parent}'. Create it, or give output=FILE in an existing one.")
    if path.resolve() == given.resolve():
        raise UserError(f"output: '{path}' is the input file; give the predictions a file of their own.")
    if path.is_dir():
        raise UserError(f"output: '{path}' is a directory; give a file in it: output={path / 'predictions.csv'}")
    learner = load_learner(cfg.ckpt_path)
    meta = learner.hparams.data
    targets = target_names(meta["target"])
    if path.exists() and f"predicted_{targets[0]}" not in header(path):  # a checkpoint, the data, ...
        raise UserError(
            f"output: '{path}' exists and is not predictions of this model's; it is left as it is. "
            "Give the predictions a file of their own: output=..."
        )
    frame = read_csv(cfg.input, option="input", whole=True)  # a saved index too: the rows' ids, to join on
    if frame.empty:
        raise UserError(f"input: '{cfg.input}' has a header but no data rows: add the rows to predict.")
    result = predictions(learner, frame)
    try:
        write_whole(path, lambda tmp: result.to_csv(tmp, index=False))
    except OSError as err:
        if disk_full(err):
            raise
        raise UserError(
            f"output: cannot write '{path}': {err.strerror or err}. Give a file where you can write: output=..."
        ) from None
    log.info(f"Predictions for {len(result)} row{'s' * (len(result) != 1)}: {path}")
    return path


def predictions(learner: Learner, frame, option: str = "input"):
    """The frame's rows with the model's predictions beside them (predict.py's file, from Python): a value per
    target, or the class and a probability per class; its features in the CSV's units, scaled and encoded as the
    checkpoint says. `option` names the frame in a message."""
    meta, targets = learner.hparams.data, target_names(learner.hparams.data["target"])
    x = feature_matrix(frame, meta["features"], option=option, categories=meta.get("categories", {}))
    x = torch.from_numpy(scale(x, meta))
    far_out(x, meta)
    with torch.no_grad():
        out = learner.objective.predict(learner(x.to(learner.device, learner.dtype))).cpu().numpy()
    classes = meta["classes"]
    result = frame.rename(columns=lambda c: "" if str(c).startswith("Unnamed: ") else c)  # as the header has it
    if classes is None:
        for j, target in enumerate(targets):
            result[f"predicted_{target}"] = out[:, j]
    else:
        probs = np.column_stack([1 - out[:, 0], out[:, 0]]) if meta["task"] == "binary" else out
        result[f"predicted_{targets[0]}"] = [classes[i] for i in probs.argmax(1)]
        for i, c in enumerate(classes):
            result[f"p({c})"] = probs[:, i]
    return result


def monitored(metrics: dict | None, cfg: DictConfig) -> float | None:
    """The value a Hydra sweeper optimizes: the monitored metric of the best checkpoint (the one tested), or the
    last epoch's without checkpoints; worst when it is missing or not finite."""
    if not metrics:
        return None
    value = metrics.get(f"{cfg.monitor.metric}_best", metrics.get(cfg.monitor.metric, math.nan))
    return value if math.isfinite(value) else (math.inf if cfg.monitor.mode == "min" else -math.inf)
