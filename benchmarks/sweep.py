"""What a sweep costs beyond its training, and what parallel jobs buy.

    python benchmarks/sweep.py [--epochs 300]

Runs, as a user would from the shell, side by side:
  - one run: `python train.py data=iris trainer.max_epochs=E logger=none`
  - the 8-job learning-rate sweep of the same run, Hydra's basic launcher (one process, jobs in turn)
  - the same sweep with `hydra/launcher=joblib` (jobs in parallel processes)
  - the same sweep with `hydra/launcher=stacked` (the 8 jobs trained as one stacked model, one process)
and prints wall times, the training time the jobs report (metrics.json `seconds`), and the overhead
per job: (sweep wall - one run's wall - training of the 7 other jobs) / 7, i.e. what each extra job
costs beyond its own training.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LRS = "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1,3e-1"


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def job_seconds(sweep_dir: Path) -> list[float]:
    return [json.loads(p.read_text())["seconds"] for p in sorted(sweep_dir.glob("*/metrics.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args()
    common = ["data=iris", f"trainer.max_epochs={args.epochs}", "logger=none"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = timed([*common, f"hydra.run.dir={tmp / 'one'}"])
        one_train = json.loads((tmp / "one" / "metrics.json").read_text())["seconds"]
        rows = [("one run", one, one_train, None)]
        for name, launcher in (
            ("8-job sweep, basic launcher", []),
            ("8-job sweep, joblib (2 processes)", ["hydra/launcher=joblib"]),
            ("8-job sweep, stacked (one model)", ["hydra/launcher=stacked"]),
        ):
            sweep_dir = tmp / name.split(",")[1].strip().split()[0]
            wall = timed(["-m", *common, f"optimizer.lr={LRS}", *launcher, f"hydra.sweep.dir={sweep_dir}"])
            seconds = job_seconds(sweep_dir)
            assert len(seconds) == 8, f"{name}: {len(seconds)} jobs finished"
            overhead = (wall - one - (sum(seconds) - min(seconds))) / 7 if not launcher else None
            training = seconds[0] if "stacked" in name else sum(seconds)  # a stack's jobs share one training
            rows.append((name, wall, training, overhead))
    print(f"{'what':36} {'wall s':>8} {'training s':>11} {'overhead/job s':>15}")
    for name, wall, training, overhead in rows:
        extra = f"{overhead:15.2f}" if overhead is not None else f"{'':>15}"
        print(f"{name:36} {wall:8.2f} {training:11.2f} {extra}")
    basic, joblib, stacked = rows[1][1], rows[2][1], rows[3][1]
    print(f"joblib speed-up over the basic launcher: {basic / joblib:.2f}x on {len(os.sched_getaffinity(0))} cores")
    print(f"stacked speed-up over the basic launcher: {basic / stacked:.2f}x")
    print(f"the 8-job sweep takes {basic / one:.2f}x (basic), {stacked / one:.2f}x (stacked) the wall time of one run")


if __name__ == "__main__":
    main()
