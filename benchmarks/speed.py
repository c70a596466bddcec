"""Speed of dlbasics against a plain PyTorch loop and plain pandas, measured side by side in one run.

    python benchmarks/speed.py [--quick] [--repeats N] [--rows 1,2,...] [--device cpu|cuda]

Each row times the project (dlbasics.run.train on a Hydra-composed config, default callbacks and
checkpointing included: what a user gets) and a plain loop in this file doing the same work: same
data tensors (taken from the project's data module), same model and initial weights, same batch
size and shuffling, Adam lr 1e-3, one validation pass per epoch, same number of epochs.

    1  iris, full batch: marginal ms per epoch, (t(500 epochs) - t(50 epochs)) / 450
    2  iris, batch size 16: marginal ms per epoch, (t(200) - t(20)) / 180
    3  200,000 x 20 regression CSV, batch 1024, model mlp: training rows per second, 3 epochs minus 1
    4  start-up: `python train.py` for one epoch, against `python -c "import lightning"`
    5  an 8-job learning-rate sweep on iris, 300 epochs each: whole wall time, hydra/launcher=stacked
       (and Hydra's basic launcher) against one default run, `python train.py`
    6  loading a 1,000,000 x 20 CSV: TabularData against pandas.read_csv, time and peak memory

Rows 1 and 2 also time Lightning's own epoch loop around an empty LightningModule (one item an epoch,
no callbacks, no logger), the floor under any Lightning project's epoch; its ratio is in the notes.
Marginal costs leave start-up (imports, data loading, the final test) out. Each timing is the best
of --repeats runs. The ratio column is always dlbasics / the other side: above 1 means dlbasics
takes more time or memory, except for rows per second (row 3) where below 1 means it is slower.
--quick shrinks every size, for a smoke test of this script only. --device cuda trains both sides of rows 1
to 5 on the GPU (dlbasics with trainer.accelerator=gpu, the plain loop's model and tensors moved there); by
default both train on the CPU, whatever the machine has.

The notes under the table say how far apart the repeats were ("slowest repeat / best"): far above 1
means something else was using the CPUs; rerun then (--rows selects the rows to rerun). Both sides
use one torch thread, the project's default (`threads: 1` in conf/train.yaml).
"""

import argparse
import importlib.util
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import lightning
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from dlbasics.run import train

torch.set_num_threads(1)  # what train(cfg) sets from conf/train.yaml, for the plain loop too
ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
LR = 1e-3  # conf/optimizer/adam.yaml; the plain loop uses the same
DEVICE = "cpu"  # where both sides train: --device
ACCELERATOR = {"cpu": "cpu", "cuda": "gpu"}  # Lightning's name for it
# The fastest pandas CSV engine installed: pyarrow's multithreaded reader if present, else C.
ENGINE = "pyarrow" if importlib.util.find_spec("pyarrow") else "c"

SIZES = {
    "full": dict(
        iris_full=(500, 50),
        iris_b16=(200, 20),
        csv_rows=200_000,
        csv_epochs=(3, 1),
        sweep_epochs=300,
        load_rows=1_000_000,
    ),
    "quick": dict(
        iris_full=(100, 20), iris_b16=(100, 20), csv_rows=20_000, csv_epochs=(3, 1), sweep_epochs=10, load_rows=100_000
    ),
}


def say(message: str) -> None:
    """Progress on stderr, so that stdout holds the table alone."""
    print(message, file=sys.stderr, flush=True)


# --- The project's side: dlbasics.run.train on a composed config ----------------------------------


def config(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train", [*overrides, f"trainer.accelerator={ACCELERATOR[DEVICE]}"])


def train_command(*args: str) -> list[str]:
    """`python train.py ARGS` on --device (trainer.accelerator=auto would take a GPU where there is one)."""
    return ["train.py", *args, f"trainer.accelerator={ACCELERATOR[DEVICE]}"]


def project_run(overrides: list[str], epochs: int) -> tuple[float, float]:
    """Seconds for one train(cfg) (fit with its callbacks, then test), and the final val/loss."""
    with tempfile.TemporaryDirectory() as run_dir:  # fresh: no checkpoint of an earlier run is reused
        cfg = config([*overrides, f"trainer.max_epochs={epochs}", f"run_dir={run_dir}", "logger=none"])
        start = time.perf_counter()
        metrics = train(cfg)
        seconds = time.perf_counter() - start
    if metrics["epochs"] != epochs:
        raise RuntimeError(f"dlbasics ran {metrics['epochs']} epochs, not {epochs} ({metrics['status']})")
    return seconds, metrics["val/loss"]


# --- The plain side: the same work in a hand-written PyTorch loop ---------------------------------


def plain_fit(data, seed: int, epochs: int, width: int) -> float:
    """Trains as dlbasics does and returns the last epoch's validation loss.

    Same initial weights (seeded as train() seeds, nothing drawn between seed and model), same
    per-epoch shuffle (EpochShuffle's generator seed), loss summed for the epoch's mean as the
    Learner does, validation under inference mode with the task's metrics.
    """
    meta = data.meta
    if meta["task"] == "binary":
        raise NotImplementedError("the plain loop covers multiclass and regression only")
    regression = meta["task"] == "regression"
    (x, y), (xv, yv) = (tuple(t.to(DEVICE) for t in data.splits[s]) for s in ("train", "val"))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(meta["n_features"], width), nn.ReLU(), nn.Linear(width, meta["n_outputs"]))
    # A standardized target (data.standardize): the output stands for (y - mean) / std, taken back to the CSV's
    # units, and the loss is descended over its variance; an unstandardized one's output bias starts at the mean.
    mean, std = meta.get("y_mean", 0.0), meta.get("y_std")
    nn.init.constant_(model[-1].bias, 0.0 if std else mean)
    model.to(DEVICE)

    def predict(o):
        return o.mul(std).add_(mean) if std else o

    def per_row(o, t):
        return (predict(o) - t).square().sum(-1) if regression else F.cross_entropy(o, t, reduction="none")

    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)  # as conf/optimizer/adam.yaml
    n, batch = len(x), data.batch_size or len(x)
    shuffle = batch < n  # the data module shuffles only when there is more than one batch
    history = []
    for epoch in range(epochs):
        model.train()
        order = None
        if shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).to(DEVICE)
        train_sum = torch.zeros((), device=DEVICE)
        for start in range(0, n, batch):
            if order is None:
                xb, yb = x[start : start + batch], y[start : start + batch]
            else:
                rows = order[start : start + batch]
                xb, yb = x.index_select(0, rows), y.index_select(0, rows)  # as dlbasics gathers, the faster way
            losses = per_row(model(xb), yb)
            train_sum += losses.detach().sum()
            optimizer.zero_grad(set_to_none=True)
            (losses.mean() / std**2 if std else losses.mean()).backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            # the loss, and the absolute error or the correct rows
            val_sum, val_metric = torch.zeros((), device=DEVICE), torch.zeros((), device=DEVICE)
            for start in range(0, len(xv), batch):
                xb, yb = xv[start : start + batch], yv[start : start + batch]
                o = model(xb)
                val_sum += per_row(o, yb).sum()
                val_metric += (predict(o) - yb).abs().sum() if regression else (o.argmax(-1) == yb).sum()
        # The epoch's numbers read once, as dlbasics logs them and checkpointing reads val/loss (on a GPU: the
        # epoch's work is done when they are read, so that the wall time holds all of it).
        history.append((float(train_sum / n), float(val_sum / len(xv)), float(val_metric / len(xv))))
    return history[-1][1]


def plain_runner(overrides: list[str]):
    """The data module loaded once (as train() would load it), and a function timing plain_fit."""
    cfg = config([*overrides, "run_dir=unused", "logger=none"])
    data = instantiate(cfg.data, shuffle_seed=cfg.seed)
    width = cfg.model.width

    def run(epochs: int) -> tuple[float, float]:
        start = time.perf_counter()
        val_loss = plain_fit(data, cfg.seed, epochs, width)
        return time.perf_counter() - start, val_loss

    return run, data


# --- Marginal cost per epoch, both sides interleaved ----------------------------------------------


def marginal(runs: dict, long: int, short: int, repeats: int) -> dict:
    """Per side: best-of-repeats seconds at `long` and `short` epochs, their difference per epoch,
    and the final val loss of the long run (the two sides should agree: they do the same work)."""
    times = {side: {long: [], short: []} for side in runs}
    losses = {}
    for _ in range(repeats):
        for side, run in runs.items():  # interleaved, so drift of the machine hits both sides alike
            for epochs in (short, long):
                seconds, loss = run(epochs)
                times[side][epochs].append(seconds)
                if epochs == long:
                    losses[side] = loss
    out = {}
    for side in runs:
        per_epoch = (min(times[side][long]) - min(times[side][short])) / (long - short)
        slowest = max(t / min(times[side][e]) for e in (short, long) for t in times[side][e])
        out[side] = dict(
            per_epoch=per_epoch,
            loss=losses[side],
            short=min(times[side][short]),
            long=min(times[side][long]),
            spread=slowest,  # slowest repeat / best: near 1 when the machine was quiet
        )
    return out


def checks(m: dict) -> str:
    """The final val/loss of both sides (equal when they do the same work) and the timing noise."""
    d, p = m["dlbasics"], m["plain"]
    same = math.isclose(d["loss"], p["loss"], rel_tol=1e-3)
    return (
        f"final val/loss dlbasics {d['loss']:.5f}, plain {p['loss']:.5f}"
        + ("" if same else " (DIFFER: the plain loop no longer does what dlbasics does)")
        + f"; slowest repeat / best: dlbasics {d['spread']:.2f}, plain {p['spread']:.2f}"
    )


class EmptyEpochs(lightning.LightningModule):
    """Lightning's own cost of an epoch: one item handed over, a training step that does nothing."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.w = nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return [torch.zeros(1)]


def empty_lightning(epochs: int) -> tuple[float, float]:
    """Seconds for Trainer.fit of EmptyEpochs: no callbacks, logger, checkpoints, progress bar or validation."""
    trainer = lightning.Trainer(
        max_epochs=epochs, accelerator=ACCELERATOR[DEVICE], devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(EmptyEpochs())
    return time.perf_counter() - start, math.nan


def iris_row(number: int, what: str, batch: str, epochs: tuple[int, int], repeats: int) -> dict:
    overrides = ["data=iris", f"data.batch_size={batch}"]
    plain, _ = plain_runner(overrides)
    long, short = epochs
    sides = {"dlbasics": lambda e: project_run(overrides, e), "plain": plain, "empty": empty_lightning}
    m = marginal(sides, long, short, repeats)
    d, p = m["dlbasics"], m["plain"]
    ours, theirs, empty = d["per_epoch"] * 1e3, p["per_epoch"] * 1e3, m["empty"]["per_epoch"] * 1e3
    note = (
        f"row {number}: {long} vs {short} epochs take dlbasics {d['long']:.2f} s / {d['short']:.2f} s, plain "
        f"{p['long']:.2f} s / {p['short']:.2f} s; {checks(m)}; Lightning's own loop with an empty "
        f"LightningModule: {empty:.3f} ms/epoch, so the plain loop plus Lightning alone would be "
        f"{(theirs + empty) / theirs:.2f}x the plain loop"
    )
    return dict(
        row=number,
        what=what,
        ours=cell(ours, ".2f", "ms/epoch"),
        theirs=cell(theirs, ".2f", "ms/epoch"),
        ratio=ratio(ours, theirs),
        notes=[note],
    )


def csv_row(number: int, path: Path, rows: int, epochs: tuple[int, int], repeats: int) -> dict:
    overrides = ["data=csv", f"data.path={path}", "data.target=y", "data.batch_size=1024", "model=mlp"]
    plain, data = plain_runner(overrides)
    n_train = len(data.splits["train"][0])
    long, short = epochs
    m = marginal({"dlbasics": lambda e: project_run(overrides, e), "plain": plain}, long, short, repeats)
    ours, theirs = (n_train / m[side]["per_epoch"] if m[side]["per_epoch"] > 0 else math.nan for side in m)
    note = (
        f"row {number}: {n_train:,} training rows per epoch (+ a validation pass), {long} vs {short} epochs; "
        + checks(m)
    )
    return dict(
        row=number,
        what=f"{rows:,}x20 CSV, batch 1024, mlp: train rows/s",
        ours=cell(ours, ",.0f", "rows/s"),
        theirs=cell(theirs, ",.0f", "rows/s"),
        ratio=ratio(ours, theirs),
        notes=[note],
    )


def cell(value: float, spec: str, unit: str) -> str:
    """A measured value, or n/a when noise made a marginal cost zero or negative."""
    return f"{value:{spec}} {unit}" if value > 0 else "n/a (noise)"


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs > 0 and ours > 0 else "n/a (noise: rerun)"


# --- Start-up: whole commands in fresh processes ---------------------------------------------------


def command_seconds(commands: dict, repeats: int) -> dict:
    """Best wall time of each command over `repeats` rounds, each run in a fresh process and directory.

    The commands take turns within a round, so that a slow spell of the machine hits them alike.
    """
    best = dict.fromkeys(commands, math.inf)
    for _ in range(repeats):
        for name, make_args in commands.items():
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                done = subprocess.run([sys.executable, *make_args(tmp)], cwd=ROOT, capture_output=True, text=True)
                seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise RuntimeError(f"{make_args('TMP')} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            best[name] = min(best[name], seconds)
    return best


def startup_row(number: int, repeats: int) -> dict:
    best = command_seconds(
        {
            "dlbasics": lambda tmp: train_command("logger=none", "trainer.max_epochs=1", f"hydra.run.dir={tmp}"),
            "lightning": lambda tmp: ["-c", "import lightning"],
            "help": lambda tmp: ["train.py", "--help"],  # which imports no Lightning
            "hydra": lambda tmp: ["-c", "import hydra"],
        },
        repeats,
    )
    ours, theirs = best["dlbasics"], best["lightning"]
    note = f"row {number}: best of {repeats}, taking turns; python train.py takes {ours - theirs:+.2f} s more"
    note += f"; python train.py --help {best['help']:.2f} s, against python -c 'import hydra' {best['hydra']:.2f} s"
    return dict(
        row=number,
        what="python train.py (iris, 1 epoch) vs import lightning",
        ours=f"{ours:.2f} s",
        theirs=f"{theirs:.2f} s",
        ratio=f"{ours / theirs:.2f} ({ours - theirs:+.2f} s)",
        notes=[note],
    )


# --- Row 5: a learning-rate sweep, whole commands ---------------------------------------------------

LRS = "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1,3e-1"


def sweep_row(number: int, epochs: int, repeats: int) -> list[dict]:
    """`python train.py -m optimizer.lr=<8 values>` (iris), whole wall time, against one default run.

    With hydra/launcher=stacked the eight jobs train as one stacked model (the target: 1.5x one run);
    Hydra's basic launcher, a run per job in turn, is timed once beside it.
    """
    sweep = train_command("-m", "data=iris", f"optimizer.lr={LRS}", f"trainer.max_epochs={epochs}")
    best = command_seconds(
        {
            "stacked": lambda tmp: [*sweep, "hydra/launcher=stacked", f"hydra.sweep.dir={tmp}"],
            "one": lambda tmp: train_command(f"hydra.run.dir={tmp}"),
        },
        repeats,
    )
    basic = command_seconds({"basic": lambda tmp: [*sweep, f"hydra.sweep.dir={tmp}"]}, 1)["basic"]
    one = best["one"]
    what = f"8-job lr sweep, iris, {epochs} epochs each"
    note = (
        f"row {number}: whole commands, best of {repeats} taking turns (basic launcher: once); one default run is "
        f"`python train.py` (iris, 200 epochs); each sweep ends with its summary table and figure"
    )
    return [
        dict(row=f"{number}a", what=f"{what}, stacked vs one run", ours=f"{best['stacked']:.2f} s",
             theirs=f"{one:.2f} s", ratio=ratio(best["stacked"], one), notes=[note]),
        dict(row=f"{number}b", what=f"{what}, basic launcher vs one run", ours=f"{basic:.2f} s",
             theirs=f"{one:.2f} s", ratio=ratio(basic, one)),
    ]  # fmt: skip


# --- Loading a large CSV: time and peak memory, each side in its own fresh process ----------------

LOADERS = {
    # name: (imports, load statement); the baseline process runs the imports alone.
    "dlbasics": ("import dlbasics.data", "dlbasics.data.TabularData(path=PATH, target='y', batch_size=1024)"),
    "pandas": (
        "import pandas" + ("; import pyarrow" if ENGINE == "pyarrow" else ""),
        f"pandas.read_csv(PATH, engine={ENGINE!r})",
    ),
}
PROBE = """
import json, resource, sys, time
PATH = sys.argv[1]
{imports}
start = time.perf_counter()
{load}
seconds = time.perf_counter() - start
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({{"seconds": seconds, "peak_mb": peak / 1024, "hwm_mb": hwm / 1024}}))
"""


def probe(path: Path, imports: str, load: str) -> dict:
    """Runs PROBE in a fresh interpreter and returns its load time and peak RSS in MB.

    Linux carries ru_maxrss across exec: a child exec'd straight from this process (torch and data
    already loaded) would report this process's peak. A shell in between forks the interpreter
    from a small process instead, so that its ru_maxrss is its own (VmHWM cross-checks it).
    """
    code = PROBE.format(imports=imports, load=load)
    command = ["sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", code, str(path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loading {path} failed: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if abs(result["peak_mb"] - result["hwm_mb"]) > 0.1 * result["hwm_mb"]:
        say(f"warning: ru_maxrss {result['peak_mb']:.0f} MB and VmHWM {result['hwm_mb']:.0f} MB disagree")
    return result


def load_rows(number: int, path: Path, rows: int, repeats: int) -> list[dict]:
    data_mb = rows * 21 * 4 / 2**20  # 20 features and the target as float32
    result = {}
    for side, (imports, load) in LOADERS.items():
        runs = [probe(path, imports, load) for _ in range(repeats)]
        base = probe(path, imports, "pass")["peak_mb"]
        peak = min(r["peak_mb"] for r in runs)
        result[side] = dict(seconds=min(r["seconds"] for r in runs), peak=peak, base=base, over=(peak - base) / data_mb)
    ours, theirs = result["dlbasics"], result["pandas"]
    notes = [
        f"row {number}: data as float32 {data_mb:.0f} MB; interpreter baselines (imports only): "
        f"dlbasics {ours['base']:.0f} MB, pandas {theirs['base']:.0f} MB; expected peak (baseline + data): "
        f"dlbasics {ours['base'] + data_mb:.0f} MB, pandas {theirs['base'] + data_mb:.0f} MB; pandas engine={ENGINE}",
    ]
    what = f"{rows:,}x20 CSV"
    measures = [
        ("a", "load time", "seconds", "{:.2f} s"),
        ("b", "peak RSS", "peak", "{:.0f} MB"),
        ("c", "(peak - baseline) / float32 data", "over", "{:.2f}x"),
    ]
    return [
        dict(
            row=f"{number}{suffix}",
            what=f"{what}: {label}",
            ours=fmt.format(ours[key]),
            theirs=fmt.format(theirs[key]),
            ratio=ratio(ours[key], theirs[key]),
            notes=notes if suffix == "a" else [],
        )
        for suffix, label, key, fmt in measures
    ]


# --- Data and the table ---------------------------------------------------------------------------


def write_regression_csv(path: Path, rows: int, seed: int = 0) -> None:
    """20 standard-normal features and y = x @ w + noise, fixed seed."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 20)).astype(np.float32)
    y = x @ rng.normal(size=20).astype(np.float32) + 0.5 * rng.standard_normal(rows).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(20)]).assign(y=y)
    frame.to_csv(path, index=False, float_format="%.6f")


def machine(load_at_start: float) -> str:
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    gpu = f", trained on {torch.cuda.get_device_name()}" if DEVICE == "cuda" else ""
    return (
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {cpus} CPUs ({usable} usable)"
        f"{gpu}, "
        f"torch threads {torch.get_num_threads()}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"lightning {lightning.__version__}, pandas {pd.__version__}, numpy {np.__version__}; "
        f"1-min load average before the run {load_at_start:.2f} (other work on the machine makes timings noisy)"
    )


def print_table(results: list[dict], mode: str, load_at_start: float) -> None:
    header = dict(row="row", what="what", ours="dlbasics", theirs="plain/pandas", ratio="ratio")
    lines = [header, *results]
    widths = {k: max(len(str(r[k])) for r in lines) for k in header}
    print(f"\ndlbasics speed ({mode} sizes, rows 1 to 5 trained on {DEVICE}); ratio = dlbasics / other side")
    for i, r in enumerate(lines):
        print("  ".join(str(r[k]).rjust(widths[k]) if k != "what" else str(r[k]).ljust(widths[k]) for k in header))
        if i == 0:
            print("  ".join("-" * widths[k] for k in header))
    print()
    for r in results:
        for note in r.get("notes", []):
            print(note)
    print(machine(load_at_start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="best of N for each timing (default 3, --quick 1)")
    parser.add_argument("--rows", default="1,2,3,4,5,6", help="the rows to measure, e.g. --rows 1,2")
    parser.add_argument("--device", choices=ACCELERATOR, default="cpu", help="where rows 1 to 5 train (default cpu)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this machine's torch sees no GPU")
    mode = "quick" if args.quick else "full"
    size, repeats = SIZES[mode], args.repeats or (1 if args.quick else 3)
    wanted = {r.strip() for r in args.rows.split(",")}
    logging.getLogger("dlbasics").setLevel(logging.WARNING)  # no model summary or run lines per run
    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.5:
        say(f"warning: load average {load_at_start:.2f}: something else is running; timings will be noisy")

    with tempfile.TemporaryDirectory() as tmp:
        # One generated table for rows 3 and 6; the training CSV is its first rows.
        big, small = Path(tmp, "load.csv"), Path(tmp, "train.csv")
        if wanted & {"3", "6"}:
            say(f"writing a {size['load_rows']:,}-row CSV ...")
            write_regression_csv(big, size["load_rows"])
            pd.read_csv(big, nrows=size["csv_rows"]).to_csv(small, index=False, float_format="%.6f")

        # Warm-up, not timed: lazy imports and first-call costs of both sides.
        say("warming up ...")
        project_run(["data=iris", "data.batch_size=16"], 2)
        plain_runner(["data=iris", "data.batch_size=16"])[0](2)

        rows = {
            "1": lambda: [iris_row(1, "iris full batch: marginal epoch", "null", size["iris_full"], repeats)],
            "2": lambda: [iris_row(2, "iris batch 16: marginal epoch", "16", size["iris_b16"], repeats)],
            "3": lambda: [csv_row(3, small, size["csv_rows"], size["csv_epochs"], repeats)],
            "4": lambda: [startup_row(4, repeats)],
            "5": lambda: sweep_row(5, size["sweep_epochs"], repeats),
            "6": lambda: load_rows(6, big, size["load_rows"], repeats),
        }
        results, failed = [], False
        for number, measure in rows.items():
            if number not in wanted:
                continue
            say(f"row {number} ...")
            start = time.perf_counter()
            try:
                results += measure()
            except Exception as err:  # one broken row does not lose the others
                failed = True
                traceback.print_exc()
                results.append(
                    dict(row=number, what="(failed)", ours="error", theirs="error", ratio=type(err).__name__)
                )
            say(f"  {time.perf_counter() - start:.0f} s")
    print_table(results, mode, load_at_start)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
