"""Test quality of the default runs against scikit-learn, on the same splits.

    python benchmarks/quality.py [--seeds 5] [--data iris,wine,...] [override ...]

For each of data=iris, data=boston, boston2 (data=boston with two targets, PRICE and LSTAT: an output
neuron each; r2 is the mean of theirs), cities (a generated CSV of 1,000 rows whose price depends on two
numbers and on two features of categories, a city and a colour, which the run one-hot encodes) and three of
scikit-learn's real datasets written as CSV files (wine, breast_cancer, diabetes: data=csv) with
model=mlp and the defaults, trains with data.split_seed=0..N-1 and fits scikit-learn's MLP (100 hidden units)
and gradient boosting (a model per target) on exactly the same training rows and inputs (scaled the same
way), then prints mean and standard deviation of the test metric.
"""

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor

from dlbasics.run import train

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TASKS = {  # data and its overrides: the metric, scikit-learn's MLP and boosting, the metric as scikit-learn's
    "iris": (["data=iris"], "test/acc", MLPClassifier, GradientBoostingClassifier, lambda y, p: float(np.mean(y == p))),
    "boston": (
        ["data=boston"],
        "test/rmse",
        MLPRegressor,
        GradientBoostingRegressor,
        lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))),
    ),
    "boston2": (
        ["data=boston", "data.target=[PRICE,LSTAT]"],
        "test/r2",
        MLPRegressor,
        lambda random_state: MultiOutputRegressor(GradientBoostingRegressor(random_state=random_state)),
        r2_score,
    ),
}


def write_cities(path: Path, rows: int = 1000) -> None:
    """Prices from two numbers, a city and a colour (text), with noise: categories a model must encode to use."""
    rng = np.random.default_rng(0)
    city, colour = rng.choice(["Berlin", "Madrid", "Paris", "Rome"], rows), rng.choice(["green", "red", "blue"], rows)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    shift = pd.Series(city).map({"Berlin": 2.0, "Madrid": -1.0, "Paris": 3.0, "Rome": 0.0}).to_numpy()
    shift = shift + pd.Series(colour).map({"green": 0.5, "red": -0.5, "blue": 0.0}).to_numpy()
    price = 10 + 2 * x1 - x2 + 0.5 * x1 * x2 + shift + 0.5 * rng.normal(size=rows)
    pd.DataFrame({"x1": x1, "x2": x2, "city": city, "colour": colour, "price": price}).to_csv(path, index=False)


def write_real(directory: Path) -> None:
    """Three of scikit-learn's real datasets as the CSV files a user would bring: wine (3 cultivars, as numbers),
    breast cancer (its diagnosis as text, malignant or benign) and diabetes (a disease's progression, in its units)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    wine, cancer, diabetes = load_wine(as_frame=True), load_breast_cancer(as_frame=True), load_diabetes(scaled=False)
    wine.data.assign(cultivar=wine.target).to_csv(directory / "wine.csv", index=False)
    diagnosis = cancer.target.map(dict(enumerate(cancer.target_names)))
    cancer.data.assign(diagnosis=diagnosis).to_csv(directory / "breast_cancer.csv", index=False)
    pd.DataFrame(diabetes.data, columns=diabetes.feature_names).assign(progression=diabetes.target).to_csv(
        directory / "diabetes.csv", index=False
    )
    for name, target, like in [("wine", "cultivar", "iris"), ("breast_cancer", "diagnosis", "iris"),
                               ("diabetes", "progression", "boston")]:  # fmt: skip
        TASKS[name] = (["data=csv", f"data.path={directory / name}.csv", f"data.target={target}"], *TASKS[like][1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", help="the rows to measure, e.g. --data iris,wine (default: all)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    logging.getLogger("dlbasics").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # its MLP stops at max_iter: as it is compared
    rows, files = [], tempfile.TemporaryDirectory()
    write_cities(Path(files.name, "cities.csv"))
    TASKS["cities"] = (
        ["data=csv", f"data.path={Path(files.name, 'cities.csv')}", "data.target=price"],
        *TASKS["boston"][1:],
    )
    write_real(Path(files.name))
    chosen = args.data.split(",") if args.data else list(TASKS)
    unknown = [d for d in chosen if d not in TASKS]
    if unknown:
        parser.error(f"--data: no row {unknown[0]!r}; the rows are {', '.join(TASKS)}")
    for data, (options, metric, mlp, boost, score) in ((d, TASKS[d]) for d in chosen):
        ours, theirs, boosted, seconds = [], [], [], []
        for seed in range(args.seeds):
            with (
                tempfile.TemporaryDirectory() as tmp,
                initialize_config_dir(config_dir=CONF, version_base="1.3"),
            ):
                cfg = compose(
                    "train",
                    [
                        *options,
                        f"data.split_seed={seed}",
                        f"run_dir={tmp}",
                        "logger=none",
                        *args.overrides,
                    ],
                )
                start = time.perf_counter()
                ours.append(train(cfg)[metric])
                seconds.append(time.perf_counter() - start)
                from hydra.utils import instantiate

                dm = instantiate(cfg.data)
                (x, y), (xt, yt) = dm.splits["train"], dm.splits["test"]
                x, y, xt, yt = x.numpy(), y.numpy().squeeze(), xt.numpy(), yt.numpy().squeeze()
                theirs.append(
                    score(
                        yt,
                        mlp(hidden_layer_sizes=(100,), max_iter=2000, random_state=seed).fit(x, y).predict(xt),
                    )
                )
                boosted.append(score(yt, boost(random_state=seed).fit(x, y).predict(xt)))
        rows.append((data, metric, ours, theirs, boosted, seconds))

    print(f"{'data':13} {'metric':9} {'dlbasics mlp':>16} {'sklearn MLP':>16} {'sklearn GBoost':>16} {'train s':>8}")
    for data, metric, ours, theirs, boosted, seconds in rows:
        cells = " ".join(f"{np.mean(v):>8.4f} ± {np.std(v, ddof=1):.3f}" for v in (ours, theirs, boosted))
        print(f"{data:13} {metric:9} {cells} {np.mean(seconds):>8.2f}")
    print(f"(mean ± std over data.split_seed=0..{args.seeds - 1}; same train/test rows and scaling for all)")


if __name__ == "__main__":
    main()
