"""The end of a sweep: one table of its jobs, best first, as summary.csv, on the console and as summary.png.

Read from what each job left (.hydra/overrides.yaml, metrics.json, its TensorBoard or CSV log), so it
also describes jobs that diverged or failed. With several seeds, jobs that differ only in `seed` are
also summarized together, as mean and standard deviation.
"""

import json
import logging
import re
import sys
from pathlib import Path

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dlbasics.run import status

logging.getLogger("tensorboard").setLevel(logging.WARNING)  # its event reader narrates every file at INFO
METRIC_ORDER = (
    "train/loss",
    "val/loss",
    "val/acc",
    "val/rmse",
    "test/loss",
    "test/acc",
    "test/rmse",
    "test/mae",
    "test/r2",
)


def job_dirname(task_overrides, sweeper_params=None) -> str:
    """A sweep job's directory name: the overrides the sweep varies, e.g. `optimizer.lr=0.01,seed=0`.

    The varied keys are the command line's sweeps (`a=1,2`, `range(...)`) and a sweeper's `params`;
    constant overrides stay in .hydra/overrides.yaml, out of the name.
    """
    args = [a for a in sys.argv[1:] if "=" in a and not a.startswith("-")]
    try:
        varied = {o.key_or_group for o in OverridesParser.create().parse_overrides(args) if o.is_sweep_override()}
    except Exception:  # not our command line (tests, other launchers): name the job by all its overrides
        varied = set()
    varied |= set(sweeper_params or {})
    items = [o for o in task_overrides if o.split("=", 1)[0].lstrip("+~") in varied]
    return ",".join(sorted(items or task_overrides))


OmegaConf.register_new_resolver("job_dirname", job_dirname, replace=True)


NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _value(text: str):
    """An override's value as Hydra wrote it: YAML, but 1e-05 (str() of a small float) is a number too."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return float(value) if isinstance(value, str) and NUMBER.fullmatch(value) else value


def collect(sweep_dir: Path) -> pd.DataFrame:
    """One row per job directory: its overrides as columns, then status, epochs, metrics, seconds."""
    rows = []
    for overrides in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        job = overrides.parent.parent
        row = {"job": job.name}
        for item in yaml.safe_load(overrides.read_text()) or []:
            key, _, value = item.partition("=")
            row[key.lstrip("+~")] = _value(value)
        metrics_file = job / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {"status": "failed"}
        row.update(status=status(metrics), epochs=metrics.get("epochs"))
        row.update({k: metrics[k] for k in METRIC_ORDER if k in metrics})
        row.update(seconds=metrics.get("seconds"), error=metrics.get("error"))
        if row["status"] == "killed":
            row["error"] = "its process ended without a word (kill -9, or out of memory)"
        rows.append(row)
    return pd.DataFrame(rows)


def swept(table: pd.DataFrame) -> list[str]:
    """The override keys whose value differs between jobs."""
    fixed = {"job", "status", "epochs", "seconds", "error", *METRIC_ORDER}
    return [c for c in table.columns if c not in fixed and table[c].astype(str).nunique() > 1]


def by_seed(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each otherwise equal configuration."""
    others = [k for k in keys if k != "seed"]
    metrics = [m for m in METRIC_ORDER if m in table]
    grouped = table.groupby([table[k].astype(str) for k in others] if others else [0] * len(table), sort=False)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{m} {stat}" for m, stat in out.columns]
    out.insert(0, "seeds", grouped.size())
    out.insert(1, "completed", grouped["status"].apply(lambda s: int((s == "completed").sum())))
    return out.reset_index(names=others) if others else out.reset_index(drop=True)


def _curves(job: Path, metric: str = "val/loss") -> list[float]:
    """A job's per-epoch values of a metric, from its TensorBoard events or its CSV log."""
    if list(job.glob("events.out.tfevents.*")):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(job), size_guidance={"scalars": 0})
        events.Reload()
        return [e.value for e in events.Scalars(metric)] if metric in events.Tags()["scalars"] else []
    if (job / "metrics.csv").is_file():
        return pd.read_csv(job / "metrics.csv")[metric].dropna().tolist()
    return []


def plot(table: pd.DataFrame, keys: list[str], sweep_dir: Path, monitor: str):
    """The final monitored metric against each swept number, and the loss curves of every job, as a figure."""
    from dlbasics.figures import plt

    numeric = [k for k in keys if pd.api.types.is_numeric_dtype(table[k]) and k != "seed"]
    fig, axes = plt.subplots(1, len(numeric) + 1, figsize=(5 * (len(numeric) + 1), 4), layout="constrained")
    axes = list(axes) if len(numeric) else [axes]
    for ax, key in zip(axes, numeric, strict=False):
        points = table.dropna(subset=[monitor]) if monitor in table else table.iloc[:0]
        ax.plot(points[key], points[monitor], "o")
        values = table[key][table[key] > 0]
        if len(values) == len(table) and values.max() / values.min() >= 10:  # learning rates and the like
            ax.set_xscale("log")
        if len(points) and points[monitor].min() > 0 and points[monitor].max() / points[monitor].min() >= 100:
            ax.set_yscale("log")
        ax.set(xlabel=key, ylabel=f"final {monitor}", title=f"{monitor} against {key}")
        ax.grid(alpha=0.3)
    curves, loss = axes[-1], monitor.split("/", 1)[0] + "/loss"  # train/loss for jobs without a val split
    labels = table[keys].astype(str).radd([f"{k}=" for k in keys]).agg(", ".join, axis=1) if keys else table["job"]
    for job, label in zip(table["job"], labels, strict=True):
        values = _curves(sweep_dir / job, loss)
        if values:
            curves.plot(range(1, len(values) + 1), values, label=label)
    split = "Validation" if loss.startswith("val/") else "Training"
    curves.set(xlabel="epoch", ylabel=loss, title=f"{split} loss of each job", yscale="log")
    if curves.lines:
        curves.legend(fontsize="small")
    return fig


def summarize(sweep_dir: Path, monitor: str, mode: str) -> pd.DataFrame:
    table = collect(sweep_dir)
    if table.empty:
        return table
    keys = swept(table)
    if monitor not in table and monitor.startswith("val/"):  # jobs without a val split monitor training
        monitor = "train/" + monitor.split("/", 1)[1]
    if monitor in table:
        table = table.sort_values(monitor, ascending=mode == "min", na_position="last", kind="stable")
    columns = ["job", *keys, "status", "epochs", *[m for m in METRIC_ORDER if m in table], "seconds", "error"]
    table = table[[c for c in columns if c in table]]
    table.to_csv(sweep_dir / "summary.csv", index=False)
    shown = table.drop(columns=[c for c in ("job", "error") if c in table])
    print(f"\nSweep of {len(table)} jobs, best first by {monitor} ({mode}):\n{shown.to_string(index=False)}")
    if "seed" in keys and table["seed"].nunique() > 1:
        seeds = by_seed(table, keys)
        seeds.to_csv(sweep_dir / "summary_seeds.csv", index=False)
        print(f"\nMean and standard deviation over seeds:\n{seeds.to_string(index=False)}")
    written = [sweep_dir / "summary.csv"]
    if (table["status"] != "failed").any():  # some job trained: its curve, or its result, to draw
        try:
            from dlbasics.figures import save

            written.append(save(plot(table, keys, sweep_dir, monitor), sweep_dir / "summary.png"))
        except Exception as err:  # a picture must never cost the table
            print(f"summary.png not drawn: {err}", file=sys.stderr)
    print(f"Summary: {', '.join(map(str, written))}")
    return table


# The sweep's jobs that returned nothing (refused before writing anything), a name a line. Written where each
# job ends, which for the joblib launcher is a worker process and for submitit a node; read when the sweep ends.
UNFINISHED = ".unfinished"


class SweepSummary(Callback):
    """Hydra callback: summarizes a multirun when it ends; exits non-zero if any job failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        (Path(config.hydra.sweep.dir) / UNFINISHED).unlink(missing_ok=True)  # an earlier sweep's

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        # a failed JobReturn raises its exception when its value is read: the sweeper reports it itself
        if job_return.status == JobStatus.COMPLETED and job_return.return_value is None:
            with open(Path(config.hydra.sweep.dir) / UNFINISHED, "a") as f:  # a short line is appended whole
                f.write(Path(config.hydra.runtime.output_dir).name + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        marker = sweep_dir / UNFINISHED
        unfinished = set(marker.read_text().splitlines()) if marker.is_file() else set()
        marker.unlink(missing_ok=True)
        table = summarize(sweep_dir, config.monitor.metric, config.monitor.mode)
        failed = table[table["status"].isin(["failed", "killed"])] if "status" in table else table.iloc[:0]
        for _, job in failed.iterrows():
            print(f"failed: {job['job']}: {job.get('error')}", file=sys.stderr)
        for name in sorted(unfinished - set(failed.get("job", []))):
            print(f"failed: {name}: see its error above (what its directory held is left as it was)", file=sys.stderr)
        if len(failed) or unfinished:
            sys.exit(1)
