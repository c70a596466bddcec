import hashlib
import re
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from dlbasics import data
from dlbasics.data import Batches, EpochShuffle, Table, TabularData, infer_task, input_names, split_rows
from dlbasics.errors import UserError

from .conftest import ROOT

COURSE_FILES = {
    "boston.csv": ("4e257ee9d193cee94cd0eac53c80daf96eeb0ff4e07ea13f37115a450e9c180e", (506, 14), None),
    "iris.csv": ("1787f87c297e8fc0c7d427ecd9d0857f8b4c5fd403e8ae2f8b097bf7f49030b0", (150, 5), 0),
    "iris_2cl.csv": ("4f67074d725d1636036199a9000089b3d1ccb62af94711854d1a96749779f7e6", (100, 5), 0),
}


@pytest.mark.parametrize("name", COURSE_FILES)
def test_data_files_are_the_course_files(name):
    sha, shape, index_col = COURSE_FILES[name]
    path = ROOT / "data" / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert pd.read_csv(path, index_col=index_col).shape == shape


def test_iris_meta_tells_the_model_its_sizes():
    data = TabularData("data/iris.csv", "target", index_col=0)
    meta = data.meta
    assert (meta["task"], meta["n_features"], meta["n_outputs"], meta["classes"]) == (
        "multiclass",
        4,
        3,
        [0, 1, 2],
    )
    assert [len(data.rows[k]) for k in ("train", "val", "test")] == [90, 30, 30]
    # stratified: each class keeps its third of every split
    for split in ("val", "test"):
        assert np.bincount(data.splits[split][1].numpy()).tolist() == [10, 10, 10]


def test_task_inference():
    assert infer_task(pd.Series([0, 1, 1, 0])) == "binary"
    assert infer_task(pd.Series(["a", "b", "c"])) == "multiclass"
    assert infer_task(pd.Series([1.5, 2.0, 3.2])) == "regression"
    assert infer_task(pd.Series(range(50))) == "regression"  # many distinct integers are a quantity


def test_integer_labels_taken_as_classes_are_said_so(tmp_path, caplog):
    """A count of 0 to 9 is taken as 10 classes, one of 0 to 15 as a quantity: the run says which, and the fix."""
    path = tmp_path / "counts.csv"
    pd.DataFrame({"x": np.arange(200) / 2, "count": np.arange(200) % 10}).to_csv(path, index=False)
    with caplog.at_level("INFO", logger="dlbasics"):
        assert TabularData(path, "count").meta["task"] == "multiclass"
        assert TabularData(path, "count", task="regression").meta["task"] == "regression"
        assert TabularData(path, "x").meta["task"] == "regression"  # 200 distinct: a quantity, nothing to say
        pd.read_csv(path).assign(count=lambda f: f["count"] * 2.0).to_csv(path, index=False)  # 0.0, 2.0, ...
        assert TabularData(path, "count").meta["classes"][:2] == [0.0, 2.0]
        pd.read_csv(path).assign(count=np.arange(200) % 16).to_csv(path, index=False)
        assert TabularData(path, "count").meta["task"] == "regression"
        pd.read_csv(path).assign(count=np.arange(200) % 80).to_csv(path, index=False)  # 80 classes: no one's guess
        assert TabularData(path, "count").meta["task"] == "regression"
    assert caplog.messages == [
        "data.task: multiclass, as the target 'count' holds 10 distinct whole numbers (at most 10 are classes); "
        "data.task=regression takes them as a quantity"
    ] * 2 + [
        "data.task: regression, as the target 'count' holds 16 distinct whole numbers (more than 10 are a quantity); "
        "data.task=multiclass takes them as classes"
    ]


def test_a_feature_the_same_in_every_training_row_is_pointed_out(tmp_path, caplog):
    """It was kept without a word, centred to 0 with a std of 1: at predict time another value moved the
    predictions by what the model never learnt. A category's 0/1 input absent from training is not meant."""
    path = tmp_path / "const.csv"
    x = np.random.default_rng(0).normal(size=(100, 2))
    frame = pd.DataFrame({"a": x[:, 0], "const": 7.0, "b": x[:, 1], "zero": 0, "city": "Lyon", "y": x[:, 0]})
    frame.to_csv(path, index=False)
    with caplog.at_level("INFO", logger="dlbasics"):
        TabularData(path, "y", features=["a", "const", "b", "city"])
        TabularData(path, "y", features=["a", "const", "zero"])
        TabularData(path, "y", features=["a", "b"])  # nothing to say
        TabularData(path, "y", features=["a", "const"], standardize=False)  # no statistics, no word
    assert caplog.messages == [
        "Column 'const' is 7 in every training row: the model learns nothing from it. Leave it out with "
        "data.features=[...].",
        "Columns 'const', 'zero' are each one value in every training row: the model learns nothing from them. "
        "Leave them out with data.features=[...].",
    ]


def test_labels_of_many_classes_are_not_said_to_be_a_quantity(tmp_path, caplog):
    """Their codes (0 to 11) are whole numbers: a check meant for a numeric target said 'data.task: regression'."""
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(240) / 2, "y": [f"c{i % 12}" for i in range(240)]}).to_csv(path, index=False)
    with caplog.at_level("INFO", logger="dlbasics"):
        assert TabularData(path, "y").meta["task"] == "multiclass"
    assert caplog.messages == []


@pytest.mark.parametrize(
    "header, row, message",
    [
        # pandas renames the second y to y.1: a copy of the target, after a join, was a feature (test/acc 1.0)
        ("a,b,y,y", "{0},{1},{2},{2}", "data.path: the CSV's header names 'y' twice: give each column a name of its"),
        # a column without a name, not the first: taken as a saved index, and left out without a word
        ("a,,y", "{0},{1},{2}", "data.path: column 2 of the CSV's header has no name: name it"),
        # each row a field more than the header: pandas took the first as the index, and the target was empty
        ("a,b,y", "{0},{1},{2},", "data.path: the data rows of '{path}' have one field more than its header (a comma"),
        ("0.5,1.5,1", "{0},{1},{2}", "data.target: no column 'y'. The columns are: 0.5, 1.5, 1. Its first row looks"),
    ],
)
def test_a_header_that_does_not_name_the_columns_is_refused(tmp_path, header, row, message):
    path = tmp_path / "t.csv"
    path.write_text("\n".join([header, *(row.format(i % 7, i % 5, i % 2) for i in range(40))]) + "\n")
    with pytest.raises(UserError) as err:
        TabularData(path, "y")
    assert str(err.value).startswith(message.format(path=path))


@pytest.mark.parametrize("name", ["t.csv.gz", "t.csv.bz2"])
def test_a_compressed_csv_whose_header_names_a_column_twice_is_refused(tmp_path, name):
    """The header was read as UTF-8 text, which a compressed file is not, and the check skipped: pandas renamed the
    second y to y.1, a feature (test/acc 1.0)."""
    path = tmp_path / name
    pd.DataFrame([[i % 7, i % 5, i % 2, i % 2] for i in range(40)], columns=["a", "b", "y", "y"]).to_csv(
        path, index=False
    )
    with pytest.raises(UserError) as err:
        TabularData(path, "y")
    assert str(err.value) == "data.path: the CSV's header names 'y' twice: give each column a name of its own."


def test_a_column_of_numbers_with_values_that_are_not_is_refused_not_left_out(tmp_path):
    """One '?' in a feature left it out of the features (test/acc 0.68 against 0.98), said only as 'not numeric'."""
    path, frame = tmp_path / "t.csv", table(60).astype({"f1": object})
    frame.loc[5, "f1"] = "?"
    frame.assign(flag=np.arange(60) % 2 == 0).astype({"flag": object}).assign(
        flag=lambda f: f["flag"].where(f.index != 7)  # True/False with a blank: read as text
    ).to_csv(path, index=False)
    with pytest.raises(
        UserError, match=r"'f1' holds numbers, and 1 row with a value that is not \(first '\?', at data row 6\)"
    ):
        TabularData(path, "y")
    frame.insert(0, "id", [f"r{i}" for i in range(100, 160)])  # an index of text: its labels are not row numbers
    frame.to_csv(tmp_path / "ids.csv", index=False)
    with pytest.raises(UserError, match=r"1 row with a value that is not \(first '\?', at data row 6\)"):
        TabularData(tmp_path / "ids.csv", "y", index_col="id")
    with pytest.raises(
        UserError, match=r"data.features: column 'flag' has 1 row with missing values \(first at data row 8;"
    ):
        TabularData(path, "y", features=["f0", "flag"])
    pd.DataFrame({"x": np.arange(60.0), "price": [f"{1_000_000 + 1000 * i:,}" for i in range(60)]}).to_csv(
        path, index=False
    )
    for task in (None, "regression"):  # was 'too many to be classes: set data.task=regression', then 'labels like'
        with pytest.raises(
            UserError, match="column 'price' holds numbers written as text \\(for example '1,000,000'\\)"
        ):
            TabularData(path, "price", task=task)
    pd.DataFrame({"x": np.arange(60.0), "rate": [f"{i / 2:.1f}%" for i in range(60)]}).to_csv(path, index=False)
    for task in (None, "regression"):
        with pytest.raises(UserError, match="column 'rate' holds numbers written as text \\(for example '0.0%'\\)"):
            TabularData(path, "rate", task=task)
    with pytest.raises(UserError, match="data.features: column 'rate' holds numbers written as text"):
        TabularData(path, "x")  # a feature too: refused, not left out among the columns of text


def test_string_labels_are_encoded_and_their_names_kept(make_csv):
    data = TabularData(make_csv(kind="binary"), "y")
    assert data.meta["task"] == "binary" and data.meta["classes"] == ["no", "yes"]
    assert set(data.splits["train"][1].unique().tolist()) == {0.0, 1.0}


def test_standardize_uses_training_rows_only():
    data = TabularData("data/boston.csv", "PRICE", features=["RM", "TAX"])
    x_train = data.splits["train"][0].double()
    assert torch.allclose(x_train.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(x_train.std(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-4)
    raw = pd.read_csv("data/boston.csv")[["RM", "TAX"]].to_numpy()
    assert np.allclose(data.meta["mean"], raw[data.rows["train"]].mean(0))
    assert not np.allclose(data.meta["mean"], raw.mean(0))


def test_split_is_reproducible_and_independent_of_training_seed():
    a = TabularData("data/iris.csv", "target", index_col=0, split_seed=3, shuffle_seed=1)
    b = TabularData("data/iris.csv", "target", index_col=0, split_seed=3, shuffle_seed=2)
    c = TabularData("data/iris.csv", "target", index_col=0, split_seed=4)
    assert all(np.array_equal(a.rows[k], b.rows[k]) for k in a.rows)
    assert not np.array_equal(a.rows["test"], c.rows["test"])
    assert sorted(np.concatenate(list(a.rows.values())).tolist()) == list(range(150))


def test_zero_fraction_means_no_split():
    rows = split_rows(506, None, 0, 0, seed=0)
    assert len(rows["train"]) == 506 and len(rows["val"]) == len(rows["test"]) == 0


def test_minibatches_cover_every_row_once_per_epoch_in_a_new_order():
    x = torch.arange(10.0)[:, None]
    batches = Batches(Table(x, x), None, batch_size=4, sampler=EpochShuffle(10, seed=0))
    first = torch.cat([b for b, _ in batches])
    assert [len(b) for b, _ in batches] == [4, 4, 2] and len(batches) == 3
    assert sorted(first[:, 0].tolist()) == list(range(10))
    batches.sampler.set_epoch(1)
    second = torch.cat([b for b, _ in batches])
    assert not torch.equal(first, second)
    batches.sampler.set_epoch(0)
    assert torch.equal(first, torch.cat([b for b, _ in batches]))


def test_ddp_processes_take_as_many_training_steps_and_every_row():
    """Under DDP each process steps through its share; a process with a step fewer would hang the others."""
    shares = [EpochShuffle(11, seed=0, rank=r, world=3, even=True).indices() for r in range(3)]
    assert [len(s) for s in shares] == [4, 4, 4]
    assert set(torch.cat(shares).tolist()) == set(range(11))  # one row taken twice, as DistributedSampler pads
    evaluated = [EpochShuffle(11, seed=0, rank=r, world=3).indices() for r in range(3)]
    assert sorted(torch.cat(evaluated).tolist()) == list(range(11))  # validation and test count each row once


def test_full_batch_is_the_whole_split():
    x = torch.arange(10.0)[:, None]
    (only,) = list(Batches(Table(x, x), None, batch_size=None, sampler=None))
    assert torch.equal(only[0], x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"path": "nope.csv", "target": "y"}, "no file 'nope.csv'"),
        ({"path": "data", "target": "y"}, "data.path: 'data' is a directory. Give the path of a CSV file"),
        ({"target": "price"}, "no column 'price'. The columns are: f0, f1, f2, y"),
        ({"target": "y", "features": ["f0", "f9"]}, "data.features: no column 'f9'. The columns are: f0, f1, f2, y"),
        ({"target": "Y", "features": ["F1", "fo"]}, "data.target: no column 'Y'. Did you mean 'y'? The columns"),
        ({"target": "y", "features": ["F1", "f5"]}, "data.features: no columns 'F1', 'f5'. Did you mean 'f1'? The"),
        (  # iris's target on Boston: was "Did you mean 'AGE'?" (0.67 alike)
            {"path": str(ROOT / "data" / "boston.csv"), "target": "target"},
            "data.target: no column 'target'. The columns are: ",
        ),
        ({"target": "y", "val_fraction": 1.5}, "data.val_fraction must be in [0, 1); got 1.5"),
        ({"target": "y", "val_fraction": 0.5, "test_fraction": 0.5}, "must leave rows to train on"),
        ({"target": "y", "task": "ranking"}, "data.task must be one of regression, binary, multiclass"),
        ({"target": "y", "batch_size": 0}, "data.batch_size must be a positive integer"),
        ({"target": []}, "data.target is empty: name the target column, or a list of them"),
        ({"target": ["y", "f0", "y"]}, "data.target: ['y'] listed more than once"),
        ({"target": ["f0", "nope"]}, "data.target: no column 'nope'"),
        ({"target": ["f0", "y"]}, "'y' holds class labels (3 distinct values), and several targets are a regression"),
        ({"target": ["f0", "y"], "task": "multiclass"}, "data.task=multiclass takes one target column"),
        ({"target": ["f0", "f1"], "features": ["f1", "f2"]}, "data.features: 'f1' is the target"),
    ],
)
def test_bad_options_are_named(make_csv, kwargs, message):
    kwargs.setdefault("path", make_csv())
    with pytest.raises(UserError) as err:
        TabularData(**kwargs)
    assert message in str(err.value)


def test_the_courses_data_from_another_directory_is_pointed_to(tmp_path, monkeypatch):
    """python ~/dlbasics/train.py from another directory: data/iris.csv is the project's, not the directory's."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        TabularData("data/iris.csv", "target")
    assert str(err.value) == (
        f"data.path: no file 'data/iris.csv' in {tmp_path}; the project's is {ROOT / 'data' / 'iris.csv'}. Run from "
        f"the project's directory (cd {ROOT}), or give data.path={ROOT / 'data' / 'iris.csv'}"
    )
    clone = tmp_path / "clone"  # python clone/train.py, where the package is installed from another checkout
    (clone / "data").mkdir(parents=True)
    (clone / "data" / "iris.csv").write_bytes((ROOT / "data" / "iris.csv").read_bytes())
    monkeypatch.setattr(sys, "argv", [str(clone / "train.py")])
    with pytest.raises(UserError, match=f"the project's is {re.escape(str(clone / 'data' / 'iris.csv'))}. Run from"):
        TabularData("data/iris.csv", "target")


def test_a_feature_of_categories_is_an_input_per_category(tmp_path, caplog):
    """A column of text of few values (a colour, a city, yes and no) was left out of the features: a practitioner's
    prices trained to RMSE 1079 without their city and colour, where Ridge with them one-hot encoded gets 469."""
    path = tmp_path / "t.csv"
    colour = ["red", "blue", "green", "blue"] * 10
    pd.DataFrame({"a": np.arange(40.0) % 7, "colour": colour, "y": np.arange(40.0)}).to_csv(path, index=False)
    data = TabularData(path, "y", standardize=False)
    assert data.meta["features"] == ["a", "colour"] and data.meta["categories"] == {"colour": ["blue", "green", "red"]}
    assert data.meta["n_features"] == 4 and input_names(data.meta) == ["a", "colour=blue", "colour=green", "colour=red"]
    onehot = data.table.x[:, 1:].numpy()
    expected = (np.array(colour)[:, None] == np.array(["blue", "green", "red"])).astype(np.float32)
    assert (onehot == expected).all()  # each row its category's input 1, the others 0
    assert TabularData(path, "y", features=["a", "colour"]).meta["n_features"] == 4  # the same when named
    pd.DataFrame({"a": np.arange(40.0), "day": [f"2020-01-{i + 1:02}" for i in range(40)], "y": 1.0}).to_csv(
        path, index=False
    )
    with pytest.raises(
        UserError, match="column 'day' has 40 distinct values of text \\(for example '2020-01-01'\\), too"
    ):
        TabularData(path, "y", features=["a", "day"])
    frame = pd.DataFrame({"a": np.arange(40.0) % 7, "colour": colour, "y": np.arange(40.0)})
    frame.loc[3, "colour"] = "Blue "  # a data-entry slip
    frame.to_csv(path, index=False)
    with caplog.at_level("INFO", logger="dlbasics"):
        assert TabularData(path, "y").meta["categories"]["colour"] == ["Blue ", "blue", "green", "red"]
    assert caplog.messages == [
        "Column 'colour' has categories that differ only in case or spaces ('Blue ', 'blue'): each is an input of "
        "its own. Write them alike in the CSV if they are one."
    ]
    names = [f"n{i}" for i in range(20)]  # text that never repeats: an id, unless named
    pd.DataFrame({"a": np.arange(20.0), "name": names, "y": np.arange(20.0)}).to_csv(path, index=False)
    assert TabularData(path, "y").meta["features"] == ["a"]
    assert TabularData(path, "y", features=["a", "name"]).meta["n_features"] == 21


def test_missing_values_say_column_and_rows(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, None, 3, np.inf, 5], "y": [1.0, 2, 3, 4, 5]}).to_csv(path, index=False)
    with pytest.raises(
        UserError, match=r"column 'a' has 2 rows with missing or infinite values \(first at data row 2\)"
    ):
        TabularData(path, "y")
    pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "notes": None, "y": [1.0, 2, 3, 4, 5]}).to_csv(path, index=False)
    with pytest.raises(UserError) as err:  # a column left empty: the fix that keeps the CSV as it is, too
        TabularData(path, "y")
    assert str(err.value).endswith(
        "'notes' has 5 rows with missing or infinite values (first at data row 1). Drop, fill or rescale them in "
        "the CSV, or leave the column out: data.features=[...]."
    )


def test_single_class_target(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": range(10), "y": ["cat"] * 10}).to_csv(path, index=False)
    with pytest.raises(UserError, match="has a single class"):
        TabularData(path, "y")


def test_too_few_rows_for_the_splits(make_csv):
    with pytest.raises(UserError, match="leaves the test split empty"):
        TabularData(make_csv(n=2, kind="regression"), "y")


def test_empty_and_header_only_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b,y\n")
    with pytest.raises(UserError, match="is empty"):
        TabularData(tmp_path / "empty.csv", "y")
    with pytest.raises(UserError, match="no data rows"):
        TabularData(tmp_path / "header.csv", "y")


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of a few dozen rows, so that a small CSV is read in many pieces by several threads."""
    monkeypatch.setattr(data, "HEAD_BYTES", 2_000)
    monkeypatch.setattr(data, "PIECE_BYTES", 5_000)
    monkeypatch.setattr(data, "THREADS", 3)


def whole_file(monkeypatch):
    """TabularData as it reads a CSV that is not clean: whole, with pandas.read_csv."""
    monkeypatch.setattr(data, "stream_table", lambda *args: None)


def table(n=3000, seed=0, **columns):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)]).assign(**columns)
    return frame.assign(y=x @ [1.0, -2.0, 0.5, 3.0]) if "y" not in columns else frame


@pytest.mark.parametrize(
    "columns, options",
    [
        ({}, {}),
        ({"k": np.arange(3000) % 7}, {"batch_size": 64}),  # an integer feature
        ({"id": [f"r{i}" for i in range(3000)]}, {}),  # text, not a feature
        ({"y": np.arange(3000) % 3}, {"index_col": 0}),  # classes, and a saved index
        ({"y": np.where(np.arange(3000) % 3, "yes", "no")}, {"features": ["f1", "f3"]}),
        ({"z": np.arange(3000) * 1e3}, {"target": ["z", "y"]}),  # several targets
    ],
)
def test_a_csv_of_many_pieces_loads_as_the_whole_file_does(tmp_path, monkeypatch, small_pieces, columns, options):
    path = tmp_path / "t.csv"
    table(**columns).to_csv(path, index="index_col" in options)
    options.setdefault("target", "y")
    targets = data.target_names(options["target"])
    streamed = data.stream_table(path, targets, options.get("features"), None, options.get("index_col"))
    assert streamed is not None  # read in pieces, not whole
    expected = data.tabulate(data.read_csv(path, options.get("index_col")), targets, options.get("features"))
    assert np.array_equal(streamed[0], expected[0]) and np.array_equal(streamed[1], expected[1])
    assert streamed[2] == expected[2]
    if streamed[2]["task"] == "regression":  # a column a target, an output each
        assert streamed[1].shape == (3000, len(targets)) and streamed[2]["n_outputs"] == len(targets)

    a = TabularData(path, **options)
    whole_file(monkeypatch)
    b = TabularData(path, **options)
    assert a.meta == b.meta and all(np.array_equal(a.rows[k], b.rows[k]) for k in a.rows)
    for split in ("train", "val", "test"):
        assert all(torch.equal(u, v) for u, v in zip(a.splits[split], b.splits[split], strict=True))
        for u, v in zip(a._batches(split, shuffle=True), b._batches(split, shuffle=True), strict=True):
            assert torch.equal(u[0], v[0]) and torch.equal(u[1], v[1])


def test_a_problem_in_a_later_piece_is_reported_over_the_whole_file(tmp_path, small_pieces):
    path = tmp_path / "t.csv"
    frame = table()
    frame.loc[[2500, 2700], "f2"] = [np.nan, np.inf]
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"'f2' has 2 rows with missing or infinite values \(first at data row 2501\)"):
        TabularData(path, "y")
    frame = table().astype({"f1": object})
    frame.loc[2600, "f1"] = "red"
    frame.to_csv(path, index=False)
    for features in (["f0", "f1"], None):  # not left out of the features, as pandas types the whole column as text
        with pytest.raises(
            UserError, match=r"'f1' holds numbers, and 1 row with a value that is not \(first 'red', at data row 2601\)"
        ):
            TabularData(path, "y", features=features)
    lines = table().to_csv(index=False).splitlines()
    lines[2001:] = [line + ",7" for line in lines[2001:]]  # a field more, from a row on
    path.write_text("\n".join(lines))
    with pytest.raises(UserError, match="Expected 5 fields in line 2002, saw 6"):
        TabularData(path, "y")


@pytest.mark.parametrize("rows", [60, 3000])  # a file read whole, and one read in pieces
def test_a_target_of_numbers_with_a_word_among_them_is_named_not_taken_as_classes(tmp_path, small_pieces, rows):
    path = tmp_path / "t.csv"
    frame = table(rows, y=np.round(np.arange(rows) / 7.0).astype(object))  # 0, 0, 0, 0, 1, ...: whole numbers
    frame.loc[rows - 5, "y"] = "?"  # in the last piece
    frame.to_csv(path, index=False)
    with pytest.raises(
        UserError,
        match=rf"'y' holds numbers, and 1 row with a value that is not \(first '\?', at data row {rows - 4}\)\. "
        r"Fix or drop them in the CSV, or set data.task=multiclass to take every value as a class label\.$",
    ):
        TabularData(path, "y")
    labels = table(rows, y=np.where(np.arange(rows) % 2, "1", "0").astype(object))
    labels.loc[rows - 5, "y"] = "unknown"
    labels.to_csv(path, index=False)
    assert TabularData(path, "y", task="multiclass").meta["classes"] == ["0", "1", "unknown"]  # as asked: labels


def test_an_index_column_given_by_name_is_the_one_given_by_number(tmp_path, small_pieces, caplog):
    path = tmp_path / "t.csv"
    table(index=range(3000)).set_index("index").to_csv(path)
    by_number = TabularData(path, "y", index_col=0)
    with caplog.at_level("INFO", logger="dlbasics"):
        by_name = TabularData(path, "y", index_col="index")
    assert by_name.meta["features"] == by_number.meta["features"] == ["f0", "f1", "f2", "f3"]
    assert torch.equal(by_name.table.x, by_number.table.x) and not caplog.records  # nothing left out
    assert data.stream_table(path, ["y"], index_col="index") is not None  # read in pieces, as by number


def test_a_target_of_about_a_row_a_value_is_not_taken_as_classes(tmp_path):
    path = tmp_path / "t.csv"
    table(60, y=[f"id{i}" for i in range(60)]).to_csv(path, index=False)  # the wrong column, as target
    with pytest.raises(UserError) as err:
        TabularData(path, "y")
    assert str(err.value) == (  # not 'or set data.task=regression for a quantity', refused next as text
        "data.target: 'y' has 60 distinct values in 60 rows, too many to be classes to learn. Check the target column."
    )
    table(60).to_csv(path, index=False)  # a quantity, asked for as classes
    with pytest.raises(UserError, match="set data.task=regression for a quantity"):
        TabularData(path, "y", task="multiclass")
    table(60, y=np.arange(60) % 12).to_csv(path, index=False)  # 12 classes of 5 rows: classes
    assert len(TabularData(path, "y", task="multiclass").meta["classes"]) == 12


def test_boolean_columns_are_features_of_0_and_1(tmp_path):
    path = tmp_path / "t.csv"
    frame = table(40, flag=np.arange(40) % 3 == 0)
    frame.to_csv(path, index=False)
    d = TabularData(path, "y", standardize=False, test_fraction=0, val_fraction=0)
    assert d.meta["features"] == ["f0", "f1", "f2", "f3", "flag"]
    assert torch.equal(d.table.x[:, 4], torch.tensor(frame["flag"].to_numpy(np.float32)))
    with pytest.raises(UserError) as err:
        TabularData(path, "flag", task="regression")
    assert str(err.value) == "data.task=regression needs a numeric target; 'flag' holds labels like True."  # np.True_


@pytest.mark.parametrize("rows", [60, 3000])  # a file read whole, and one read in pieces (the first of booleans)
def test_a_column_of_true_and_false_with_1_and_0_is_booleans(tmp_path, small_pieces, rows):
    """pandas reads True and False alone as booleans, and beside 1 and 0 as text: as a feature and as the target,
    that ended in a traceback (IndexError: index 0 is out of bounds)."""
    flag = np.arange(rows) % 3 == 0
    text = np.where(flag, "True", "False").astype(object)
    text[-5:] = np.where(flag[-5:], "1", "0")
    path = tmp_path / "t.csv"
    table(rows, flag=text).to_csv(path, index=False)
    d = TabularData(path, "y", standardize=False)
    assert d.meta["features"] == ["f0", "f1", "f2", "f3", "flag"]
    assert torch.equal(d.table.x[:, 4], torch.tensor(flag, dtype=torch.float32))
    target = TabularData(path, "flag")
    assert target.meta["classes"] == [False, True]  # as a target of True and False alone
    assert torch.equal(target.table.y[:, 0], torch.tensor(flag, dtype=torch.float32))
    count = (np.arange(rows) % 7).astype(object)
    count[rows - 3] = "True"  # among numbers other than 1 and 0: a value that is not one
    table(rows, k=count).to_csv(path, index=False)
    with pytest.raises(UserError) as err:
        TabularData(path, "y")
    assert str(err.value) == (
        f"data.features: column 'k' holds numbers, and 1 row with a value that is not (first 'True', at data row "
        f"{rows - 2}). Fix or drop them in the CSV, or leave the column out: data.features=[...]."
    )


def test_a_text_read_as_missing_is_said_so(tmp_path):
    """pandas reads NA (North America), None, null, N/A as missing values: 'has 20 rows with missing values' named
    cells that were not empty."""
    path = tmp_path / "t.csv"
    table(60, region=np.array(["EU", "AS", "NA"])[np.arange(60) % 3]).to_csv(path, index=False)
    missing = (
        "has 20 rows with missing values (first at data row 3; an empty cell, or a text read as missing: NA, N/A, "
        "null, None, NaN, ...)."
    )
    with pytest.raises(UserError) as err:
        TabularData(path, "y")
    assert str(err.value) == (
        f"data.features: column 'region' (categories) {missing} Fill them in the CSV, with a category of their own "
        "if need be."
    )
    with pytest.raises(UserError) as err:
        TabularData(path, "region")
    assert str(err.value) == f"data.target: column 'region' {missing} Drop or fill them in the CSV."


def test_labels_that_differ_only_in_case_or_spaces_are_pointed_out(tmp_path, caplog):
    """'Yes' and 'yes ' were two classes, without a word (a feature's categories are pointed out)."""
    path = tmp_path / "t.csv"
    labels = np.array(["No", "Yes"])[np.arange(60) % 2].astype(object)
    labels[[5, 7]] = "yes "
    table(60, y=labels).to_csv(path, index=False)
    with caplog.at_level("INFO", logger="dlbasics"):
        assert TabularData(path, "y").meta["classes"] == ["No", "Yes", "yes "]
        TabularData(path, "y", classes=["No", "Yes", "yes "])  # a checkpoint's: said when it trained
    assert caplog.messages == [
        "The target 'y' has labels that differ only in case or spaces ('Yes', 'yes '): each is a class of its own. "
        "Write them alike in the CSV if they are one."
    ]


def test_the_columns_left_out_of_the_features_are_named(tmp_path, caplog):
    path = tmp_path / "t.csv"
    table(40, day=[f"2020-01-{i + 1:02}" for i in range(40)]).to_csv(path, index=False)
    with caplog.at_level("INFO", logger="dlbasics"):
        TabularData(path, "y")
        TabularData(path, "y", features=["f0", "f1"])  # as asked: nothing to say
    assert [r.getMessage() for r in caplog.records] == [
        "Left out of the features, as text of too many distinct values to be categories (an id, a date, free "
        "text?): day (data.features=[...] names the features)"
    ]


def test_a_column_that_numbers_the_rows_is_pointed_out_as_an_id(tmp_path, caplog):
    path = tmp_path / "t.csv"
    table(40).assign(id=np.arange(1, 41), k=np.arange(40) % 7).to_csv(path, index=False)
    with caplog.at_level("INFO", logger="dlbasics"):
        TabularData(path, "y")
        TabularData(path, "y", index_col="id")  # as asked: nothing to say
    assert [r.getMessage() for r in caplog.records] == [
        "Column 'id' numbers the rows (1, 2, ...), as an id does, and is a feature: data.index_col=id makes it the "
        "rows' index (or name the features)"
    ]
    caplog.clear()
    pd.read_csv(path).sample(frac=1, random_state=0).to_csv(path, index=False)  # sorted by another column
    with caplog.at_level("INFO", logger="dlbasics"):
        TabularData(path, "y")
    assert [r.getMessage() for r in caplog.records] == [
        "Column 'id' numbers the rows (1 to 40, one a row, in another order), as an id does, and is a feature: "
        "data.index_col=id makes it the rows' index (or name the features)"
    ]


def test_a_checkpoints_classes_keep_their_codes_and_other_labels_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    frame = table(60, y=np.array(["cat", "dog", "eel"])[np.arange(60) % 3])
    frame.to_csv(path, index=False)
    trained = TabularData(path, "y")
    again = TabularData(path, "y", classes=["cat", "dog", "eel"])
    assert torch.equal(trained.table.y, again.table.y)
    frame.assign(y=frame["y"].replace("cat", "ant")).to_csv(path, index=False)  # sorted first: code 0 again
    with pytest.raises(
        UserError, match=r"labels that are not the checkpoint's classes \('cat', 'dog', 'eel'\): 'ant'\."
    ):
        TabularData(path, "y", classes=["cat", "dog", "eel"])


def test_header_names_with_spaces_around_them_are_pointed_out(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a, b, y\n1, 2, 3\n4, 5, 6\n")
    with pytest.raises(UserError, match=r"Some names have spaces around them \(' b'\): take them out"):
        TabularData(path, "y")


def test_quoted_newlines_and_rows_shorter_than_the_first_ones_load_every_row(tmp_path, small_pieces):
    path = tmp_path / "t.csv"
    table(note=[f'line {i}\nand "more", on' for i in range(3000)]).to_csv(path, index=False)
    assert len(np.concatenate(list(TabularData(path, "y").rows.values()))) == 3000
    path.write_text(table().to_csv(index=False).replace("\n", "\r"))  # old Mac line ends: no newline at all
    assert len(np.concatenate(list(TabularData(path, "y").rows.values()))) == 3000
    frame = table()
    frame.iloc[:100] = frame.iloc[:100].round(12)  # long lines in the head, short ones after it
    frame.iloc[100:] = frame.iloc[100:].round(1)
    frame.to_csv(path, index=False)
    x, y, _ = data.stream_table(path, ["y"])
    assert np.array_equal(x, frame.drop(columns="y").to_numpy(np.float32)) and len(y) == 3000


@pytest.mark.parametrize("features", [1, 2, 5])
def test_standardization_gives_numpys_mean_and_std(features):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40_000, features)) * [1e-3, 1e3, 1, 7, 1e8][:features] + 5).astype(np.float32)
    rows = rng.permutation(40_000)[:30_000]
    stats = data.standardization(x, rows)
    assert stats["mean"] == x[rows].mean(axis=0, dtype=np.float64).tolist()
    assert stats["std"] == x[rows].std(axis=0, dtype=np.float64).tolist()


def test_the_splits_share_one_table_that_moves_to_the_device_once():
    d = TabularData("data/iris.csv", "target", index_col=0, batch_size=16)
    ((train, val),) = list(d.train_dataloader())
    assert train.table is val.table is d.table
    d.transfer_batch_to_device((train, val), torch.device("meta"), 0)
    assert d.table.x.device.type == d.table.y.device.type == train.rows.device.type == "meta"


def test_batches_gather_on_the_tables_device_when_it_has_moved(monkeypatch):
    """On a GPU, index_select takes no CPU index: the shuffled order (drawn on the CPU), the test split made
    after training moved the table, and `splits` (the loss landscape's) must all gather on the table's device.
    The meta device stands in for a GPU, with CUDA's rule."""
    index_select = torch.Tensor.index_select

    def cuda_rule(t, dim, index):
        assert index.device == t.device, f"index on {index.device}, tensor on {t.device}"
        return index_select(t, dim, index)

    monkeypatch.setattr(torch.Tensor, "index_select", cuda_rule)
    d = TabularData("data/iris.csv", "target", index_col=0, batch_size=16)
    ((train, val),) = list(d.train_dataloader())
    train, val = d.transfer_batch_to_device((train, val), torch.device("meta"), 0)
    batches = [*train, *val, *d.test_dataloader(), *d.splits.values()]
    assert len(batches) == 6 + 2 + 2 + 3 and {x.device.type for x, _ in batches} == {"meta"}


def test_a_column_whose_spread_underflows_float32_is_centred_not_blown_up(tmp_path):
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"tiny": [0.0, 1e-40] * 10, "f": np.arange(20.0), "y": np.arange(20.0) % 2}).to_csv(path, index=False)
    data = TabularData(path, "y")
    assert data.meta["std"][0] == 1.0 and torch.isfinite(data.table.x).all()


def test_a_large_file_with_a_mistyped_value_says_so_without_pandas_advice(tmp_path):
    """pandas warned twice, 'Columns (6: f6) have mixed types. Specify dtype option on import or set
    low_memory=False.', before the one line that says which value it is."""
    rows = 300_000  # pandas types a column piece by piece of this many rows or so
    frame = pd.DataFrame({"x": np.arange(rows) % 97 / 10, "y": np.arange(rows) % 89 / 7}).astype({"x": object})
    frame.loc[rows - 10, "x"] = "abc"
    frame.to_csv(path := tmp_path / "t.csv", index=False)
    message = r"column 'x' holds numbers, and 1 row with a value that is not \(first 'abc'"
    with warnings.catch_warnings(record=True) as caught, pytest.raises(UserError, match=message):
        TabularData(path, "y")
    assert [str(w.message) for w in caught if issubclass(w.category, pd.errors.DtypeWarning)] == []
