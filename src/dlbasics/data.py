"""Tabular data: read a CSV, check it, split it, scale it, and tell the model its sizes.

The data dictates the model's input and output layers (course, 2.2): `meta` carries the task, the
feature and class names and the scaling statistics. It is made of plain values, so that a checkpoint
holding it can rebuild the data preparation on its own.
"""

import difflib
import hashlib
import io
import logging
import math
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import chain
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from dlbasics.errors import UserError, first_line, is_number

log = logging.getLogger("dlbasics")
PROJECT = Path(__file__).resolve().parents[2]  # where data/ is, for a checkout installed with pip install -e

TASKS = ("regression", "binary", "multiclass")
MAX_CLASSES = 10  # an integer target with at most this many distinct values is taken as class labels
MAX_CATEGORIES = 20  # a feature of text with at most this many distinct values is a category, a 0/1 input each
# the texts pandas reads as True and False; and as a missing value, besides an empty cell (its na_values, the commonest)
BOOLEANS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}
MISSING = "an empty cell, or a text read as missing: NA, N/A, null, None, NaN, ..."
HEAD_BYTES = 1 << 16  # the first piece of a CSV, read alone: its columns' types decide the features
THREADS = min(4, os.cpu_count() or 1)  # more would hold more pieces in memory at once for little gain
# Each further piece is parsed in a thread of its own; the pieces being parsed hold about 24 MB of text in
# all: larger pieces load faster, and take more memory (docs/speed.md, row 6).
PIECE_BYTES = (24 << 20) // THREADS


def _quiet_dtypes() -> None:
    """pandas' DtypeWarning, for a column typed otherwise in some rows ('Specify dtype option on import or set
    low_memory=False'), is no user's to act on: the run names the value. Set for each read: the pieces are parsed
    in threads, which a warnings context would not cover, and a test's warnings context undoes one set on import."""
    warnings.filterwarnings("ignore", category=pd.errors.DtypeWarning, module=__name__)


def projects() -> list[Path]:
    """Where the course's data/ may be: beside the script run (python ~/dlbasics/train.py), or the package's."""
    return [Path(sys.argv[0]).resolve().parent, PROJECT] if sys.argv and sys.argv[0] else [PROJECT]


def read_csv(
    path: str | Path, index_col: int | str | None = None, option: str = "data.path", whole: bool = False
) -> pd.DataFrame:
    """The CSV at `path` (given as `option`, which the messages name), without its saved index columns unless
    `whole`."""
    _quiet_dtypes()
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option}: '{path}' is a directory. Give the path of a CSV file: {option}=path/to/file.csv")
    if not path.is_file():
        where = "" if path.is_absolute() else f" in {Path.cwd()}"  # relative: to where the command was started
        project = next((p for p in projects() if not path.is_absolute() and (p / path).is_file()), None)
        if project is not None:
            raise UserError(
                f"{option}: no file '{path}'{where}; the project's is {project / path}. Run from the project's "
                f"directory (cd {project}), or give {option}={project / path}"
            )
        raise UserError(f"{option}: no file '{path}'{where}. Give the path of a CSV file: {option}=path/to/file.csv")
    check_header(path, option)
    try:
        frame = pd.read_csv(path, index_col=index_col)
    except pd.errors.EmptyDataError:
        raise UserError(f"{option}: '{path}' is empty. A CSV with a header row and data rows is needed.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, IndexError) as err:
        if index_col is not None:
            _check_index_col(path, index_col)
        fix = ": save it as UTF-8 text" if isinstance(err, UnicodeDecodeError) else ""
        raise UserError(f"{option}: '{path}' could not be read as CSV ({first_line(err)}){fix}.") from None
    if index_col is None and not frame.index.equals(pd.RangeIndex(len(frame))):  # pandas took a field as the index
        if other := _other_separator(frame):  # 'a;b' as the header's one name, and decimal commas: '1,5;2,3'
            raise UserError(f"{option}: the fields of '{path}' {other}.")
        raise UserError(
            f"{option}: the data rows of '{path}' have one field more than its header (a comma at the end of each "
            "row, or a comma as the decimal point?): name every column in the header, or take the extra field out "
            "(decimal points are dots in a CSV)."
        )
    return frame if whole else _data_columns(frame)


def header(path: str | Path) -> list[str]:
    """The column names of a CSV file; none for a file that is not one."""
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except ValueError:  # pandas' parser errors and decoding errors are ValueErrors
        return []


def columns_of(path: str | Path, index_col=None) -> str:
    """A CSV's columns for a message, as a missing column lists them (without a saved index), or '' for a file
    that is not one."""
    columns = header(path)
    return _columns(_data_columns(pd.DataFrame(columns=columns), index_col)) if columns else ""


def check_header(path: str | Path, option: str = "data.path") -> None:
    """A header that names a column twice: pandas would rename the second (y.1), and a copy of the target, after
    a join, would be a feature. The header is read as written, by pandas, which decompresses a .gz or .bz2 file."""
    try:
        names = pd.read_csv(path, nrows=1, header=None, dtype=str, na_filter=False).iloc[0].tolist()
    except (OSError, ValueError, IndexError):  # pandas' parser and decoding errors are ValueErrors
        return  # the file itself is the problem, which reading it says
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        named = ", ".join(map(repr, twice))
        raise UserError(f"{option}: the CSV's header names {named} twice: give each column a name of its own.")


def _check_index_col(path: Path, index_col) -> None:
    """Raises a UserError naming data.index_col when it is not a column of the CSV's header."""
    columns = header(path)
    if not columns:
        return  # the file itself is the problem
    number = is_number(index_col, int)
    if index_col not in columns and not (number and -len(columns) <= index_col < len(columns)):
        raise UserError(
            f"data.index_col={index_col!r} is not a column of '{path}': give a column number from 0 to "
            f"{len(columns) - 1}, a column name ({', '.join(map(str, columns))}), or null."
        )


def _data_columns(frame: pd.DataFrame, index_col: int | str | None = None) -> pd.DataFrame:
    """The frame without its index column and without columns that have no header: those are a saved
    index (pandas' to_csv()), never a feature."""
    if index_col is not None:  # a column's name, or its number
        frame = frame.drop(columns=index_col if isinstance(index_col, str) else frame.columns[index_col])
    named = [not str(c).startswith("Unnamed: ") for c in frame.columns]
    saved = named.index(True) if True in named else len(named)  # pandas' to_csv() writes its index first
    if not all(named[saved:]):
        column = frame.columns[saved + named[saved:].index(False)]
        raise UserError(
            f"data.path: column {frame.columns.get_loc(column) + 1} of the CSV's header has no name: name it "
            "(only leading columns without a name are taken as a saved index)."
        )
    return frame.iloc[:, saved:] if saved else frame


def no_column(option: str, names: list[str], frame: pd.DataFrame) -> UserError:
    """Names not among the frame's columns, each with the nearest column if one is near (Sport: sport; not AGE for
    target, 0.67 alike)."""
    columns = {str(c).lower(): str(c) for c in frame.columns}
    near = [columns[m] for n in names for m in difflib.get_close_matches(n.lower(), columns, 1, cutoff=0.7)]
    guess = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
    given = ", ".join(map(repr, names))
    return UserError(f"{option}: no column{'s' * (len(names) > 1)} {given}.{guess} The columns are: {_columns(frame)}.")


def _columns(frame: pd.DataFrame) -> str:
    """The frame's columns, for a message; and what is wrong when one column holds a whole row's names."""
    names = ", ".join(map(str, frame.columns))
    spaced = [str(c) for c in frame.columns if str(c) != str(c).strip()]
    if spaced:
        return f"{names}. Some names have spaces around them ({spaced[0]!r}): take them out of the CSV's header"
    numbers = pd.to_numeric(pd.Series(frame.columns, dtype=str), errors="coerce").notna()
    if len(frame.columns) > 1 and numbers.sum() > len(frame.columns) / 2:
        return f"{names}. Its first row looks like data: the CSV needs a header row that names its columns"
    other = _other_separator(frame)
    return f"{names}. Its fields {other}" if other else names


def _other_separator(frame: pd.DataFrame) -> str:
    """What is wrong when a header's one name holds the whole row's, separated by another character."""
    if len(frame.columns) == 1:
        for sep in (";", "\t", "|"):
            if sep in str(frame.columns[0]):
                return f"look separated by {sep!r}, not commas: save it as comma-separated CSV"
    return ""


def _plain_numbers(values: pd.Series) -> pd.Series:
    """Which of a text column's values are numbers, or True and False (pandas reads them as text beside blanks)."""
    return pd.to_numeric(values, errors="coerce").notna() | values.isin(BOOLEANS.keys())


def numbers_as_text(column: pd.Series) -> bool:
    """Whether a column pandas read as text holds numbers, at least half of its values: as they are, or once
    thousands separators, currency and percent signs are taken out ('1,025,140', '$12', '5%'). The others are
    typos or placeholders ('?', '-'), or blanks beside True and False."""
    if pd.api.types.is_numeric_dtype(column):
        return False
    counts = column.dropna().value_counts()  # each distinct value checked once, weighed by its rows: a column of
    if counts.empty:  # four cities in a million rows took 1.8 s, checked row by row
        return False
    values = counts.index.astype(str).to_series()
    unseparated = pd.to_numeric(values.str.replace(r"[,$€£%\s]", "", regex=True), errors="coerce").notna()
    numbers = (unseparated | values.isin(BOOLEANS.keys())).to_numpy()  # a plain number is one unseparated too
    return counts.to_numpy()[numbers].sum() >= 0.5 * counts.sum()


def _booleans(column: pd.Series) -> pd.Series:
    """A column of text holding only true and false, and 1 and 0, as the booleans it holds: pandas reads True and
    False alone as booleans, 1 and 0 alone as numbers, and the two mixed as text. Any other column as it is."""
    if pd.api.types.is_numeric_dtype(column) or column.isna().any():  # missing values: refused as such, by row
        return column
    distinct = pd.Series(column.unique(), dtype=str)  # each value once: a million labels are not parsed again
    truth = distinct.map(BOOLEANS).fillna(pd.to_numeric(distinct, errors="coerce"))
    if not truth.isin([0, 1]).all():
        return column
    return column.astype(str).map(dict(zip(distinct, truth == 1, strict=True)))


def _missing(column: pd.Series) -> str:
    """'has 2 rows with missing values (first at data row 3; ...)', for a column with some."""
    rows = np.flatnonzero(column.isna())
    return f"has {_rows(len(rows))} with missing values (first at data row {rows[0] + 1}; {MISSING})"


def _not_numbers(column: pd.Series, what: str, fix: str) -> UserError:
    """A column of numbers that holds some values that are not (typos, placeholders), or numbers written as text."""
    values = column.reset_index(drop=True).dropna().astype(str)  # by position, the data row: not data.index_col's
    plain = _plain_numbers(values)
    if plain.all() and len(values) < len(column):  # True/False with blanks: missing values
        return UserError(f"{what}: column '{column.name}' {_missing(column)}. {fix}".strip())
    odd = values.isin(BOOLEANS.keys()) if plain.all() else ~plain  # True, False beside numbers other than 1 and 0
    if plain.mean() >= 0.5 and odd.any():
        row = int(np.flatnonzero(odd)[0])
        return UserError(
            f"{what}: column '{column.name}' holds numbers, and {_rows(int(odd.sum()))} with a value that is "
            f"not (first {values.iloc[row]!r}, at data row {values.index[row] + 1}). {fix}".strip()
        )
    example = values[odd].iloc[0] if odd.any() else values.iloc[0]
    return UserError(
        f"{what}: column '{column.name}' holds numbers written as text (for example {example!r}): save them as "
        f"plain numbers, without thousands separators, currency or percent signs. {fix}".strip()
    )


def meta_value(value):
    """A plain Python value (numpy's scalars are not: a checkpoint must hold plain values)."""
    return value.item() if hasattr(value, "item") else value


def infer_task(y: pd.Series) -> str:
    """Few distinct integer or string values are class labels; anything else is a quantity."""
    values = y.dropna()
    numbers = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numbers:
        a = values.to_numpy(np.float64)
        if not (np.array_equal(np.floor(a), a) and np.isfinite(a).all()):  # not all whole (np.mod, 40x slower)
            return "regression"
    distinct = values.nunique()
    if numbers and distinct > MAX_CLASSES:
        return "regression"
    return "binary" if distinct <= 2 else "multiclass"


def _whole_numbers(y: np.ndarray) -> int:
    """How many distinct values a target has where all are whole numbers; 0 otherwise."""
    return len(np.unique(y)) if np.array_equal(np.floor(y), y) else 0


def _rows(n: int) -> str:
    return f"{n} row{'s' * (n != 1)}"


LEAVE_OUT = ", or leave the column out: data.features=[...]"  # train.py's fix; a checkpoint's data keeps its features


def _check_finite(frame: pd.DataFrame, what: str) -> np.ndarray:
    """The columns as float32, once every value is known to be a number float32 can hold."""
    with np.errstate(over="ignore"):  # a number beyond float32's range becomes inf, reported below
        values = frame.to_numpy(np.float32, copy=True)  # a writable copy: scale() works in place
    bad = ~np.isfinite(values)
    for j in np.flatnonzero(bad.any(axis=0)):
        rows = np.flatnonzero(bad[:, j])
        overflow = np.isfinite(frame.iloc[:, j].to_numpy(np.float64)[rows]).all()
        problem = "values beyond float32's range (±3.4e38)" if overflow else "missing or infinite values"
        fix = LEAVE_OUT if what == "data.features" else ""
        raise UserError(
            f"{what}: column '{frame.columns[j]}' has {_rows(len(rows))} with {problem} "
            f"(first at data row {rows[0] + 1}). Drop, fill or rescale them in the CSV{fix}."
        )
    return values


def is_category(column: pd.Series, named: bool = False) -> bool:
    """Whether a column is text of few distinct values (a city, a colour, yes and no): a feature of categories.
    Text that never repeats is an id or free text (also in the first rows of a large file, read alone), unless
    data.features `named` it."""
    if pd.api.types.is_numeric_dtype(column):
        return False
    distinct = column.nunique()  # first: an id's million values are not checked for numbers again
    return 0 < distinct <= MAX_CATEGORIES and (named or distinct < column.count()) and not numbers_as_text(column)


def find_categories(frame: pd.DataFrame, features: list[str], named: bool = False) -> dict[str, list[str]]:
    """Each feature of categories, with its categories in order: what one-hot encoding turns into inputs."""
    return {
        f: sorted(map(str, frame[f].dropna().unique())) for f in features if f in frame and is_category(frame[f], named)
    }


def input_names(meta: dict) -> list[str]:
    """The model's inputs, a feature or one of its categories each: 'age', 'city=Lyon', 'city=Paris'."""
    categories = meta.get("categories", {})
    return [n for f in meta["features"] for n in ([f"{f}={c}" for c in categories[f]] if f in categories else [f])]


def feature_matrix(
    frame: pd.DataFrame, features: list[str], option: str = "data.features", categories: dict | None = None
) -> np.ndarray:
    """The feature columns as a float32 matrix, once they are known to exist, be numeric and finite; a feature of
    `categories` one-hot encoded, a 0/1 column for each of its categories."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        error = no_column(option, missing, frame)
        if option != "data.features":  # the columns of a model's data: all of them are needed
            error = UserError(f"{error} The model takes: {', '.join(features)}.")
        raise error
    categories = categories or {}
    mixed = {f: _booleans(frame[f]) for f in features if f not in categories and frame[f].dtype.kind not in "iufb"}
    frame = frame.assign(**mixed) if mixed else frame  # True, False, 1 and 0: 0 and 1, as train.py read them
    for f in features:
        if f in categories:
            _check_categories(frame[f], categories[f], option)
            continue
        if numbers_as_text(frame[f]):
            raise _not_numbers(
                frame[f], option, f"Fix or drop them in the CSV{LEAVE_OUT * (option == 'data.features')}."
            )
        if not pd.api.types.is_numeric_dtype(frame[f]):  # booleans are numbers: 0 and 1
            values = frame[f].dropna()
            words = values[pd.to_numeric(values, errors="coerce").isna()]  # the values that are not numbers
            example = (words if len(words) else values).iloc[0] if len(values) else "empty"
            if option == "data.features":
                many = f"has {values.nunique()} distinct values of text (for example {example!r}), too many to be "
                raise UserError(
                    f"{option}: column '{f}' {many}categories (at most {MAX_CATEGORIES}): an id, a date or free "
                    "text? Encode it as numbers in the CSV, or leave it out: data.features=[...]."
                )
            raise UserError(
                f"{option}: column '{f}' is not numeric (for example {example!r}). Encode it as numbers, as the "
                "model was trained."
            )
    numbers = [f for f in features if f not in categories]
    x = _check_finite(frame[numbers], option)
    if not categories:
        return x
    columns = iter(x.T)
    parts = [
        (frame[f].astype(str).to_numpy()[:, None] == np.array(categories[f])).astype(np.float32)
        if f in categories
        else next(columns)[:, None]
        for f in features
    ]
    return np.hstack(parts)


def _check_categories(column: pd.Series, categories: list[str], option: str) -> None:
    """A feature of categories must have a value in every row, one of the categories the model knows."""
    if column.isna().any():
        raise UserError(
            f"{option}: column '{column.name}' (categories) {_missing(column)}. Fill them in the CSV, with a category "
            "of their own if need be."
        )
    unknown = sorted(set(column.astype(str)) - set(categories))
    if unknown:
        raise UserError(
            f"{option}: column '{column.name}' has {'categories' if len(unknown) > 1 else 'a category'} the model "
            f"was not trained on: {', '.join(map(repr, unknown[:3]))}{', ...' * (len(unknown) > 3)}. It knows "
            f"{', '.join(map(repr, categories))}."
        )


def _column_names(value, option: str, what: str) -> list[str]:
    """An option's column names, one or a list, each named once; as strings, as a CSV's column names are
    (data.target=3 names the column '3')."""
    names = [str(v) for v in (value if isinstance(value, Iterable) and not isinstance(value, str) else [value])]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{option}: {twice} listed more than once; name each {what} column once.")
    return names


def target_names(target) -> list[str]:
    """data.target as a list of column names: one, or several for a regression of several values (course 2.2)."""
    targets = _column_names(target, "data.target", "target")
    if not targets:
        raise UserError("data.target is empty: name the target column, or a list of them for a regression.")
    return targets


def feature_names(frame: pd.DataFrame, targets: list[str], features=None) -> list[str]:
    """The features asked for, or else every numeric column besides the targets."""
    for target in targets:
        if target not in frame.columns:
            raise no_column("data.target", [target], frame)
    besides = ", ".join(f"'{t}'" for t in targets)
    if features is None:  # numeric columns, and columns of numbers with a few values that are not (refused next)
        features = [
            c
            for c in frame.columns
            if c not in targets
            and (pd.api.types.is_numeric_dtype(frame[c]) or numbers_as_text(frame[c]) or is_category(frame[c]))
        ]
        if not features:
            raise UserError(
                f"no feature column of numbers or categories besides {besides}. The columns are: {_columns(frame)}."
            )
    features = _column_names(features, "data.features", "feature")
    if not features:
        raise UserError("data.features is empty: name the feature columns, or null for every numeric column.")
    for target in targets:
        if target in features:
            raise UserError(f"data.features: '{target}' is the target; leave it out of the features.")
    return features


def tabulate(
    frame: pd.DataFrame,
    targets: list[str],
    features=None,
    task: str | None = None,
    classes: list | None = None,
    categories: dict | None = None,
):
    """Checks a table and turns it into arrays (x, y) and the metadata the model is built from. `categories`:
    a checkpoint's, which keep the inputs it was trained with."""
    if frame.shape[0] == 0:
        raise UserError(f"data.path: the CSV has a header ({_columns(frame)}) but no data rows: add rows below it.")
    named, features = features is not None, feature_names(frame, targets, features)
    categories = find_categories(frame, features, named) if categories is None else categories
    x = feature_matrix(frame, features, categories=categories)
    y, meta = encode_targets(frame[targets], features, task, classes)
    if categories:  # recorded only where there are some: a checkpoint of numbers is as it was
        meta.update(categories=categories, n_features=x.shape[1])
    return x, y, meta


def encode_targets(frame: pd.DataFrame, features: list[str], task: str | None = None, classes: list | None = None):
    """encode_target for the target column, or for each of several: a regression with an output each."""
    if frame.shape[1] == 1:
        return encode_target(frame.iloc[:, 0], features, task, classes)
    for target in frame.columns:
        if task is None and infer_task(frame[target]) != "regression":
            raise UserError(
                f"data.target: '{target}' holds class labels ({frame[target].nunique()} distinct values), and several "
                "targets are a regression, an output neuron for each. Take them as quantities with "
                "data.task=regression, or train a classifier of that one target: data.target=" + target
            )
    if task not in (None, "regression"):
        raise UserError(
            f"data.task={task} takes one target column; several targets are a regression: data.task=regression."
        )
    encoded = [encode_target(frame[target], features, "regression") for target in frame.columns]
    meta = {**encoded[0][1], "target": list(frame.columns), "n_outputs": frame.shape[1]}
    return np.hstack([y for y, _ in encoded]), meta


def encode_target(y: pd.Series, features: list[str], task: str | None = None, classes: list | None = None):
    """Checks the target column, infers the task, encodes class labels: (y, meta). `classes`: a checkpoint's,
    which keep the codes it was trained with; a label that is not one of them is refused."""
    target = y.name
    if y.isna().any():
        raise UserError(f"data.target: column '{target}' {_missing(y)}. Drop or fill them in the CSV.")
    y = _booleans(y)  # True, False, 1 and 0: the classes False and True, as True and False alone are
    numeric = pd.api.types.is_numeric_dtype(y)  # or mostly numbers: the others typos or placeholders ('?', 'n/a')
    if task in (None, "regression") and not numeric and pd.to_numeric(y, errors="coerce").notna().mean() > 0.5:
        fix = "Fix or drop them in the CSV, or set data.task=multiclass to take every value as a class label."
        raise _not_numbers(y, "data.target", fix)
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
        if numbers_as_text(y):
            raise _not_numbers(y, "data.target", "")
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise UserError(
                f"data.task=regression needs a numeric target; '{target}' holds labels like {meta_value(y.iloc[0])!r}."
            )
        meta["n_outputs"] = 1
        y = _check_finite(y.to_frame(), "data.target")
        largest = np.abs(y).max()
        if largest > 1e18:  # its squared errors would overflow float32
            raise UserError(
                f"data.target: '{target}' reaches {largest:.3g}; squared errors that large overflow float32. "
                "Rescale the target (for example to thousands) in the CSV."
            )
        return y, meta

    if classes is None:
        classes, codes = np.unique(y.to_numpy(), return_inverse=True)
    else:
        codes = pd.Index(classes).get_indexer(y)
        if (codes < 0).any():
            unknown = list(dict.fromkeys(meta_value(v) for v in y[codes < 0]))
            raise UserError(
                f"data.target: '{target}' has labels that are not the checkpoint's classes "
                f"({', '.join(map(repr, classes))}): {', '.join(map(repr, unknown[:3]))}{', ...' * (len(unknown) > 3)}."
            )
    quantity = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)  # text is no quantity
    if len(classes) < 2:
        raise UserError(
            f"data.target: '{target}' has a single class ({meta_value(classes[0])!r}); classification needs two "
            f"or more. Check the target column{', or set data.task=regression' * quantity}."
        )
    if task == "binary" and len(classes) != 2:
        raise UserError(f"data.task=binary needs 2 classes; '{target}' has {len(classes)}. Use data.task=multiclass.")
    if len(classes) > max(MAX_CLASSES, len(y) / 2):  # about a row a class: an id or a quantity, not labels
        if numbers_as_text(y):  # '1,025,140'
            raise _not_numbers(y, "data.target", "")
        raise UserError(
            f"data.target: '{target}' has {len(classes)} distinct values in {len(y)} rows, too many to be classes "
            f"to learn. Check the target column{', or set data.task=regression for a quantity' * quantity}."
        )
    meta["classes"] = [meta_value(c) for c in classes]
    meta["n_outputs"] = 1 if task == "binary" else len(classes)
    y = codes.astype(np.float32)[:, None] if task == "binary" else codes.astype(np.int64)
    return y, meta


def stream_table(
    path: str | Path,
    targets: list[str],
    features=None,
    task: str | None = None,
    index_col: int | str | None = None,
    classes: list | None = None,
):
    """What tabulate(read_csv(path, index_col), ...) gives for a clean table, read in pieces by a few
    threads straight into one float32 matrix: the whole file is never held as parser buffers or as a
    float64 frame.

    None where the table is not clean: a file missing, empty or unparsable, a feature that is not numbers
    float32 can hold in some piece (pandas may then type the whole column otherwise), a row with a field
    more than the header. The whole-file path then reads it, and says what is wrong over the whole file.
    """
    _quiet_dtypes()
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    if not size:
        return None
    ends = [0]  # pieces end at line ends: the first after HEAD_BYTES, the others PIECE_BYTES apart
    with path.open("rb") as f:
        while ends[-1] < size:
            f.seek(ends[-1] + (HEAD_BYTES if len(ends) == 1 else PIECE_BYTES))
            f.readline()
            ends.append(min(f.tell(), size))
    pool = ThreadPoolExecutor(THREADS)
    try:
        head = _read_piece(path, 0, ends[1])  # its header names the columns, its rows type them
        first = _data_columns(head, index_col)
        if first.empty:
            return None
        features = feature_names(first, targets, features)
        if any(f not in first.columns for f in features):
            return None
        names = list(head.columns)
        numbers = partial(_numbers, index_col=index_col, features=features, targets=targets)
        later = pool.map(lambda start, end: numbers(_read_piece(path, start, end, names)), ends[1:-1], ends[2:])
        # Room for as many rows as the head's rows per byte promise, and some; doubled when short.
        x, n, ys = np.empty((int(1.1 * len(head) * size / ends[1]) + 1, len(features)), np.float32), 0, []
        for piece in chain([numbers(head)], later):
            if piece is None:
                return None
            part, y = piece
            if n + len(part) > len(x):
                x = np.concatenate([x[:n], np.empty((max(n, len(part)), len(features)), np.float32)])
            x[n : n + len(part)] = part
            n += len(part)
            ys.append(y)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, IndexError, KeyError):
        return None  # data.index_col=nope: KeyError, named by the whole-file path
    finally:
        pool.shutdown(cancel_futures=True)  # after a piece that is not clean, the rest is not worth parsing
    y = pd.concat(ys, ignore_index=True)
    for target in targets:
        if not pd.api.types.is_numeric_dtype(y[target]) and len({p[target].dtype for p in ys}) > 1:
            return None  # labels in one piece, numbers in another: read whole, pandas types the column as text
    return x[:n], *encode_targets(y, features, task, classes)


def _read_piece(path: Path, start: int, end: int, names: list | None = None) -> pd.DataFrame:
    """Bytes start:end of a CSV, parsed; the first piece holds the header, the others take its names."""
    with _Span(path, start, end) as piece:
        return pd.read_csv(piece, header=None if names else "infer", names=names)


class _Span(io.RawIOBase):
    """Bytes start:end of a file, read as a file of their own: pandas parses them straight from the file
    (a copy of the text first would take memory and time)."""

    def __init__(self, path: Path, start: int, end: int):
        self.file, self.left = path.open("rb"), end - start
        self.file.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.file.readinto(memoryview(buffer)[: self.left])
        self.left -= n
        return n

    def close(self) -> None:
        self.file.close()
        super().close()


def _numbers(frame: pd.DataFrame, index_col: int | str | None, features: list[str], targets: list[str]):
    """A piece's features as float32 and its target columns; None where the piece is not clean."""
    if not frame.index.equals(pd.RangeIndex(len(frame))):  # pandas took a leading field as the index
        return None
    frame = _data_columns(frame, index_col)
    if any(frame[f].dtype.kind not in "iufb" for f in features):  # text, ...
        return None
    with np.errstate(over="ignore"):  # a number beyond float32's range becomes inf, as in _check_finite
        x = frame[features].to_numpy(np.float32)
    return (x, frame[targets].copy()) if np.isfinite(x).all() else None  # a copy: the piece's frame can go


def split_rows(n: int, labels, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Shuffles the rows and cuts them into train, val and test; stratified when labels are given."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not is_number(value) or not 0 <= value < 1:
            raise UserError(f"data.{name} must be in [0, 1); got {value!r}.")
    if not is_number(seed, int) or seed < 0:
        raise UserError(f"data.split_seed must be an integer >= 0; got {seed!r}.")
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


def standardization(x: np.ndarray, rows: np.ndarray) -> dict:
    """Mean and std of each feature over the given rows, accumulated in float64: the values numpy's mean
    and std of x[rows] give, without a copy of those rows (std takes one in float64).

    numpy adds several columns up row after row, which blocks of rows, each carrying the sum so far, do
    bit for bit. A single column it adds up pairwise: that one gets numpy's own mean and std.
    `constant`: which columns have one value in those rows (their std is taken as 1).
    """
    if x.shape[1] == 1:
        train = x[rows]
        mean, std = train.mean(axis=0, dtype=np.float64), train.std(axis=0, dtype=np.float64)
    else:
        mean = _column_sums(x, rows, lambda block: block.astype(np.float64)) / len(rows)
        std = np.sqrt(_column_sums(x, rows, lambda block: np.square(block - mean)) / len(rows))
    # a column constant in float32 (its spread below float32's smallest normal number) is only centred
    constant = std < np.finfo(np.float32).tiny
    return {"mean": mean.tolist(), "std": np.where(constant, 1.0, std).tolist(), "constant": constant.tolist()}


def _constant_note(same: list[tuple[str, float]]) -> str:
    """The line for features of one value in every training row: (name, value) each."""
    if len(same) == 1:
        columns, it = f"Column {same[0][0]!r} is {same[0][1]:.4g}", "it"
    else:
        columns, it = f"Columns {', '.join(repr(n) for n, _ in same)} are each one value", "them"
    return (
        f"{columns} in every training row: the model learns nothing from {it}. Leave {it} out with data.features=[...]."
    )


def _column_sums(x: np.ndarray, rows: np.ndarray, term) -> np.ndarray:
    """Sums term(x[rows]) over the rows, in float64, added row after row, a block of rows at a time."""
    total = np.zeros(x.shape[1])
    for start in range(0, len(rows), 1 << 14):
        terms = term(np.take(x, rows[start : start + (1 << 14)], axis=0))  # x[...], faster
        terms[0] += total
        total = terms.sum(axis=0)
    return total


def scale(x: np.ndarray, meta: dict) -> np.ndarray:
    """Standardizes features in place with the training split's statistics kept in meta (no-op when absent)."""
    if meta.get("mean") is not None:
        x -= np.asarray(meta["mean"], np.float32)  # in place: no second copy of a large table
        x /= np.asarray(meta["std"], np.float32)
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


def take(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t[index] for a tensor of row numbers of any shape, by index_select: on the CPU it gathers rows about
    three times as fast (1024 random rows of a 200,000 x 20 table: 28 µs against 85 µs).

    The index moves to t's device first (index_select on a GPU takes no CPU index): an epoch's row order is
    drawn on the CPU, the same on every device.
    """
    if index.device != t.device:
        index = index.to(t.device)
    if index.dim() == 1:  # a model's minibatch; stacked models' are (members, rows)
        return t.index_select(0, index)
    return t.index_select(0, index.flatten()).unflatten(0, index.shape)


class Table:
    """Every row's features and target, kept once: the splits gather their minibatches from it."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the rows at `index`, a tensor of row numbers of any shape (members, rows)."""
        return take(self.x, index), take(self.y, index)

    def to(self, device) -> None:
        """Moves the table to the device for every split that shares it (a table already there stays)."""
        self.x, self.y = self.x.to(device), self.y.to(device)


class Batches:
    """Minibatches gathered from a table already in memory: no per-row collation as in a DataLoader.

    `rows` are the split's rows of the table, in order (all of them when None). A batch_size of None
    (or at least the number of rows) yields the whole split each step, which is plain gradient descent.
    """

    batch_sampler = None  # read by Lightning, as on a DataLoader

    def __init__(
        self,
        table: Table,
        rows: torch.Tensor | None,
        batch_size: int | None,
        sampler: EpochShuffle | None,
        split: str = "train",
    ):
        self.table, self.sampler, self.split = table, sampler, split
        self.rows = torch.arange(len(table.x)) if rows is None else rows
        self.batch_size = batch_size or len(self.rows)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler else len(self.rows)
        return max(1, math.ceil(n / self.batch_size))

    def __iter__(self):
        rows = self.rows if self.sampler is None else take(self.rows, self.sampler.indices())
        # A process's share of a split smaller than the world is empty: it is one empty batch, whose sums (zero)
        # the other processes wait for when they add theirs up.
        for batch in rows.split(self.batch_size, dim=-1):
            yield self.table.rows(batch)

    def to(self, device) -> "Batches":
        """Moves the split to the device once, not a batch at a time."""
        self.table.to(device)
        self.rows = self.rows.to(device)
        return self


class Epochs:
    """The training loader: one item per epoch, the pair (training minibatches, the batches measured after the
    epoch's steps): the val split's, or without one the training rows', so that the metric a checkpoint is
    chosen by is of the weights it holds (a training loss measured during the steps is of the weights before).

    The Learner's training_step takes a whole epoch: Lightning's loop costs about 0.2 ms for each item it
    hands over, more than a small model's step of gradient descent.
    """

    batch_sampler = None  # read by Lightning, as on a DataLoader

    def __init__(self, train: Batches, measured: Batches):
        self.train, self.measured, self.sampler = train, measured, train.sampler

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.train, self.measured


def _numbers_rows(column: np.ndarray) -> str | None:
    """How a column numbers the rows, as an id does: up by one from each row to the next ('1, 2, ...'), or each
    whole number from its least to its greatest once, in another order (a file sorted by another column)."""
    if len(column) < 3 or column[0] != np.floor(column[0]):  # a measurement: at once
        return None
    if column[1] - column[0] == column[2] - column[1] == 1 and (np.diff(column) == 1).all():
        return f"{column[0]:g}, {column[1]:g}, ..."
    low, high = column.min(), column.max()
    if (
        high - low == len(column) - 1
        and np.array_equal(np.floor(column), column)
        and len(np.unique(column)) == len(column)
    ):
        return f"{low:g} to {high:g}, one a row, in another order"
    return None


def _per_target(values: np.ndarray) -> float | list[float]:
    """A statistic of the targets as plain values: a number for one target (as older checkpoints hold), a list
    for several."""
    return float(values[0]) if len(values) == 1 else values.tolist()


class TabularData(L.LightningDataModule):
    """A CSV as one table of tensors whose rows are split into train, val and test, and the `meta` a
    model is built from.

    `stats` (mean and std of each feature) comes from a checkpoint when testing it again; otherwise
    it is computed on the training split only. `classes` likewise come from a checkpoint, in its order.
    """

    def __init__(
        self,
        path: str,
        target: str | list[str],
        features=None,
        task: str | None = None,
        index_col: int | str | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        standardize: bool = True,
        batch_size: int | None = None,
        shuffle_seed: int = 0,  # the batch order's; a stacked run sets a list, one order per member
        stats: dict | None = None,
        classes: list | None = None,
        categories: dict | None = None,
    ):
        super().__init__()
        if not isinstance(standardize, bool):
            raise UserError(f"data.standardize must be true or false; got {standardize!r}.")
        if batch_size is not None and (not is_number(batch_size, int) or batch_size < 1):
            raise UserError(
                f"data.batch_size must be a positive integer, or null for the whole split; got {batch_size!r}."
            )
        self.path, self.batch_size = str(path), batch_size
        self.shuffle_seed: int | list[int] = int(shuffle_seed)
        targets = target_names(target)
        check_header(path)
        table = stream_table(path, targets, features, task, index_col, classes)
        if table is None:  # not a table of numbers: read whole, for its categories or to say what is wrong with it
            table = tabulate(read_csv(path, index_col), targets, features, task, classes, categories)
        x, y, self.meta = table
        slips = [(f"Column '{n}' has categories", "an input", c) for n, c in self.meta.get("categories", {}).items()]
        slips = [] if categories is not None else slips  # a checkpoint's: said when it trained
        if classes is None and self.meta["classes"] is not None:
            slips.append((f"The target '{targets[0]}' has labels", "a class", self.meta["classes"]))
        for what, each, values in slips:
            written = Counter(v.strip().lower() for v in values if isinstance(v, str))
            alike = [v for v in values if isinstance(v, str) and written[v.strip().lower()] > 1]
            if alike:  # a data-entry slip: 'Paris' and 'paris ' are two inputs, 'Yes' and 'yes ' two classes
                log.info(
                    f"{what} that differ only in case or spaces ({', '.join(map(repr, alike))}): each is {each} of "
                    "its own. Write them alike in the CSV if they are one."
                )
        classes, target = self.meta["classes"], targets[0]
        if task is None and classes is not None and len(classes) > 2 and all(map(is_number, classes)):
            # a count, or labels? (0 and 1 are labels)
            log.info(
                f"data.task: {self.meta['task']}, as the target '{target}' holds {len(classes)} distinct whole "
                f"numbers (at most {MAX_CLASSES} are classes); data.task=regression takes them as a quantity"
            )
        elif (
            task is None
            and self.meta["task"] == "regression"
            and len(targets) == 1
            and (MAX_CLASSES < _whole_numbers(y) <= min(2 * MAX_CLASSES, len(y) / 2))  # not 214 classes
        ):
            log.info(
                f"data.task: regression, as the target '{target}' holds {_whole_numbers(y)} distinct whole numbers "
                f"(more than {MAX_CLASSES} are a quantity); data.task=multiclass takes them as classes"
            )
        if features is None:  # every numeric column: say which are not
            columns = _data_columns(pd.DataFrame(columns=header(path)), index_col).columns
            left_out = ", ".join(str(c) for c in columns if c not in (*targets, *self.meta["features"]))
            if left_out:
                log.info(
                    f"Left out of the features, as text of too many distinct values to be categories (an id, a date, "
                    f"free text?): {left_out} (data.features=[...] names the features)"
                )
            for j, name in enumerate(input_names(self.meta)):
                counted = _numbers_rows(x[:, j])  # a feature that tells the model nothing but where a row was
                if counted:
                    log.info(
                        f"Column '{name}' numbers the rows ({counted}), as an id does, and is a feature: "
                        f"data.index_col={name} makes it the rows' index (or name the features)"
                    )
        # What it takes to read and split the same rows again, from a checkpoint alone.
        self.meta["source"] = dict(
            path=self.path,
            index_col=index_col,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            batch_size=batch_size,
        )
        self.meta["rows"] = len(x)  # so that a checkpoint can tell its data from another file
        labels = None if self.meta["task"] == "regression" else y.reshape(len(y), -1)[:, 0]
        self.rows = split_rows(len(x), labels, val_fraction, test_fraction, split_seed)
        # and its test rows from the same rows in another order, whose test split holds training rows, or from
        # other values: a hash of the test rows' targets and first feature (the labels of classes sorted by a
        # feature keep their order), and of every feature of up to 4096 of them (all, up to 20,000 rows; a
        # sample of a large file's, as a million rows' would take 40 ms)
        test = self.rows["test"]
        sample = test[:: -(-len(test) // 4096) or 1]
        self.meta["test_rows"] = hashlib.blake2b(
            y[test].tobytes() + x[test, :1].tobytes() + x[sample].tobytes(), digest_size=8
        ).hexdigest()
        if stats is None:
            stats = {"mean": None, "std": None}
            if standardize:
                stats = standardization(x, self.rows["train"])
                constant = zip(input_names(self.meta), stats["mean"], stats.pop("constant"), strict=True)
                # a number the model cannot learn from, one value in every row (not a category's 0/1 input)
                if same := [(n, m) for n, m, c in constant if c and n in self.meta["features"]]:
                    log.info(_constant_note(same))
            if self.meta["task"] == "regression":  # a value a target: one, or a list of them
                train = y[self.rows["train"]].astype(np.float64)
                stats["y_mean"] = _per_target(train.mean(0))
                if standardize:  # the targets too: a model learns prices in dollars as in units (Learner)
                    std = train.std(0)
                    stats["y_std"] = _per_target(np.where(std >= np.finfo(np.float32).tiny, std, 1.0))
        self.meta.update(stats)
        # One table; each split is its rows, in the split's order (no copy of the table per split).
        self.table = Table(torch.from_numpy(scale(x, self.meta)), torch.from_numpy(y))

    @property
    def splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each split's (x, y), gathered from the table when asked for."""
        return {k: self.table.rows(self._split_rows(k)) for k in self.rows}

    @classmethod
    def from_meta(cls, meta: dict, path: str | None = None) -> "TabularData":
        """The data a checkpoint was trained on (or the same table at `path`), prepared with the checkpoint's
        own scaling. A relative path in the checkpoint is read from the current directory, as train.py read it.
        """
        stats = {k: meta[k] for k in ("mean", "std", "y_mean", "y_std") if k in meta}
        trained_on = meta["source"]["path"]
        source = {**meta["source"], "path": path or trained_on}
        if not Path(source["path"]).is_file():
            name = Path(trained_on).name
            if path is not None:  # data_path=... given, and not there
                raise UserError(
                    f"data_path: no file '{path}'. Give the path of the CSV this checkpoint was trained on, "
                    f"'{trained_on}': data_path=PATH/TO/{name}"
                )
            raise UserError(
                f"data_path: no file '{trained_on}', the CSV this checkpoint was trained on. Run where "
                f"train.py ran, or give its path: data_path=PATH/TO/{name}"
            )
        at = source.get("index_col")
        if path is not None and at is not None:  # its index column: the same table saved without it has none
            columns = header(path)
            index = columns[at] if is_number(at, int) and -len(columns) <= at < len(columns) else at
            if index not in columns or index in [*meta["features"], *target_names(meta["target"])]:
                source["index_col"] = None
        try:
            data = cls(
                **source,
                target=meta["target"],
                features=meta["features"],
                task=meta["task"],
                classes=meta["classes"],
                categories=meta.get("categories", {}),
                stats=stats,
            )
        except UserError as err:  # what is wrong with the file, not an option of eval.py's (data.target, ...)
            what = re.sub(r"^data\.\w+:? ", "", str(err)).replace(LEAVE_OUT, "")
            raise UserError(f"data_path: '{source['path']}' is not this checkpoint's data: {what}") from None
        if meta.get("rows", data.meta["rows"]) != data.meta["rows"]:
            raise UserError(
                f"data_path: '{source['path']}' has {data.meta['rows']} rows, the CSV this checkpoint was trained "
                f"on had {meta['rows']}: not the same data. Give that CSV: data_path=..."
            )
        if meta.get("test_rows", data.meta["test_rows"]) != data.meta["test_rows"]:  # none: an older checkpoint
            raise UserError(
                f"data_path: '{source['path']}' has other test rows than the CSV this checkpoint was trained on "
                "(its rows in another order, or other values), which would test it on rows it trained on. Give "
                "that CSV: data_path=..., or predict on new rows with predict.py."
            )
        return data

    def has(self, split: str) -> bool:
        return len(self.rows[split]) > 0

    def _batches(self, split: str, shuffle: bool = False) -> Batches:
        n = len(self.rows[split])
        sampler = None
        if shuffle and self.batch_size is not None and self.batch_size < n:
            sampler = EpochShuffle(n, self.shuffle_seed)
        if self.trainer is not None and self.trainer.world_size > 1:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            sampler = EpochShuffle(n, self.shuffle_seed, rank, world, even=shuffle)  # training: even steps
        return Batches(self.table, self._split_rows(split), self.batch_size, sampler, split)

    def _split_rows(self, split: str) -> torch.Tensor:
        """The split's row numbers, where the table is: after training moved it, the test split's batches are
        slices of rows already there, not CPU indices moved for x and again for y, batch after batch."""
        return torch.from_numpy(self.rows[split]).to(self.table.x.device)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # a pair of tensors, or of Batches (an epoch's): nothing to search
        return tuple(b.to(device) for b in batch)

    def train_dataloader(self):
        return Epochs(self._batches("train", shuffle=True), self._batches("val" if self.has("val") else "train"))

    def test_dataloader(self):
        return self._batches("test")
