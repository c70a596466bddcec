import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
# Every run of the suite, in this process and in the ones it starts, trains on the CPU, where its numbers and
# bitwise checks hold, also on a machine with a GPU or Apple's MPS; benchmarks/gpu.sh is the GPU's check.
os.environ["DLBASICS_ACCELERATOR"] = "cpu"


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    """Configs name data files relative to the project, as a user running train.py there does."""
    monkeypatch.chdir(ROOT)


def make_cfg(tmp_path: Path, *overrides: str, config: str = "train"):
    """The config `python train.py OVERRIDES` would run, writing into tmp_path."""
    defaults = [f'run_dir="{tmp_path}"', "trainer.max_epochs=3"] if config == "train" else []  # quoted: a = in it
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config, [*defaults, *overrides])


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def read_hparams(run_dir: Path) -> dict:
    """A run's options as TensorBoard's HPARAMS tab shows them (its one session start), by name."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    (start,) = [
        value.metadata.plugin_data.content
        for path in run_dir.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(path)).Load()
        for value in event.summary.value
        if value.tag == "_hparams_/session_start_info"
    ]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    return {k: v.string_value if v.HasField("string_value") else v.number_value for k, v in hparams.items()}


def run_script(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def make_csv(tmp_path):
    """Writes a generated CSV: n rows of `features` numeric columns and a target of the given kind."""

    def make(n=60, features=3, kind="multiclass", name="gen.csv", seed=0):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, features))
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
        if kind == "regression":
            frame["y"] = x @ rng.normal(size=features) + 0.1 * rng.normal(size=n)
        elif kind == "binary":
            frame["y"] = np.where(x[:, 0] > 0, "yes", "no")
        else:
            frame["y"] = np.digitize(x[:, 0], [-0.5, 0.5])
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return make
