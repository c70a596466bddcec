"""Tabular data: read a CSV, check it, split it, scale it, and tell the model its sizes.

The data dictates the model's input and output layers (course, 2.2): `meta` carries the task, the
feature and class names and the scaling statistics. It is made of plain values, so that a checkpoint
holding it can rebuild the data preparation on its own.
"""

import math
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from dlbasics.errors import UserError

TASKS = ("regression", "binary", "multiclass")
MAX_CLASSES = 10  # an integer target with at most this many distinct values is taken as class labels


def read_csv(path: str | Path, index_col: int | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data.path: no file '{path}'. Give the path of a CSV file: data.path=path/to/file.csv")
    try:
        frame = pd.read_csv(path, index_col=index_col)
    except pd.errors.EmptyDataError:
        raise UserError(f"data.path: '{path}' is empty. A CSV with a header row and data rows is needed.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise UserError(f"data.path: '{path}' could not be read as CSV ({first}).") from None
    # Columns without a header are a saved index (pandas' to_csv()), never a feature.
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ")]
    return frame.drop(columns=unnamed) if unnamed else frame


def _columns(frame: pd.DataFrame) -> str:
    return ", ".join(map(str, frame.columns))


def meta_value(value):
    """A plain Python value (numpy's scalars are not: a checkpoint must hold plain values)."""
    return value.item() if hasattr(value, "item") else value


def infer_task(y: pd.Series) -> str:
    """Few distinct integer or string values are class labels; anything else is a quantity."""
    values = y.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        labels = True
    else:
        labels = bool(np.all(np.mod(values, 1) == 0)) and values.nunique() <= MAX_CLASSES
    if not labels:
        return "regression"
    return "binary" if values.nunique() <= 2 else "multiclass"


def _check_finite(frame: pd.DataFrame, what: str) -> np.ndarray:
    """The columns as float32, once every value is known to be a number float32 can hold."""
    with np.errstate(over="ignore"):  # a number beyond float32's range becomes inf, reported below
        values = frame.to_numpy(np.float32)
    bad = ~np.isfinite(values)
    for j in np.flatnonzero(bad.any(axis=0)):
        rows = np.flatnonzero(bad[:, j])
        overflow = np.isfinite(frame.iloc[:, j].to_numpy(np.float64)[rows]).all()
        problem = "values beyond float32's range (±3.4e38)" if overflow else "missing or infinite values"
        raise UserError(
            f"{what}: column '{frame.columns[j]}' has {len(rows)} row{'s' * (len(rows) > 1)} with {problem} "
            f"(first at data row {rows[0] + 1}). Drop, fill or rescale them in the CSV."
        )
    return values


def feature_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The feature columns as a float32 matrix, once they are known to exist, be numeric and finite."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise UserError(f"data.features: no column {missing}. The columns are: {_columns(frame)}.")
    for f in features:
        if not pd.api.types.is_numeric_dtype(frame[f]) or pd.api.types.is_bool_dtype(frame[f]):
            example = frame[f].dropna().iloc[0] if frame[f].notna().any() else "empty"
            raise UserError(
                f"data.features: column '{f}' is not numeric (for example {example!r}). "
                "Encode it as numbers, or leave it out: data.features=[...]."
            )
    return _check_finite(frame[features], "data.features")


def tabulate(frame: pd.DataFrame, target: str, features=None, task: str | None = None):
    """Checks a table and turns it into arrays (x, y) and the metadata the model is built from."""
    if frame.shape[0] == 0:
        raise UserError(f"the CSV has a header ({_columns(frame)}) but no data rows.")
    if target not in frame.columns:
        raise UserError(f"data.target: no column '{target}'. The columns are: {_columns(frame)}.")
    if features is None:
        features = [c for c in frame.columns if c != target and pd.api.types.is_numeric_dtype(frame[c])]
        if not features:
            raise UserError(f"no numeric feature column besides '{target}'. The columns are: {_columns(frame)}.")
    features = [str(f) for f in features]
    if target in features:
        raise UserError(f"data.features: '{target}' is the target; leave it out of the features.")
    x = feature_matrix(frame, features)
    y = frame[target]
    if y.isna().any():
        raise UserError(
            f"data.target: column '{target}' has {int(y.isna().sum())} rows with missing values "
            f"(first at data row {int(np.flatnonzero(y.isna())[0]) + 1}). Drop or fill them in the CSV."
        )
    inferred = infer_task(y)
    task = task or inferred
    if task not in TASKS:
        raise UserError(f"data.task must be one of {', '.join(TASKS)} (or null to infer it); got '{task}'.")
    meta = {
        "task": task,
        "target": target,
        "features": features,
        "n_features": len(features),
        "classes": None,
    }
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise UserError(f"data.task=regression needs a numeric target; '{target}' holds labels like {y.iloc[0]!r}.")
        meta["n_outputs"] = 1
        y = _check_finite(frame[[target]], "data.target")
        largest = np.abs(y).max()
        if largest > 1e18:  # its squared errors would overflow float32
            raise UserError(
                f"data.target: '{target}' reaches {largest:.3g}; squared errors that large overflow float32. "
                "Rescale the target (for example to thousands) in the CSV."
            )
        return x, y, meta

    classes, codes = np.unique(y.to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise UserError(
            f"data.target: '{target}' has a single class ({meta_value(classes[0])!r}); classification needs two "
            "or more. Check the target column, or set data.task=regression."
        )
    if task == "binary" and len(classes) != 2:
        raise UserError(f"data.task=binary needs 2 classes; '{target}' has {len(classes)}. Use data.task=multiclass.")
    meta["classes"] = [meta_value(c) for c in classes]
    meta["n_outputs"] = 1 if task == "binary" else len(classes)
    y = codes.astype(np.float32)[:, None] if task == "binary" else codes.astype(np.int64)
    return x, y, meta


def split_rows(n: int, labels, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Shuffles the rows and cuts them into train, val and test; stratified when labels are given."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise UserError(f"data.{name} must be in [0, 1); got {value}.")
    if val_fraction + test_fraction >= 1:
        raise UserError(
            f"data.val_fraction + data.test_fraction must leave rows to train on; got {val_fraction} + {test_fraction}."
        )
    order = np.random.default_rng(seed).permutation(n)
    if labels is not None:
        # Rank each row within its class, then interleave: every cut holds each class in proportion.
        rank = np.empty(n)
        for c in np.unique(labels):
            rows = order[labels[order] == c]
            rank[rows] = (np.arange(len(rows)) + 0.5) / len(rows)
        order = order[np.argsort(rank[order], kind="stable")]
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    for name, fraction, count in (("test", test_fraction, n_test), ("val", val_fraction, n_val)):
        if fraction > 0 and count == 0:
            raise UserError(
                f"data.{name}_fraction={fraction} of {n} rows leaves the {name} split empty. "
                f"Bring more rows, raise data.{name}_fraction, or set it to 0."
            )
    if n - n_test - n_val < 1:
        raise UserError(f"{n} rows are too few for these splits; bring more rows or lower the fractions.")
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}


def scale(x: np.ndarray, meta: dict) -> np.ndarray:
    """Standardizes features with the training split's statistics kept in meta (no-op when absent)."""
    if meta.get("mean") is None:
        return x
    x = x - np.asarray(meta["mean"], np.float32)
    x /= np.asarray(meta["std"], np.float32)  # in place: no second copy of a large table
    return x


class EpochShuffle:
    """A new permutation of the rows each epoch, drawn from (seed, epoch): resumable and reproducible.

    Lightning calls `set_epoch` on a loader's `sampler` at the start of each epoch. Under DDP each
    process takes every world-th row of the same permutation; `even` pads the permutation with its
    first rows (as torch's DistributedSampler does) so that every process takes as many steps.
    """

    def __init__(self, n: int, seed: int | list[int], rank: int = 0, world: int = 1, even: bool = False):
        self.n, self.seed, self.rank, self.world, self.epoch = n, seed, rank, world, 0
        self.even = even and world > 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n / self.world) if self.even else len(range(self.rank, self.n, self.world))

    def indices(self) -> torch.Tensor:
        """The epoch's rows in order, shape (n,); (members, n) for a list of seeds, one per stacked model."""
        orders = [
            torch.randperm(self.n, generator=torch.Generator().manual_seed(seed * 100_003 + self.epoch))
            for seed in (self.seed if isinstance(self.seed, list) else [self.seed])
        ]
        order = torch.stack(orders) if isinstance(self.seed, list) else orders[0]
        if self.even:
            order = order[..., torch.arange(len(self) * self.world) % self.n]
        return order[..., self.rank :: self.world]


class Batches:
    """Minibatches sliced from tensors already in memory: no per-row collation as in a DataLoader.

    A batch_size of None (or at least the number of rows) yields the whole split each step, which
    is plain gradient descent.
    """

    batch_sampler = None  # read by Lightning, as on a DataLoader

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int | None, sampler: EpochShuffle | None):
        self.x, self.y, self.sampler = x, y, sampler
        self.batch_size = batch_size or len(x)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler else len(self.x)
        return max(1, math.ceil(n / self.batch_size))

    def __iter__(self):
        if self.sampler is None:  # in order; a view of the whole split when it fits in one batch
            for start in range(0, len(self.x), self.batch_size):
                yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
        else:
            order = self.sampler.indices()
            for start in range(0, order.shape[-1], self.batch_size):
                rows = order[..., start : start + self.batch_size]
                yield self.x[rows], self.y[rows]

    def to(self, device) -> "Batches":
        """Moves the split to the device once, not a batch at a time."""
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self


class Epochs:
    """The training loader: one item per epoch, the pair (training minibatches, validation batches or None).

    The Learner's training_step takes a whole epoch: Lightning's loop costs about a millisecond for each
    item it hands over, more than a small model's step of gradient descent.
    """

    batch_sampler = None  # read by Lightning, as on a DataLoader

    def __init__(self, train: Batches, val: Batches | None):
        self.train, self.val, self.sampler = train, val, train.sampler

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.train, self.val


class TabularData(L.LightningDataModule):
    """A CSV as train/val/test tensors, and the `meta` a model is built from.

    `stats` (mean and std of each feature) comes from a checkpoint when testing it again; otherwise
    it is computed on the training split only.
    """

    def __init__(
        self,
        path: str,
        target: str,
        features=None,
        task: str | None = None,
        index_col: int | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        standardize: bool = True,
        batch_size: int | None = None,
        shuffle_seed: int | list[int] = 0,  # a list: one batch order per stacked model
        stats: dict | None = None,
        name: str | None = None,
    ):
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise UserError(
                f"data.batch_size must be a positive integer, or null for the whole split; got {batch_size}."
            )
        self.path, self.batch_size = str(path), batch_size
        self.shuffle_seed = shuffle_seed if isinstance(shuffle_seed, int) else [int(s) for s in shuffle_seed]
        x, y, self.meta = tabulate(read_csv(path, index_col), target, features, task)
        # What it takes to read and split the same rows again, from a checkpoint alone.
        self.meta["source"] = dict(
            path=self.path,
            index_col=index_col,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            batch_size=batch_size,
        )
        labels = None if self.meta["task"] == "regression" else y.reshape(len(y), -1)[:, 0]
        self.rows = split_rows(len(x), labels, val_fraction, test_fraction, split_seed)
        if stats is None:
            stats = {"mean": None, "std": None}
            if standardize:
                train = x[self.rows["train"]]
                std = train.std(axis=0, dtype=np.float64)  # accumulated in float64, no float64 copy
                stats = {
                    "mean": train.mean(axis=0, dtype=np.float64).tolist(),
                    "std": np.where(std > 0, std, 1.0).tolist(),
                }
            if self.meta["task"] == "regression":
                stats["y_mean"] = float(y[self.rows["train"]].mean())
        self.meta.update(stats)
        x = scale(x, self.meta)
        self.splits = {k: (torch.from_numpy(x[r]), torch.from_numpy(y[r])) for k, r in self.rows.items()}

    @classmethod
    def from_meta(cls, meta: dict, **overrides) -> "TabularData":
        """The data a checkpoint was trained on, prepared with the checkpoint's own scaling."""
        stats = {k: meta[k] for k in ("mean", "std", "y_mean") if k in meta}
        source = {**meta["source"], **overrides}
        return cls(**source, target=meta["target"], features=meta["features"], task=meta["task"], stats=stats)

    def has(self, split: str) -> bool:
        return len(self.rows[split]) > 0

    def _batches(self, split: str, shuffle: bool = False) -> Batches:
        x, y = self.splits[split]
        sampler = None
        if shuffle and self.batch_size is not None and self.batch_size < len(x):
            sampler = EpochShuffle(len(x), self.shuffle_seed)
        if self.trainer is not None and self.trainer.world_size > 1:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            sampler = EpochShuffle(len(x), self.shuffle_seed, rank, world, even=shuffle)  # training: even steps
        return Batches(x, y, self.batch_size, sampler)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # a pair of tensors, or of Batches (an epoch's): nothing to search
        return tuple(None if b is None else b.to(device) for b in batch)

    def train_dataloader(self):
        return Epochs(self._batches("train", shuffle=True), self._batches("val") if self.has("val") else None)

    def val_dataloader(self):
        return self._batches("val")

    def test_dataloader(self):
        return self._batches("test")
