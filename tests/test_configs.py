"""Every option of every config group composes, and builds the objects it names."""

import contextlib
import logging

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dlbasics.command import REFUSED_KEYS
from dlbasics.errors import UserError, config_mistake
from dlbasics.run import build, check_added

from .conftest import CONF, ROOT, make_cfg, read_metrics, run_script

OPTIONS = {
    group: sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml") if p.stem != "default" or group != "data")
    for group in (
        "data",
        "model",
        "loss",
        "optimizer",
        "trainer",
        "callbacks",
        "logger",
        "experiment",
        "hparams_search",
    )
}


def test_every_group_has_options():
    assert OPTIONS["data"] == ["boston", "boston_rm", "csv", "iris", "iris_binary"]
    assert OPTIONS["model"] == ["mlp", "perceptron"]
    assert OPTIONS["loss"] == ["auto", "logistic", "mse", "sse"]
    assert OPTIONS["experiment"] == ["ch1_gradient_descent", "ex2_iris_mlp", "ex3_boston_mlp", "perceptron_iris_binary"]


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in OPTIONS.items() for o in opts])
def test_option_composes_and_builds(tmp_path, make_csv, group, option):
    overrides = [f"{group}={option}"]
    if group == "data" and option == "csv":
        overrides += [f"data.path={make_csv(kind='regression')}", "data.target=y"]
    if group == "loss" and option in ("mse", "sse"):
        overrides.append("data=boston")
    if group == "trainer" and option == "ddp":
        overrides.append("trainer.accelerator=cpu")  # composes for GPUs; this machine has none
    cfg = make_cfg(tmp_path, *overrides)
    data, learner, trainer = build(cfg, tmp_path)
    assert learner.hparams.data["n_features"] == data.meta["n_features"]
    optimizer = instantiate(cfg.optimizer, params=learner.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert trainer.max_epochs == 3  # the command line wins over a group's or an experiment's own


def test_the_accelerator_is_autos_unless_the_environment_pins_it(tmp_path, monkeypatch):
    assert make_cfg(tmp_path).trainer.accelerator == "cpu"  # conftest pins the suite to the CPU
    monkeypatch.delenv("DLBASICS_ACCELERATOR")
    assert make_cfg(tmp_path).trainer.accelerator == "auto"  # Lightning's choice: a GPU where there is one
    assert make_cfg(tmp_path, "trainer.accelerator=gpu").trainer.accelerator == "gpu"


def shown(monkeypatch, capsys, script: str, *args: str) -> str:
    """What `python SCRIPT.py ARGS` prints for Hydra's --help or --cfg, from a @hydra.main of its config here."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # --help configures logging as a run would
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # and both set Hydra's config; restored after
    monkeypatch.setattr("sys.argv", [f"{script}.py", *args])
    main = hydra.main(version_base="1.3", config_path=CONF, config_name=script)(lambda cfg: None)
    with pytest.raises(SystemExit) if "--help" in args else contextlib.nullcontext():  # --help exits, status 0
        main()
    return capsys.readouterr().out


def test_the_resolved_job_config_shows_the_run_directory(monkeypatch, capsys):
    """`python train.py --cfg job --resolve` showed `dirpath: None/checkpoints`: Hydra names a job's directory
    as the job starts, and --cfg starts none."""
    args = ["--cfg", "job", "--resolve", "hydra.run.dir=logs/x", "logger=csv"]
    job = OmegaConf.create(shown(monkeypatch, capsys, "train", *args))
    assert job.run_dir == str(ROOT / "logs" / "x")  # absolute, as a run's own
    assert job.callbacks.model_checkpoint.dirpath == f"{job.run_dir}/checkpoints"
    assert job.logger.csv.save_dir == job.run_dir


@pytest.mark.parametrize(
    "script, shows, not_shown",
    [
        ("train", ["== Configuration groups ==", "model: mlp, perceptron", "seed: 42"], []),
        ("eval", ["python eval.py ckpt_path=", "ckpt_path: ???", "data_path: null"], ["model: mlp", "groups"]),
        ("predict", ["python predict.py ckpt_path=", "ckpt_path: ???", "input: ???"], ["model: mlp", "groups"]),
    ],
)
def test_help_shows_what_the_script_takes(monkeypatch, capsys, script, shows, not_shown):
    """eval.py's and predict.py's --help listed train.py's config groups (data, model, ...), which they do not take:
    they share its conf/ directory."""
    help_text = shown(monkeypatch, capsys, script, "--help")
    assert all(s in help_text for s in shows) and not any(s in help_text for s in not_shown)


PROBE = """
import os, runpy, sys
os.environ["COMP_LINE"] = "python train.py data="  # what bash hands Hydra's completion at a tab
for script, *args in [*(["train.py", a] for a in ("--help", "-sc query=bash", "modle=mlp")), ["train.py", "--cfg",
        "job", "--resolve"], ["eval.py", "--help"], ["predict.py", "--cfg", "job"], ["train.py", "hydra.run.dir=RUN"],
        ["train.py", "hydra.run.dir=/dev/null/x"], ["train.py", "hparams_search=iris_optuna"]]:
    os.environ.pop("HYDRA_FULL_ERROR", None)
    sys.argv = [script, *" ".join(args).split()]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        print("exit status", exit.code)
print("imported:", *[m for m in ("lightning", "torch") if m in sys.modules])
"""


def test_help_config_and_tab_completion_answer_without_importing_lightning(tmp_path):
    """--help, --cfg, tab completion, a command line Hydra cannot compose and a run directory refused took 5 s each,
    most of it importing Lightning and torch: they answer at once, and only a job imports them (dlbasics.command
    holds the config's resolvers, the shell and the Hydra callback that checks the run's directory)."""
    (tmp_path / "metrics.json").write_text('{"status": "completed", "epochs": 3}')  # a run ended there
    probe = run_script("-c", PROBE.replace("RUN", str(tmp_path)))
    out = probe.stdout
    assert probe.returncode == 0, probe.stderr
    assert f"error: hydra.run.dir: '{tmp_path}' already holds a run (its metrics.json, completed)." in probe.stderr
    assert "error: hydra.run.dir: cannot make '/dev/null/x' (Not a directory)." in probe.stderr
    assert "error: hparams_search=iris_optuna searches over many runs: add -m" in probe.stderr
    assert "== Configuration groups ==" in out and "python eval.py ckpt_path=" in out  # train.py's, eval.py's help
    assert "data=boston data=boston_rm data=csv data=iris data=iris_binary" in out  # the tab's completions
    assert "error: modle: no such key. Did you mean model?" in probe.stderr and "exit status 2" in out
    assert f"run_dir: {ROOT}/logs/iris-mlp/" in out and "input: ???" in out  # the resolved config; predict.py's
    assert out.endswith("imported:\n")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.gradient_clip_vall=1"], "trainer.gradient_clip_vall: no such key. trainer has: max_epochs, max_st"),
        (  # not "+trainer.gradient_clip_val=1 adds a new key", which was then refused as not supported
            ["trainer.gradient_clip_val=1"],
            "trainer.gradient_clip_val is not supported: each minibatch takes its own optimizer step",
        ),
        (["optimiser.lr=1"], "optimiser.lr: no such key. Did you mean optimizer.lr? `python train.py --cfg job`"),
        (  # the course's words, and keys of another group; not "+optimizer.learning_rate=0.1 adds a new key",
            # which then failed as an unknown option of Adam
            ["optimizer.learning_rate=0.1"],
            "optimizer.learning_rate: no such key. Did you mean optimizer.lr? `python train.py --cfg job` shows",
        ),
        (  # an option of another config of the group: "+optimizer.momentum=0.9 adds a new key", unknown to Adam
            ["optimizer.momentum=0.9"],
            "optimizer.momentum is an option of optimizer=sgd, not of the optimizer chosen: optimizer=sgd "
            "optimizer.momentum=0.9",
        ),
        (  # was "Did you mean data.path?"
            ["model=perceptron", "model.depth=3"],
            "model.depth is an option of model=mlp, not of the model chosen: model=mlp model.depth=3",
        ),
        (  # a key nothing has: one a class may take, added with +
            ["logger.tensorboard.flush_secs=5"],
            "logger.tensorboard.flush_secs: no such key. logger.tensorboard has: save_dir, name, version, "
            "default_hp_metric, max_queue. +logger.tensorboard.flush_secs=5 adds a new key;",
        ),
        (  # an option of the class the config leaves out: was "Did you mean data.task?", and for max_time max_steps
            ["optimizer.betas=[0.9,0.99]"],
            "optimizer.betas is not in the config, but an option of torch.optim.Adam: +optimizer.betas=[0.9,0.99] adds",
        ),
        (
            ["trainer.max_time=00:00:05:00"],
            "trainer.max_time is not in the config, but an option of lightning.pytorch.Trainer: "
            "+trainer.max_time=00:00:05:00 adds it.",
        ),
        (  # misspelt, and not in the config: also the options of a library's class our subclass passes on to it
            ["callbacks.model_checkpoint.every_n_epoch=2"],
            "callbacks.model_checkpoint.every_n_epoch: no such key. Did you mean "
            "+callbacks.model_checkpoint.every_n_epochs? `python train.py --cfg job` shows every key.",
        ),
        (  # a class that takes no other options: not "+model.foo=1 adds a new key", then refused by MLP
            ["model.foo=1"],
            "model.foo: no such key. model has: depth, width, hidden, activation, bias, init, output_activation. "
            "`python train.py --cfg job` shows every key.",
        ),
        (["epochs=100"], "epochs: no such key. Did you mean trainer.max_epochs? `python train.py --cfg job` shows"),
        (  # the course's word inside an entry: was "Did you mean +trainer.min_epochs?", as near as max_epochs
            ["trainer.epochs=100"],
            "trainer.epochs: no such key. Did you mean trainer.max_epochs? `python train.py --cfg job` shows",
        ),
        (  # none near it in its entry, nor elsewhere: was "Did you mean trainer.precision?"
            ["callbacks.loss_landscape.resolution=3"],
            "callbacks.loss_landscape.resolution: no such key. callbacks.loss_landscape has: dirpath. `python train",
        ),
        (["batch_size=8"], "batch_size: no such key. Did you mean data.batch_size? `python train.py --cfg job`"),
        (["mode=max"], "mode: no such key. Did you mean callbacks.model_checkpoint.mode or monitor.mode?"),  # not model
        (  # a key of a config not chosen: +callbacks.early_stopping.patience=3 then failed as a class-less callback
            ["callbacks.early_stopping.patience=3"],
            "callbacks.early_stopping is in the config once it is chosen: "
            "callbacks=early_stopping callbacks.early_stopping.patience=3",
        ),
        (  # a config group misspelt: was "hydra/lancher: no such key. Did you mean hydra?"
            ["hydra/lancher=stacked"],
            "hydra/lancher: no such config group. Did you mean hydra/launcher? `python train.py --help` shows each",
        ),
        (  # none near it: the groups it may be, those beside it (here, at the top)
            ["data/foo=bar"],
            "data/foo: no such config group. The config groups: callbacks, data, experiment, hparams_search, logger, "
            "loss, model, optimizer, trainer.",
        ),
        (  # the data's to give: was "Did you mean +model.output_offset?", which was refused next as the data's
            ["model.n_outputs=3"],
            "model.n_outputs comes from the data, never from an option: leave it out.",
        ),
        (  # one of a list of choices: was Hydra's "In 'train': Could not load 'logger/cvs'."
            ["logger=[tensorboard,cvs]"],
            "logger=cvs: no such config. Did you mean logger=csv? Choose one of: csv, none, tensorboard.",
        ),
        (["loss=mae"], "loss=mae: no such config. Did you mean loss=mse? Choose one of: auto, logistic, mse, sse."),
        (["optimizer=SGD"], "optimizer=SGD: no such config. Did you mean optimizer=sgd? Choose one of: adam, sgd."),
        (  # the keys every data option shares are csv's (data=csv), not an option of their own
            ["data=irsi"],
            "data=irsi: no such config. Did you mean data=iris? "
            "Choose one of: boston, boston_rm, csv, iris, iris_binary.",
        ),
        (["optimizer.lr=[1,"], "'optimizer.lr=[1,' is not an override Hydra can read (no viable alternative"),
        (  # a sweep without -m, or a list without brackets: Hydra's words said --multirun, with stray backslashes
            ["model.hidden=20,10"],
            "model.hidden=20,10 gives 2 values: to sweep over them, add -m (python train.py -m model.hidden=20,10); "
            "for a list, brackets: model.hidden=[20,10]; for text, quotes: "
            """'model.hidden="20,10"' (quotes as shown).""",
        ),
        (  # a path: its quotes in single ones, as the shell would take them off; no -m or list, which it takes not
            ["hydra.run.dir=/tmp/a,b"],
            "hydra.run.dir: a path with ',' in it is quoted for Hydra: "
            """'hydra.run.dir="/tmp/a,b"' (quotes as shown).""",
        ),
        (  # a path with ( ): was "not an override Hydra can read", with the grammar
            ["data.path=/tmp/my house (v2).csv"],
            "data.path: a value with '(' and ')' in it is quoted for Hydra: "
            """'data.path="/tmp/my house (v2).csv"' (quotes as shown).""",
        ),
        (  # and an apostrophe, which the single quotes around it ended: bash's syntax error
            ["data.path=/tmp/it's (x).csv"],
            "data.path: a value with '(' and ')' in it is quoted for Hydra: "
            """'data.path="/tmp/it'"'"'s (x).csv"' (quotes as shown).""",
        ),
        (  # -m optimizer.lr=1e-3, 1e-2: a space after the comma
            ["optimizer.lr=1e-3,", "1e-2"],
            "'optimizer.lr=1e-3,' ends with a comma: write the values without spaces (optimizer.lr=a,b,c).",
        ),
        (  # the path of a sweep's job, as the sweep prints it
            ["ckpt_path=logs/multiruns/X/optimizer.lr=0.1/checkpoints/best.ckpt"],
            "ckpt_path: a value with '=' in it is quoted for Hydra: "
            """'ckpt_path="logs/multiruns/X/optimizer.lr=0.1/checkpoints/best.ckpt"' (quotes as shown).""",
        ),
        (  # a path with a ~ in it (the shell expands only a leading one), or a # in a file's name
            ["hydra.run.dir=/tmp/x~y#2"],
            """hydra.run.dir: a value with '#' and '~' in it is quoted for Hydra: 'hydra.run.dir="/tmp/x~y#2"'""",
        ),
        (
            ["data.target=価格"],  # a column name in another script
            """data.target: a value with letters beyond ASCII is quoted for Hydra: 'data.target="価格"'""",
        ),
        (
            ["data.features=[面積,RM]"],
            """data.features: a value with letters beyond ASCII is quoted for Hydra: 'data.features=["面積","RM"]'""",
        ),
        (  # iris's own column names: was "not an override Hydra can read", with the grammar and no override to type
            ["data.features=[sepal length (cm)]"],
            "data.features: a value with '(' and ')' in it is quoted for Hydra: "
            """'data.features=["sepal length (cm)"]' (quotes as shown).""",
        ),
        (
            ["data.target=[target, petal width (cm)]"],
            """data.target: a value with '(' and ')' in it is quoted for Hydra: 'data.target=["target","petal width""",
        ),
        (  # a key Hydra's own dataclasses type: was "Error merging override hydra.job.chdir=maybe", and no more
            ["hydra.job.chdir=maybe"],
            "hydra.job.chdir=maybe: Value 'maybe' is not a valid bool (type str). `python train.py --cfg hydra` shows",
        ),
        (
            ["hparams_search=iris_optuna", "hydra.sweeper.n_trials=abc"],
            "hydra.sweeper.n_trials=abc: Value 'abc' of type 'str' could not be converted to Integer. `python train.py",
        ),
        (["+data.path=x"], "Could not append to config. An item is already at 'data.path'. Either remove + prefix"),
        (
            ["+experiment=ex2_iris_mlp"],
            "+experiment=ex2_iris_mlp: experiment is in the config already; choose it without the +: "
            "experiment=ex2_iris_mlp.",
        ),
    ],
)
def test_what_hydra_cannot_compose_is_one_line_naming_the_fix(tmp_path, overrides, message):
    with pytest.raises(HydraException) as caught:
        make_cfg(tmp_path, *overrides)
    mistake = config_mistake(caught.value, "python train.py", ROOT / "conf", REFUSED_KEYS)
    assert mistake.startswith(message) and "\n" not in mistake


@pytest.mark.parametrize(
    "script, overrides, message",
    [
        (
            "train",
            ["+epochs=100"],
            "+epochs=100: nothing reads epochs, so it would change nothing. Did you mean trainer.max_epochs=100? "
            "`python train.py --cfg job` shows every key.",
        ),
        ("train", ["+loss.reduction=sum"], "+loss.reduction=sum: nothing reads loss.reduction, so it would change"),
        (
            "eval",
            ["ckpt_path=x.ckpt", "+data.path=new.csv"],
            "+data.path=new.csv: nothing reads data.path, so it would change nothing. Did you mean "
            "data_path=new.csv? `python eval.py --cfg job` shows every key.",
        ),
        ("predict", ["ckpt_path=x.ckpt", "input=a.csv", "+out=b.csv"], "+out=b.csv: nothing reads out, so it would"),
    ],
)
def test_a_key_added_that_nothing_reads_is_refused(monkeypatch, script, overrides, message):
    """Hydra's +key=... adds any key; where no code reads it (and where "no such key" pointed), it did nothing."""
    monkeypatch.setattr("sys.argv", [f"{script}.py"])
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(script, overrides, return_hydra_config=True)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    HydraConfig.instance().set_config(cfg)
    with pytest.raises(UserError) as caught:
        check_added(cfg)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "script, overrides, message",
    [
        (  # ckpt_path= left out: "is not an override Hydra can read", and the grammar
            "eval",
            ["RUN/checkpoints/best.ckpt"],
            "'RUN/checkpoints/best.ckpt' is not key=value: give it as ckpt_path=RUN/checkpoints/best.ckpt.",
        ),
        ("predict", ["ckpt_path=x.ckpt", "new.csv"], "'new.csv' is not key=value: give it as input=new.csv."),
        ("train", ["0.01"], "'0.01' is not key=value: an option is key=value (seed=1)."),
        (  # train.py's key in eval.py: "trainer: no such key. The config has: hydra, ckpt_path, accelerator, ..."
            "eval",
            ["ckpt_path=x.ckpt", "trainer.accelerator=cpu"],
            "trainer.accelerator: no such key. Did you mean accelerator? `python eval.py --cfg job` shows every key.",
        ),
        (  # train.py's config group: "Could not override 'data'. No match in the defaults list. To append ... +data"
            "eval",
            ["ckpt_path=x.ckpt", "data=boston"],
            "data=... is not an option of python eval.py: `python eval.py --help` shows its options.",
        ),
        (  # one inside it: it listed train.py's config groups
            "eval",
            ["ckpt_path=x.ckpt", "data/foo=bar"],
            "data=... is not an option of python eval.py: `python eval.py --help` shows its options.",
        ),
    ],
)
def test_what_each_script_cannot_compose_names_its_own_fix(script, overrides, message):
    with pytest.raises(HydraException) as caught, initialize_config_dir(config_dir=CONF, version_base="1.3"):
        compose(script, overrides)
    assert config_mistake(caught.value, f"python {script}.py", ROOT / "conf", REFUSED_KEYS) == message


def test_a_sweep_job_refused_so_records_why(tmp_path, monkeypatch):
    """The refusal came before the job's metrics.json: the sweep's summary said `failed: seed=1: None`."""
    from dlbasics.run import train

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", [f"run_dir={tmp_path}", "+foo=1", "logger=none"], return_hydra_config=True)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    HydraConfig.instance().set_config(cfg)
    with pytest.raises(UserError):
        train(cfg)
    assert read_metrics(tmp_path)["error"].startswith("+foo=1: nothing reads foo, so it would change nothing.")


def test_a_key_added_to_what_a_class_takes_is_its_to_check(monkeypatch):
    added = ["+optimizer.amsgrad=true", "+callbacks.data_fit.rows=100", "+trainer.min_epochs=2", "++seed=3"]
    lr_monitor = "+callbacks.lr={_target_:lightning.pytorch.callbacks.LearningRateMonitor}"
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", [*added, lr_monitor, "+logger.tensorboard.flush_secs=5"], return_hydra_config=True)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    HydraConfig.instance().set_config(cfg)
    check_added(cfg)  # each is read: by Adam, DataFit, the Trainer, the run, the callback, SummaryWriter


@pytest.mark.parametrize("override, where", [("data.batch_size", "data"), ("model.width", "model.width")])
def test_an_interpolation_that_names_nothing_is_a_users_mistake(tmp_path, capsys, override, where):
    from dlbasics.command import cli
    from dlbasics.run import train

    with pytest.raises(SystemExit) as exit:
        cli(train, make_cfg(tmp_path, f"{override}=${{nope}}", "logger=none"))
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        f"error: {where}: Interpolation key 'nope' not found: a ${{...}} names a key of the config, "
        "or an environment variable.\n"
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["~model"], "error: model is needed and not in the config (taken out with ~model?).\n"),
        (["data=csv"], "error: data.path is required: add data.path=... to the command line.\n"),
    ],
)
def test_a_config_without_what_the_run_needs_is_a_users_mistake(tmp_path, capsys, overrides, message):
    from dlbasics.command import cli
    from dlbasics.run import train

    with pytest.raises(SystemExit) as exit:
        cli(train, make_cfg(tmp_path, *overrides, "logger=none"))
    assert exit.value.code == 2 and capsys.readouterr().err == message


def test_a_package_not_installed_is_a_users_mistake_unless_it_is_ours():
    """DeviceStatsMonitor on the CPU without psutil, trainer.accelerator=tpu without torch_xla: one line; a module
    of ours that is not there is a bug, and keeps its traceback."""
    from dlbasics.errors import user_mistake

    missing = ModuleNotFoundError("No module named 'psutil'", name="psutil")
    assert str(user_mistake(missing)) == (
        "No module named 'psutil': an option given needs a package that is not installed."
    )
    assert user_mistake(ModuleNotFoundError("No module named 'dlbasics.figuers'", name="dlbasics.figuers")) is None


def test_a_value_is_written_as_hydra_reads_it():
    """The resume line's and eval.py hint's paths: quoted where Hydra's grammar would read them otherwise, a sweep
    job's (=) as a directory named in another script."""
    from dlbasics.errors import as_typed

    assert as_typed("logs/multiruns/X/optimizer.lr=0.1") == '"logs/multiruns/X/optimizer.lr=0.1"'
    assert as_typed("logs/価格") == '"logs/価格"'
    assert as_typed("logs/iris-mlp/2026-12-01_18-00-00") == "logs/iris-mlp/2026-12-01_18-00-00"


def test_a_path_given_from_home_is_read_there(tmp_path, monkeypatch, make_csv):
    """'data.path="~/x.csv"' (Hydra takes a ~ only quoted, and the shell then leaves it as it is): `no file
    '~/x.csv' in` the project. ~ is the home directory, as in a shell, for every path a user gives."""
    from dlbasics.command import from_launch_directory

    monkeypatch.setenv("HOME", str(tmp_path))
    make_csv(kind="regression", name="x.csv", features=2)
    cfg = make_cfg(tmp_path / "run", "data=csv", 'data.path="~/x.csv"', "data.target=y")
    from_launch_directory(cfg)
    data, _, _ = build(cfg, tmp_path / "run")
    assert cfg.data.path == str(tmp_path / "x.csv") and data.meta["n_features"] == 2


@pytest.mark.parametrize("key, start", [("hydra.run.dir", "on_run_start"), ("hydra.sweep.dir", "on_multirun_start")])
def test_a_run_directory_given_from_home_is_made_there(tmp_path, monkeypatch, key, start):
    """'hydra.run.dir="~/runs/a"' made ./~/runs/a, a directory named ~ (which `rm -rf ~` then takes for the home):
    Hydra takes the path as it is. A sweep's jobs compose their config again from its overrides."""
    from dlbasics.command import OutputDirectory

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", [f'{key}="~/runs/a"'], return_hydra_config=True)
    getattr(OutputDirectory(), start)(cfg)
    home = tmp_path / "home" / "runs" / "a"
    assert OmegaConf.select(cfg, key) == str(home) and home.is_dir() and not (tmp_path / "~").exists()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):  # as Hydra composes a sweep's job
        job = compose("train", list(cfg.hydra.overrides.hydra), return_hydra_config=True)
    assert OmegaConf.select(job, key) == str(home)


def test_a_run_from_home_says_where_it_went(tmp_path, monkeypatch):
    """The run's own line, from another directory: `Run directory: /CWD/~/runs/a`."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    args = ['hydra.run.dir="~/runs/a"', f"data.path={ROOT}/data/iris.csv", "trainer.max_epochs=1", "logger=none"]
    run = run_script(str(ROOT / "train.py"), *args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"Run directory: {tmp_path}/home/runs/a\n" in run.stdout and not (tmp_path / "~").exists()
