"""The end of a sweep: one table of its jobs, best first, as summary.csv, on the console and as summary.png.

Read from what each job left (.hydra/overrides.yaml, metrics.json, its TensorBoard or CSV log), so it
also describes jobs that diverged or failed. The jobs are those the sweep recorded as they started, so a
sweep run into an earlier one's directory describes its own. With several seeds, jobs that differ only in
`seed` or `data.split_seed` are also summarized together, as mean and standard deviation.
"""

import contextlib
import json
import logging
import math
import os
import re
import socket
import struct
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlbasics.errors import first_line, is_number, say_error
from dlbasics.files import write_whole

SEEDS = ("seed", "data.split_seed")  # the draws a result is averaged over: first weights and batch order, the split
METRIC_ORDER = (
    "train/loss",
    *(f"{split}/{m}" for split in ("val", "test") for m in ("loss", "acc", "rmse", "mae", "r2")),
)


# Files of the sweep directory, a name a line, written while the sweep runs and read when it ends. A job's lines
# are written where it runs, which for the joblib launcher is a worker process and for submitit another process
# or node; a short line is appended whole.
SWEPT = ".swept"  # the keys the sweep varies: its jobs' directories are named by them
JOBS = ".jobs"  # the sweep's jobs, each written as it starts (so a job killed later is one of them)
REFUSED = ".refused"  # its jobs that found their directory holding a run, and left it as it was
REFUSAL = "its directory already held a run, left as it was; see its error above"
SUMMARY = ("summary.csv", "summary.png", "summary_seeds.csv")  # what summarize writes
SWEEP_FILES = (*SUMMARY, "multirun.yaml")  # and Hydra's record of the sweep: kept where none of its jobs ran
TWICE = "the same job as another of this sweep (a value given twice): it did not run"


ENDED = ("completed", "diverged")  # a run that trained its epochs and wrote its outputs: resumed, it trains more


def status(metrics: dict) -> str | None:
    """A run's status from its metrics.json; `killed` where it still says `running` though its process on this
    machine is gone (kill -9, out of memory): a run that ends any other way writes how it ended."""
    here = metrics.get("host") == socket.gethostname()
    if metrics.get("status") == "running" and here and not _alive(metrics.get("pid")):
        return "killed"
    return metrics.get("status")


def _alive(pid) -> bool:
    """Whether another process of this machine with this id is running (another user's counts)."""
    if not is_number(pid, int) or pid <= 0 or pid == os.getpid():  # ours: an earlier run of this process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def given_twice(job: Path) -> bool:
    """Whether two jobs of the sweep now running have this directory: a value given twice (its record of jobs)."""
    return _lines(job.parent / JOBS).count(job.name) > 1


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def _stamp(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.is_file() else None


def typed_overrides(overrides) -> list[str]:
    """Overrides as they were typed: `model.width=${model.depth}` is text here, not an interpolation to resolve
    (which reading hydra.overrides.task item by item does: `model.width=${nope}` failed in Hydra's callbacks)."""
    return OmegaConf.to_container(overrides, resolve=False) if OmegaConf.is_config(overrides) else list(overrides)


def _sweeps(config: DictConfig) -> list:
    """The command line's sweeps (`a=1,2`, `range(...)`), as Hydra's parser reads them."""
    overrides = OverridesParser.create().parse_overrides(typed_overrides(config.hydra.overrides.task))
    return [o for o in overrides if o.is_sweep_override()]


def varied_keys(config: DictConfig) -> list[str]:
    """The keys a sweep varies: its command line's sweeps and its sweeper's `params`."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    return list(dict.fromkeys([o.key_or_group for o in _sweeps(config)] + list(params)))


def empty_sweeps(config: DictConfig) -> list[str]:
    """The command line's sweeps of no value (`seed=range(0,0)`): a sweep of no jobs, which Hydra runs silently."""
    return [o.input_line for o in _sweeps(config) if not list(o.sweep_string_iterator())]


def job_dirname(task_overrides, sweeper_params=None, _root_=None) -> str:
    """A sweep job's directory name: the overrides the sweep varies, e.g. `optimizer.lr=0.01,seed=0`, with a `/`
    in a value written `%2F` (a path, `monitor.metric=val/loss`), which would make it a directory in another.

    The varied keys are those SweepSummary.on_multirun_start recorded in the sweep directory: this runs where
    the job runs (a joblib worker, a submitit job), whose command line is not the sweep's. Constant overrides
    stay in .hydra/overrides.yaml, out of the name; without the record, all of them name the job.
    """
    sweep_dir = OmegaConf.select(_root_, "hydra.sweep.dir") if _root_ is not None else None  # None: called directly
    varied = set(_lines(Path(sweep_dir) / SWEPT) if sweep_dir else []) | set(sweeper_params or {})
    task_overrides = typed_overrides(task_overrides)
    items = [o for o in task_overrides if o.split("=", 1)[0].lstrip("+~") in varied]
    return ",".join(sorted(items or task_overrides)).replace("/", "%2F")  # one directory: monitor.metric=val%2Floss


OmegaConf.register_new_resolver("job_dirname", job_dirname, replace=True)


NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def metric_names(names) -> list[str]:
    """The metrics among `names`: the best checkpoint's monitored value (`val/loss_best`), then METRIC_ORDER's."""
    return [n for n in names if n.endswith("_best")] + [m for m in METRIC_ORDER if m in names]


def _value(text: str):
    """An override's value as Hydra wrote it: YAML, but 1e-05 (str() of a small float) is a number too."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None:  # data.batch_size=null: a value of its own, not a number missing
        return "null"
    return float(value) if isinstance(value, str) and NUMBER.fullmatch(value) else value


def _text(column: pd.Series) -> pd.Series:
    """A column's values as text, a job without the key an empty string (pandas' astype(str) keeps it missing)."""
    return column.map(lambda v: "" if isinstance(v, float) and math.isnan(v) else str(v))


def _with_metrics(row: dict, metrics: dict) -> dict:
    row = {**row, "status": status(metrics), "epochs": metrics.get("epochs")}
    row.update({k: metrics[k] for k in metric_names(metrics)})
    row.update(seconds=metrics.get("seconds"), error=metrics.get("error"))
    if row["status"] == "killed":
        row["error"] = "its process ended without a word (kill -9, or out of memory)"
    return row


def collect(sweep_dir: Path, jobs=None, refused=()) -> pd.DataFrame:
    """One row per job: its overrides as columns, then status, epochs, metrics, seconds.

    jobs: the names of the jobs to summarize (by default every job directory), once per job; refused: those of
    them that found their directory holding a run and left it as it was, whose metrics.json is that run's, not
    theirs. Of the jobs of one name (a value given twice) one at most ran: the others are refused.
    """
    if jobs is None:
        jobs = [path.parent.parent.name for path in sweep_dir.glob("*/.hydra/overrides.yaml")]
    jobs, refused, rows = Counter(jobs), Counter(refused), []
    for name in sorted(jobs):
        job = sweep_dir / name
        if not (job / ".hydra" / "overrides.yaml").is_file():  # a directory Hydra did not make
            continue
        row = {"job": name}
        for item in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []:
            key, _, value = item.partition("=")
            row[key.lstrip("+~")] = _value(value)
        ran = min(1, jobs[name] - refused[name])
        if ran:
            metrics_file = job / "metrics.json"
            metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {"status": "failed"}
            rows.append(_with_metrics(row, metrics))
        for _ in range(jobs[name] - ran):  # its metrics.json is the run it found there
            rows.append(_with_metrics(row, {"status": "refused", "error": TWICE if jobs[name] > 1 else REFUSAL}))
    table = pd.DataFrame(rows)
    # numbers even where no job has one (JSON's null, a refused job), and epochs whole: an empty cell where none
    numbers = {k: float for k in (*metric_names(table.columns), "seconds")}
    return table.astype({**numbers, "epochs": "Int64"}) if rows else table


def swept(table: pd.DataFrame) -> list[str]:
    """The override keys whose value differs between jobs."""
    fixed = {"job", "status", "epochs", "seconds", "error", *metric_names(table.columns)}
    return [c for c in table.columns if c not in fixed and _text(table[c]).nunique() > 1]


def by_seed(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds (SEEDS) of each otherwise equal configuration."""
    others = [k for k in keys if k not in SEEDS]
    metrics = metric_names(table.columns)
    grouped = table.groupby([_text(table[k]) for k in others] if others else [0] * len(table), sort=False)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{m} {stat}" for m, stat in out.columns]
    out.insert(0, "seeds", grouped.size())
    out.insert(1, "completed", grouped["status"].apply(lambda s: int((s == "completed").sum())))
    return out.reset_index(names=others) if others else out.reset_index(drop=True)


def _scalars(events: list[Path], tag: str) -> list[float]:
    """A job's values of one scalar, from its TensorBoard event files in the order they were written, as TensorBoard
    shows them: a resumed run's writer opens with a restart at the step it resumed from (purge_from), which drops
    what the earlier files logged from that step on. Read record by record (a length, its CRC, the event, its CRC),
    without checking the CRCs: TensorBoard's own reader computes them in Python, ten times as long (0.4 s for the
    8 jobs of 300 epochs of an iris sweep). A record cut short, by a kill mid-write, ends a file's values."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    values: dict[int, float] = {}  # by step: one value an epoch
    for path in sorted(events):  # by their names: by the time each was begun
        data, at = path.read_bytes(), 0
        while at + 12 <= len(data):
            (length,) = struct.unpack_from("<Q", data, at)
            record, at = data[at + 12 : at + 12 + length], at + 16 + length
            if at > len(data):  # cut short
                break
            try:
                event = Event.FromString(record)
            except DecodeError:  # not an event: the rest of the file is not to be read
                break
            if event.session_log.status == SessionLog.START:
                values = {step: value for step, value in values.items() if step < event.step}
            values.update((event.step, v.simple_value) for v in event.summary.value if v.tag == tag)
    return list(values.values())


def _curves(job: Path, metric: str) -> list[float]:
    """A job's per-epoch values of a metric, from its TensorBoard events or its CSV log."""
    events = list(job.glob("events.out.tfevents.*"))
    if events:
        return _scalars(events, metric)
    if (job / "metrics.csv").is_file():
        return pd.read_csv(job / "metrics.csv")[metric].dropna().tolist()
    return []


def plot(table: pd.DataFrame, keys: list[str], sweep_dir: Path, monitor: str, order: list[str] | None = None):
    """The monitored metric (the best checkpoint's) against each swept number, and the loss curves of every job:
    in `order`, the jobs' names in the order the sweep ran them, that of the values given; else by the values."""
    from dlbasics.figures import plt

    numeric = [k for k in keys if pd.api.types.is_numeric_dtype(table[k]) and k not in SEEDS]
    fig, axes = plt.subplots(1, len(numeric) + 1, figsize=(5 * (len(numeric) + 1), 4), layout="constrained")
    axes = list(axes) if len(numeric) else [axes]
    diverged = table[table["status"] == "diverged"]  # its values are no results
    rest = table.drop(index=diverged.index)
    points = rest.dropna(subset=[monitor]) if monitor in table else rest.assign(**{monitor: math.nan})[:0]
    for ax, key in zip(axes, numeric, strict=False):
        ax.plot(points[key], points[monitor], "o")
        if len(diverged):  # no value to draw: a cross along the top, where it would be off the scale
            ax.plot(diverged[key], [0.95] * len(diverged), "rx", transform=ax.get_xaxis_transform(), label="diverged")
            ax.legend(fontsize="small")
        values = table[key][table[key] > 0]
        if len(values) == len(table) and values.max() / values.min() >= 10:  # learning rates and the like
            ax.set_xscale("log")
        if len(points) and points[monitor].min() > 0 and points[monitor].max() / points[monitor].min() >= 100:
            ax.set_yscale("log")
        ax.set(xlabel=key, ylabel=monitor, title=f"{monitor} against {key}")
        ax.grid(alpha=0.3)
    curves, loss = axes[-1], monitor.split("/", 1)[0] + "/loss"  # train/loss for jobs without a val split
    if order:
        rank = {job: i for i, job in enumerate(dict.fromkeys(order))}
        table = table.sort_values("job", key=lambda jobs: jobs.map(rank), kind="stable")
    else:
        with contextlib.suppress(TypeError):  # in the order of the swept values, where they have one
            table = table.sort_values(keys, kind="stable") if keys else table
    shown = table[keys].map(lambda v: f"{v:.4g}" if isinstance(v, float) else v)  # an Optuna lr: 0.00443, not 17 digits
    labels = shown.apply(_text).radd([f"{k}=" for k in keys]).agg(", ".join, axis=1) if keys else table["job"]
    many = len(table) > 10  # more than matplotlib's 10 colours: a colour map, in the jobs' order
    colours = plt.colormaps["viridis"](np.linspace(0, 0.9, len(table))) if many else [None] * len(table)
    for job, label, job_status, colour in zip(table["job"], labels, table["status"], colours, strict=True):
        values = _curves(sweep_dir / job, loss) if job_status != "refused" else []  # a refused job's are not its own
        if any(map(math.isfinite, values)):  # a job that diverged in its first epoch has no curve to name
            label += " (diverged)" * (job_status == "diverged")
            curves.plot(range(1, len(values) + 1), values, label=label, color=colour)
    split = "Validation" if loss.startswith("val/") else "Training"
    curves.set(xlabel="epoch", ylabel=loss, title=f"{split} loss of each job", yscale="log")
    if len(curves.lines) > 5:  # beside the curves, not over them, in a figure made wider (and taller) for it
        width, height = fig.get_size_inches()
        longest = max(len(line.get_label()) for line in curves.lines)
        fig.set_size_inches(width + 0.7 + 0.065 * longest, max(height, 0.5 + 0.19 * len(curves.lines)))
        curves.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))
    elif curves.lines:
        curves.legend(fontsize="small")
    else:
        curves.set_axis_off()  # say so, rather than draw empty axes
        note = f"no {loss} curves: no job logged any\n(logger=none logs none)"
        curves.text(0.5, 0.5, note, ha="center", va="center", transform=curves.transAxes)
    return fig


def summarize(sweep_dir: Path, monitor: str, mode: str, jobs=None, refused=(), keys=None) -> pd.DataFrame:
    """Writes and prints the summary of the jobs `collect` reads; keys: the swept ones (by default, those whose
    values differ between jobs), each a column."""
    for name in SUMMARY:  # an earlier sweep's, into this directory
        (sweep_dir / name).unlink(missing_ok=True)
    table = collect(sweep_dir, jobs, refused)
    if table.empty:
        return table
    keys = [c for c in table.columns if c in keys] if keys is not None else swept(table)
    training = "train/" + monitor.split("/", 1)[1]
    if monitor not in table and monitor.startswith("val/") and training in table:  # jobs without a val split
        monitor = training
    if f"{monitor}_best" in table:  # the best checkpoint's value: its test metrics are in the row
        monitor = f"{monitor}_best"
    # the losses of other data, of another split of it or of another loss do not compare: each ranked among its own
    apart = [k for k in ("data", "data.split_seed", "loss") if k in keys and table[k].nunique() > 1]
    if monitor in table:
        ascending = [True] * len(apart) + [mode == "min"]
        table = table.sort_values([*apart, monitor], ascending=ascending, na_position="last", kind="stable")
    columns = ["job", *keys, "status", "epochs", *metric_names(table.columns), "seconds", "error"]
    table = table[[c for c in columns if c in table]]
    write_whole(sweep_dir / "summary.csv", lambda tmp: table.to_csv(tmp, index=False))
    shown = table.drop(columns=[c for c in ("job", "error") if c in table])
    shown["epochs"] = shown["epochs"].astype(object).fillna("")  # Int64's <NA> takes no na_rep: blank, as the rest
    for key in keys:  # 1e-05, where pandas would round a column of them to 0.000010 (1e-07 to 0.000000); 6 digits
        shown[key] = _text(shown[key].map(lambda v: float(f"{v:.6g}") if isinstance(v, float) else v))
    count = f"{len(table)} job{'s' * (len(table) != 1)}"
    within = f" within each {' and '.join(apart)}" if apart else ""
    print(f"\nSweep of {count}, best first by {monitor} ({mode}){within}:\n{shown.to_string(index=False, na_rep='')}")
    seeds = [k for k in SEEDS if k in keys and table[k].nunique() > 1]
    if seeds and any(m in table for m in METRIC_ORDER):  # some to average
        averaged = by_seed(table, keys)
        write_whole(sweep_dir / "summary_seeds.csv", lambda tmp: averaged.to_csv(tmp, index=False))
        print(f"\nMean and standard deviation over {' and '.join(seeds)}:\n{averaged.to_string(index=False)}")
    written = [sweep_dir / "summary.csv"]
    if (~table["status"].isin(["failed", "refused"])).any():  # some job trained: its curve, or its result, to draw
        try:
            from dlbasics.figures import save

            fig, path = plot(table, keys, sweep_dir, monitor, jobs), sweep_dir / "summary.png"
            write_whole(path, lambda tmp: save(fig, tmp))
            written.append(path)
        except Exception as err:  # a picture must never cost the table
            print(f"summary.png not drawn: {err}", file=sys.stderr)
    print(f"Summary: {', '.join(map(str, written))}")
    return table


def _uncoloured_optuna(config: DictConfig) -> None:
    """Optuna's own log lines carry colour codes, even into a pipe or a file: its colorlog formatter is not told
    where it writes. Told, it leaves them out there (and keeps them on a terminal)."""
    if "optuna" not in str(OmegaConf.select(config, "hydra.sweeper._target_")):
        return
    import optuna  # noqa: F401  (imported by the sweeper next; its log handler is made on import)

    for handler in logging.getLogger("optuna").handlers:
        if isinstance(handler, logging.StreamHandler) and hasattr(handler.formatter, "stream"):
            handler.formatter.stream = handler.stream


_UNDER_WAY: tuple["SweepSummary", DictConfig] | None = None  # the sweep this process started, not ended yet


def end_stopped_sweep(err: BaseException) -> bool:
    """Summarizes a sweep that stopped before its end, which Hydra then does not reach: interrupted (Ctrl-C,
    SIGTERM), or its launcher stopped by an error (a worker process killed ends joblib's pool, and every job in
    it; submitit's launcher finds a job without its result). The summary counts each job as it ended
    (`interrupted`, `killed`). False where no sweep was under way in this process."""
    if _UNDER_WAY is None:
        return False
    callback, config = _UNDER_WAY
    if isinstance(err, (KeyboardInterrupt, SystemExit)):
        sweep_dir = sweep_directory(config)
        # a job that has written its metrics.json in this sweep: one starting up wrote none, one refused kept its own
        callback.wrote = [
            j for j in _lines(sweep_dir / JOBS) if (_stamp(sweep_dir / j / "metrics.json") or 0) > callback.began
        ]
        so_far = "Its jobs so far:" if callback.wrote else "No job had begun; an earlier summary there is kept."
        print(f"The sweep was interrupted. {so_far}", file=sys.stderr, flush=True)
    else:
        say_error(f"the sweep's launcher stopped: {type(err).__name__}: {first_line(err)}")
        time.sleep(1.0)  # the pool's other workers, ended by it, a moment to go: their jobs are then `killed`
    callback.on_multirun_end(config)
    return True


def sweep_directory(config: DictConfig) -> Path:
    """hydra.sweep.dir, also from a job that runs in its own directory (hydra.job.chdir=true)."""
    return Path(OmegaConf.select(config, "hydra.runtime.cwd", default=""), config.hydra.sweep.dir)


class SweepSummary(Callback):
    """Hydra callback: summarizes a multirun's own jobs when it ends; exits non-zero if any failed or was refused."""

    def __init__(self) -> None:
        self._found: dict[str, int | None] = {}  # each job's metrics.json as it found it (its stamp)
        self._records: dict[str, dict[str, bytes]] = {}  # the .hydra/ files of the runs the sweep directory held
        self._earlier: dict[str, bytes] = {}  # and its summary, kept where none of this sweep's jobs runs
        self.began = 0  # when the sweep began (ns), and the jobs that wrote their metrics.json since, if it stopped
        self.wrote: list[str] | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        global _UNDER_WAY
        _UNDER_WAY = self, config
        _uncoloured_optuna(config)
        sweep_dir = sweep_directory(config)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / REFUSED).unlink(missing_ok=True)  # an earlier sweep's
        (sweep_dir / JOBS).write_text("")
        (sweep_dir / SWEPT).write_text("".join(f"{key}\n" for key in varied_keys(config)))
        # Hydra writes a job's .hydra/ record before any of our code runs: a job refused its directory puts back
        # the record of the run it found there, read now (a launcher's worker gets this callback as it is now)
        self._records = {
            run.name: {f.name: f.read_bytes() for f in (run / ".hydra").glob("*.yaml")}
            for run in sweep_dir.iterdir()
            if (run / "metrics.json").is_file()
        }
        self._earlier = {n: (sweep_dir / n).read_bytes() for n in SWEEP_FILES if (sweep_dir / n).is_file()}
        self.began, self.wrote = time.time_ns(), None

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:  # a run alone: Hydra calls this for it too
            return
        job = Path(config.hydra.runtime.output_dir)
        self._found[str(job)] = _stamp(job / "metrics.json")
        _append(sweep_directory(config) / JOBS, job.name)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        # a failed JobReturn raises its exception when its value is read: the sweeper reports it itself
        job = Path(config.hydra.runtime.output_dir)
        found = self._found.pop(str(job), None)  # None for a run alone, which on_job_start left out
        if found is not None and _stamp(job / "metrics.json") == found:  # it left the run there as it was
            for name, content in self._records.get(job.name, {}).items():
                (job / ".hydra" / name).write_bytes(content)
            if job_return.status == JobStatus.COMPLETED and job_return.return_value is None:  # refused, not kept
                _append(sweep_directory(config) / REFUSED, job.name)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        global _UNDER_WAY
        _UNDER_WAY = None
        sweep_dir = sweep_directory(config)
        # without the record (a sweep directory of old, or one this callback did not start): every job directory,
        # and the keys whose values differ
        recorded = (sweep_dir / JOBS).is_file() and (sweep_dir / SWEPT).is_file()
        jobs, refused, keys = (_lines(sweep_dir / name) for name in (JOBS, REFUSED, SWEPT))
        for name in (JOBS, REFUSED, SWEPT):
            (sweep_dir / name).unlink(missing_ok=True)
        if not recorded:
            jobs = keys = None
        elif not jobs or self.wrote == []:  # interrupted before a job began: an earlier sweep's summary is kept
            for name, content in self._earlier.items():
                (sweep_dir / name).write_bytes(content)
            return
        elif sorted(jobs) == sorted(refused):  # the same sweep run again: its results are as they were
            for name, content in self._earlier.items():
                (sweep_dir / name).write_bytes(content)
            say_error(
                f"none of the sweep's {len(jobs)} jobs ran: each job's directory in '{sweep_dir}' already held a run, "
                "left as it was, and so is the sweep's summary. Give another hydra.sweep.dir, or add ckpt_path=last "
                "to resume the jobs that had not ended."
            )
            sys.exit(1)
        try:
            table = summarize(sweep_dir, config.monitor.metric, config.monitor.mode, jobs, refused, keys)
        except Exception:  # a bug of ours, which Hydra would make a warning, and the sweep would exit 0
            traceback.print_exc()
            say_error("the sweep's summary failed (above); each job's directory holds its results")
            sys.exit(1)
        failed = table[table["status"].isin(["failed", "killed", "refused"])] if "status" in table else table.iloc[:0]
        for _, job in failed.iterrows():  # as the table says it ended: failed, killed or refused
            print(f"{job['status']}: {job['job']}: {job.get('error')}", file=sys.stderr)
        if len(failed):
            sys.exit(1)
