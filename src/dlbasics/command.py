"""The command line of train.py, eval.py and predict.py: the config's resolvers, the options it refuses, and the
shell that runs a job and makes a user's mistake one line.

It imports neither Lightning nor torch (seconds): `--help`, `--cfg job`, tab completion and a command line Hydra
cannot compose answer at once. A job imports them with dlbasics.run.
"""

import json
import logging
import os
import re
import shlex
import socket
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from dlbasics.errors import (
    FROM_DATA,
    GIVEN_PATHS,
    UserError,
    as_typed,
    config_mistake,
    disk_full,
    first_line,
    from_data,
    is_number,
    made_dir,
    say_error,
    taken_out,
    user_mistake,
)
from dlbasics.startup import interrupted
from dlbasics.sweep import (  # and the resolver that names a sweep's jobs
    ENDED,
    TWICE,
    empty_sweeps,
    end_stopped_sweep,
    given_twice,
    status,
    typed_overrides,
)

log = logging.getLogger("dlbasics")
# A job imports these once Hydra has set up logging, and their INFO lines would reach its console: matplotlib's
# font cache, made on a machine's first run; torch's exit hooks where Ctrl-C cut its import short (torch sets
# this level itself as its import ends); the plugins of alembic, which Optuna's sweeper imports.
for name in ("matplotlib", "torch", "alembic"):
    logging.getLogger(name).setLevel(logging.WARNING)


def output_dir() -> str:
    """A job's directory, ${hydra:runtime.output_dir}, which Hydra sets as the job starts; before, as `--cfg job
    --resolve` shows the config, the one a run started now would get (not None): hydra.run.dir, as Hydra makes it."""
    hydra = HydraConfig.get()
    if OmegaConf.is_missing(hydra.runtime, "output_dir"):
        return os.path.abspath(hydra.run.dir)
    return hydra.runtime.output_dir


OmegaConf.register_new_resolver("output_dir", output_dir, replace=True)  # train.yaml's run_dir: ${output_dir:}


def data_name(choice: str, path: str | None) -> str:
    """A run directory's first word (logs/iris-mlp/...): the data option's name; for data=csv, the CSV's own
    (logs/wine-mlp/... for data.path=wine.csv), where every CSV of a lab went to logs/csv-mlp/."""
    name = Path(str(path)).name if choice == "csv" and path else ""
    return re.sub(r"(\.csv)?(\.(gz|bz2|xz|zip|zst|tar))?$", "", name, flags=re.IGNORECASE) or choice  # wine.csv.gz


OmegaConf.register_new_resolver("data_name", data_name, replace=True)  # train.yaml's hydra.run.dir


HIGHER_IS_BETTER = ("acc", "r2")  # of the metrics (dlbasics.losses.METRICS); the others are better lower


def better(metric: str) -> str:
    """monitor.mode of a metric: max for an accuracy or r2, min for a loss or an error."""
    return "max" if str(metric).rpartition("/")[2] in HIGHER_IS_BETTER else "min"


OmegaConf.register_new_resolver("better", better, replace=True)  # monitor.mode: ${better:${monitor.metric}}


def direction(mode: str) -> str:
    """An Optuna search's hydra.sweeper.direction for monitor.mode: minimize or maximize."""
    return {"min": "minimize", "max": "maximize"}.get(str(mode), str(mode))


OmegaConf.register_new_resolver("direction", direction, replace=True)  # ${direction:${monitor.mode}}


# Trainer options of Lightning's batch loop and automatic optimization, with their defaults and why they have
# nothing to act on: an epoch is one step of that loop (Learner.training_step), which steps manually.
EPOCH = (
    "each epoch trains on every minibatch of the training split, then validates on the val split. Leave it out "
    "(data.batch_size and data.val_fraction set what an epoch holds)"
)
STEP = (
    "each minibatch takes its own optimizer step (manual optimization, where Lightning neither accumulates nor "
    "clips gradients). Leave it out (data.batch_size sets a step's rows, optimizer.lr its size)"
)
BATCH_LOOP_OPTIONS = {
    "limit_train_batches": (1.0, EPOCH),
    "limit_val_batches": (1.0, EPOCH),
    "val_check_interval": (1.0, EPOCH),
    "check_val_every_n_epoch": (1, EPOCH),
    "overfit_batches": (0.0, EPOCH),
    "fast_dev_run": (False, "a quick run is trainer.max_epochs=1, with logger=none for no logs"),
    "accumulate_grad_batches": (1, STEP),
    "gradient_clip_val": (0, STEP),
    "gradient_clip_algorithm": (None, STEP),
    "log_every_n_steps": (1, "an epoch's metrics are logged once, at its last step"),
    "barebones": (False, "the run is made of the checkpoints, loggers and callbacks that it switches off"),
    "use_distributed_sampler": (
        True,
        "under DDP each process takes its share of every batch (the batches are dlbasics', not a DataLoader's)",
    ),
}

# Trainer arguments the run gives from options of its own, which a value in trainer would not outweigh.
RUN_OPTIONS = {
    "enable_checkpointing": "checkpoints come from callbacks.model_checkpoint (=null for none)",
    "logger": "the loggers come from logger= (none, csv or tensorboard)",
    "enable_progress_bar": "the progress line comes from callbacks.progress (=null for none)",
    "callbacks": "the callbacks come from callbacks.* (+callbacks.NAME={_target_: ...} adds one)",
    "default_root_dir": "a run's directory is Hydra's: hydra.run.dir=... (hydra.sweep.dir=... with -m)",
}


REFUSED_KEYS = {f"trainer.{k}": f"trainer.{k} is not supported: {why}." for k, (_, why) in BATCH_LOOP_OPTIONS.items()}
REFUSED_KEYS |= {f"trainer.{k}": f"trainer.{k} is the run's to set: {why}." for k, why in RUN_OPTIONS.items()}
REFUSED_KEYS |= {f"model.{k}": from_data(k) for k in FROM_DATA}


def sweeping() -> bool:
    """Whether this is a job of a Hydra multirun (`-m`)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


SCRIPTS = ("train.py", "eval.py", "predict.py")


def script(name: str | None = None) -> str:
    """The script `name` (by default the one run), as the command line gave it where that was it (python
    ~/dlbasics/train.py, run from another directory): a command to paste."""
    given = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path(name or "train.py")
    name = name or given.name
    return shlex.quote(str(given)) if given.name == name and name in SCRIPTS else name


def python_command(script: str, *overrides: str) -> str:
    """`python SCRIPT OVERRIDES`, quoted for the shell."""
    return f"python {script} " + " ".join(shlex.quote(o) for o in overrides)


def refuse(message: str) -> NoReturn:
    """A user's mistake, found before any run: one line on stderr, exit status 2."""
    say_error(message)
    sys.exit(2)


def from_launch_directory(cfg: DictConfig) -> None:
    """The paths a user gave: `~` is the home directory, as in a shell (Hydra takes it only quoted, and the shell
    then leaves it as it is). With hydra.job.chdir=true a job runs in its own directory: those relative to where the
    command was started (Hydra's runtime.cwd) become absolute, as hydra.utils.to_absolute_path makes them."""
    moved = HydraConfig.initialized() and Path.cwd() != Path(HydraConfig.get().runtime.cwd)
    with open_dict(cfg):
        for key in GIVEN_PATHS:
            value = OmegaConf.select(cfg, key)
            if isinstance(value, str) and value != "last":
                path = to_absolute_path(os.path.expanduser(value)) if moved else os.path.expanduser(value)
                if path != value:
                    OmegaConf.update(cfg, key, path)


# --- The run's directory, checked by a Hydra callback before Hydra writes there (also by the run itself) ---


def given_keys(overrides) -> set[str]:
    """The keys a list of overrides sets, adds or takes out (key=..., +key=..., ~key)."""
    return {o.lstrip("+~").partition("=")[0] for o in typed_overrides(overrides)}


def ddp_process() -> bool:
    """Whether this is a process Lightning started for DDP (rank 1 and up), which runs under its parent's checks."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


RUN_RECORD: dict[Path, bytes] = {}  # the .hydra/ files of the run a run alone found in its directory


class OutputDirectory(Callback):
    """Hydra callback: a run or sweep directory that cannot be made, a search without -m, or a config without what
    the run reads (~data) ends in one line, before Hydra makes the directory."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _check_needed(config)
        _check_no_search(config)
        _check_output(config, used="hydra.run.dir", other="hydra.sweep.dir", mode="a run (without -m)")
        run_dir = Path(config.hydra.run.dir)
        try:  # before Hydra writes its .hydra/ record there: another run's stays as that run left it
            check_free(run_dir, resuming=resumes(run_dir, config.get("ckpt_path")))
        except UserError as err:
            refuse(str(err))
        # and the record of a run this one resumes, put back if the resume is refused (train())
        if config.hydra.output_subdir is not None:  # None: a DDP process of the run, which keeps no record
            RUN_RECORD.update({f: f.read_bytes() for f in (run_dir / config.hydra.output_subdir).glob("*.yaml")})
        # The job's Lightning now, for seconds, before Hydra writes the run's record and log: Ctrl-C meanwhile leaves
        # the directory as it was (and the refusals above answer without it)
        import dlbasics.run  # noqa: F401

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _check_needed(config)
        if empty := empty_sweeps(config):
            refuse(f"{empty[0]} gives no value, so the sweep has no jobs: give it one value or more.")
        searched, mode = OmegaConf.select(config, "hydra.sweeper.direction"), OmegaConf.select(config, "monitor.mode")
        if isinstance(searched, str) and mode and searched != direction(mode):  # it would search for the worst
            refuse(
                f"hydra.sweeper.direction={searched} searches for the worst {config.monitor.metric} (monitor.mode="
                f"{mode}): leave it out, as it follows monitor.mode."
            )
        for key, what in (("n_trials", "the runs it makes"), ("n_jobs", "the runs it launches at once")):
            value = OmegaConf.select(config, f"hydra.sweeper.{key}")  # 0: optuna's "No trials are completed yet"
            if value is not None and (not is_number(value, int) or value < 1):
                refuse(f"hydra.sweeper.{key} must be an integer >= 1 ({what}); got {value!r}.")
        _check_output(config, used="hydra.sweep.dir", other="hydra.run.dir", mode="a sweep (-m)")


NEEDED = ("data", "model", "loss", "optimizer", "trainer", "monitor", "seed")  # what every run of train.py reads


def _check_needed(config: DictConfig) -> None:
    """~data, ~model: refused before Hydra makes the run's directory, rather than by the job in it."""
    for key in NEEDED:
        if key not in config:
            refuse(taken_out(key))


def _check_no_search(config: DictConfig) -> None:
    """A sweeper other than Hydra's basic one (hparams_search=iris_optuna) searches in a sweep (-m) only: without
    -m, Hydra would run one job of the default options, and say nothing of the search."""
    choices = config.hydra.runtime.choices
    if choices["hydra/sweeper"] != "basic" and not ddp_process():
        search = choices.get("hparams_search")
        given = f"hparams_search={search}" if search else f"hydra/sweeper={choices['hydra/sweeper']}"
        # a run's directory given: a sweep's is hydra.sweep.dir
        given_args = [re.sub(r"^(\+*)hydra\.run\.dir=", r"\1hydra.sweep.dir=", a) for a in sys.argv[1:]]
        command = python_command(script(), "-m", *given_args)
        refuse(f"{given} searches over many runs: add -m ({command})")


def _check_output(config: DictConfig, used: str, other: str, mode: str) -> None:
    """The run's or sweep's directory (`used`) made, or one line for the options that would put it elsewhere or
    keep no record of it."""
    HydraConfig.instance().set_config(config)  # not yet set: the default run dir reads ${hydra:runtime...}
    if other in given_keys(config.hydra.overrides.hydra):  # which Hydra ignores: the runs would go elsewhere
        refuse(f"{other} is not used by {mode}, which goes to {used}: give {used}=... instead.")
    if config.hydra.output_subdir is None and not ddp_process():  # Lightning's DDP processes ask for no record
        refuse(
            "hydra.output_subdir=null is not supported by train.py: a run's resume line and a sweep's summary "
            "read its .hydra/ record. Leave it out."
        )
    # run_dir is where Hydra puts the run (its .hydra/ record, train.log): another would split the run in two
    if "run_dir" in given_keys(config.hydra.overrides.task):
        refuse(f"run_dir is Hydra's directory for the run, its record and log too: give {used}=... instead.")
    path = str(OmegaConf.select(config, used))
    if path.startswith("~"):  # Hydra would make a directory named ~ in the working directory
        path = _home(config, used, path)
    if not path.strip():  # Path('') is the working directory: the project's own, as like as not
        refuse(f"{used} is empty. Give the run a directory of its own: {used}=...")
    try:
        made_dir(used, path)
    except UserError as err:
        refuse(str(err))


def _home(config: DictConfig, key: str, path: str) -> str:
    """A run's or sweep's directory given as ~/...: in the home directory, as in a shell. The override becomes the
    path too, as a sweep composes each job's config again from the overrides."""
    home = os.path.expanduser(path)
    if home.startswith("~"):  # ~name, of no user here
        refuse(f"{key}: '{path}' names no home directory here: give the directory's absolute path, {key}=/...")
    given = [o for o in config.hydra.overrides.hydra if o.lstrip("+").partition("=")[0] != key]
    with read_write(config.hydra):
        OmegaConf.update(config, key, home)
        config.hydra.overrides.hydra = [*given, f"{key}={as_typed(home)}"]
    HydraConfig.instance().set_config(config)
    return home


def resumes(run_dir: Path, ckpt_path) -> bool:
    """Whether ckpt_path resumes the run of run_dir (`last`, or a checkpoint in it), not another run's."""
    path = Path(to_absolute_path(os.path.expanduser(str(ckpt_path)))) if ckpt_path else None
    return ckpt_path == "last" or (path is not None and path.resolve().is_relative_to(run_dir.resolve()))


def check_free(run_dir: Path, resuming: bool) -> dict | None:
    """Refuses a directory that holds another run, unless this run resumes it (`resumes`: from a checkpoint of
    that run's, not of another's, which would overwrite it) and its process is gone. Returns what the resumed
    run's metrics.json said."""
    path = run_dir / "metrics.json"
    if process_rank() != 0 or not path.exists():  # under DDP, the process of rank 0 claims for all
        return None
    held, kept = _read_json(path), any(run_dir.glob("checkpoints/*.ckpt"))  # none with callbacks.model_checkpoint=null
    if status(held) in ("failed", "interrupted") and not held.get("epochs") and not kept:
        return None  # it stopped before it trained (a mistake in its options, Ctrl-C): nothing here to keep
    if not resuming:
        if sweeping() and given_twice(run_dir):
            raise UserError(f"{run_dir.name}: {TWICE}.")
        option, whose = ("hydra.sweep.dir", "the sweep") if sweeping() else ("hydra.run.dir", "this run")
        ended = status(held) in ENDED
        way = (
            "It kept no checkpoint to go on from: give"
            if not kept
            else "Train it more epochs with ckpt_path=last trainer.max_epochs=..., or give"
            if ended
            else "Resume it with ckpt_path=last, or give"
        )
        raise UserError(
            f"{option}: '{run_dir}' already holds a run (its metrics.json{', ' + status(held) if ended else ''}). "
            f"{way} {whose} a directory of its own: {option}=..."
        )
    if status(held) == "running" and held.get("host") == socket.gethostname():
        raise UserError(
            f"ckpt_path: the run in '{run_dir}' is still running (process {held['pid']}). Let it end, or stop "
            "it (Ctrl-C keeps its last epoch), then resume."
        )
    return held


def _read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def process_rank() -> int:
    """This process's rank, as Lightning's rank_zero_only reads it from the launcher's variables (its
    `_get_rank`), without importing Lightning: 0 for a run alone and for DDP's first process."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


_JOBS_STARTED = False  # whether cli() has run a job in this process: errors before are the command line's
_JOBS_FAILED = 0  # the sweep's jobs in this process that failed and let the others go on


def cli(fn, cfg: DictConfig):
    """Runs fn(cfg) for a Hydra shell: a user's mistake is one line on stderr and exit status 2.

    In a sweep, the failed job is recorded (its metrics.json says so) and the others go on. A library's
    warning is one line too, without the path and source line of the code that warned.
    """
    global _JOBS_STARTED, _JOBS_FAILED
    _JOBS_STARTED = True
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    try:
        from_launch_directory(cfg)
        return fn(cfg)
    except Exception as err:
        mistake = user_mistake(err)
        if mistake is not None:
            say_error(mistake)
            if not sweeping():
                sys.exit(2)
        elif not sweeping():
            raise
        else:
            log.exception("This job failed; the sweep goes on.")  # a bug, not a user's mistake: keep the traceback
        _JOBS_FAILED += 1
        return None


def _quiet_disk_full(args) -> None:
    """A full disk stops TensorBoard's writer thread too: the run's own error says so, in one line."""
    if not disk_full(args.exc_value):
        threading.__excepthook__(args)


def shell(main) -> None:
    """Runs a @hydra.main entry point: a command line Hydra cannot compose (a misspelt key or config choice, an
    override that does not parse) ends in one line that names it and the fix, exit status 2, as our own
    checks do, where Hydra prints a few lines, some not the fix, and exits 1. HYDRA_FULL_ERROR=1 keeps Hydra's."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        main()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises what it cannot compose, rather than printing it itself
    threading.excepthook = _quiet_disk_full
    command = f"python {script()}"
    try:
        main()
        if _JOBS_FAILED:  # a sweep (of eval.py, or without train.py's summary, which says so itself)
            say_error(f"{_JOBS_FAILED} of the sweep's jobs failed (above).")
            sys.exit(1)
    except BaseException as err:  # an interrupt, a launcher's error, or a command line Hydra refused
        conf = Path(sys.argv[0]).resolve().parent / "conf"  # the shells' config_path
        mistake = config_mistake(err, command, conf, REFUSED_KEYS) if isinstance(err, HydraException) else None
        frame = traceback.extract_tb(err.__traceback__)[-1].filename
        in_hydra = isinstance(err, Exception) and f"{os.sep}hydra{os.sep}" in frame
        if mistake is None and not _JOBS_STARTED and in_hydra:
            # Hydra's own refusal of the command line (model=null, a sweep its sweeper cannot run, ...)
            nulls = [a for a in sys.argv[1:] if a.endswith("=null") and "." not in a.split("=")[0]]
            if "Config group override must be a string" in str(err) and nulls:  # logger=null: "Got NoneType"
                mistake = f"{' '.join(nulls)}: a config group takes one of its configs, not null"
            elif "does not support sweep type" in str(err):  # optimizer.lr=interval(1e-4,1e-2)
                mistake = f"{first_line(err)}: Hydra's basic sweeper runs lists and range(); optuna searches an "
                mistake += "interval, e.g. hparams_search=iris_optuna"
            else:
                mistake = first_line(err)
            mistake += f" (`{command} --help` shows the config groups and their options)"
        if mistake is not None:
            refuse(mistake)
        if end_stopped_sweep(err):
            sys.exit(1)
        if isinstance(err, KeyboardInterrupt):  # a job says where it stopped; before, Lightning was importing
            if not _JOBS_STARTED:
                interrupted()
            sys.exit(1)
        raise
