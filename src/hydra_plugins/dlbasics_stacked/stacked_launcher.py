"""`hydra/launcher=stacked`: a sweep's jobs that differ only in learning rate and seed, trained as one model.

    python train.py -m optimizer.lr=1e-3,1e-2,1e-1 seed=0,1 hydra/launcher=stacked

Jobs whose configs are equal but for `optimizer.lr` and `seed` are trained side by side in one
Lightning run (dlbasics.stacked); any other job runs on its own, as Hydra's basic launcher runs it.
Every job gets what Hydra gives a job: its directory with .hydra/, its log, on_job_start and
on_job_end callbacks, and a JobReturn holding what the task would have returned.
"""

import copy
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType, ValueType
from hydra.core.utils import JobReturn, JobStatus, _save_config, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.dlbasics_stacked.stacked_launcher.StackedLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="dlbasics")


class StackedLauncher(Launcher):
    def setup(self, *, hydra_context, task_function, config) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        # The sweeper composes every job of a batch to check it before launching it (0.1-0.15 s each), and
        # shares this context with the launcher: both get the configs that _config() derives, composed once.
        self._composed: dict = {}
        self._loader = getattr(hydra_context.config_loader, "loader", hydra_context.config_loader)
        hydra_context.config_loader = _Deriving(self._loader, self)

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        from dlbasics.stacked import stack_key

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs, stacks = [], defaultdict(list)
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            config = self._config(list(overrides))
            with open_dict(config):
                config.hydra.job.id = config.hydra.job.num = idx
            task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
            key = stack_key(task) if not config.hydra.job.chdir else None
            stacks[key if key is not None else f"alone {idx}"].append(len(configs))
            configs.append(config)
        returns: list[JobReturn | None] = [None] * len(configs)
        sizes = [len(jobs) for jobs in stacks.values()]
        stacked = [n for n in sizes if n > 1]
        alone = len(configs) - sum(stacked)
        log.info(f"Launching {len(configs)} jobs locally: {sum(stacked)} in {len(stacked)} stack(s), {alone} alone")
        for jobs in stacks.values():
            for j in jobs:
                log.info(f"\t#{configs[j].hydra.job.num} : {' '.join(filter_overrides(job_overrides[j]))}")
            if len(jobs) == 1:
                returns[jobs[0]] = self._alone(configs[jobs[0]])
            else:
                for j, ret in zip(jobs, self._stacked([configs[j] for j in jobs]), strict=True):
                    returns[j] = ret
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns

    def _config(self, overrides: list[str]):
        """The job's config: composed by Hydra, or, for a job that differs from one already composed only in
        the values of `optimizer.lr` and `seed`, that config with those values (composing takes 0.15 s)."""
        from dlbasics.stacked import STACKED_KEYS

        composed = self._composed
        parsed = OverridesParser.create().parse_overrides(overrides)
        varied = [
            o for o in parsed
            if o.key_or_group in STACKED_KEYS and o.type == OverrideType.CHANGE and o.value_type == ValueType.ELEMENT
        ]  # fmt: skip
        # the same other overrides, and the same keys varied: then only those values differ
        rest = (tuple(o.input_line for o in parsed if o not in varied), tuple(o.key_or_group for o in varied))
        if rest not in composed:
            composed[rest] = self._loader.load_sweep_config(self.config, overrides)
        config = copy.deepcopy(composed[rest])
        for o in varied:
            OmegaConf.update(config, o.key_or_group, o.value())
        task = [o for o in parsed if not o.is_hydra_override()]
        job = config.hydra.job
        config.hydra.overrides.task = [o.input_line for o in task]
        job.override_dirname = get_overrides_dirname(
            task, job.config.override_dirname.exclude_keys, job.config.override_dirname.item_sep,
            job.config.override_dirname.kv_sep,
        )  # fmt: skip
        return config

    def _alone(self, config) -> JobReturn:
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )

    def _stacked(self, configs) -> list[JobReturn]:
        """As hydra.core.utils.run_job, for several jobs at once: set up every job, train them, end every job."""
        from dlbasics.run import monitored
        from dlbasics.stacked import train_stacked

        callbacks, original = self.hydra_context.callbacks, HydraConfig.instance().cfg
        returns, tasks = [], []
        try:
            for config in configs:
                HydraConfig.instance().set_config(config)
                output_dir = os.path.join(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir))
                with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
                    config.hydra.runtime.output_dir = os.path.abspath(output_dir)
                HydraConfig.instance().set_config(config)
                ret = JobReturn()
                ret.cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
                ret.hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
                ret.overrides = OmegaConf.to_container(config.hydra.overrides.task)
                ret.working_dir = os.getcwd()
                Path(output_dir).mkdir(parents=True, exist_ok=True)
                if config.hydra.output_subdir is not None:
                    saved = Path(config.hydra.runtime.output_dir) / str(config.hydra.output_subdir)
                    _save_config(ret.cfg, "config.yaml", saved)
                    _save_config(ret.hydra_cfg, "hydra.yaml", saved)
                    _save_config(config.hydra.overrides.task, "overrides.yaml", saved)
                task = copy.deepcopy(ret.cfg)
                OmegaConf.resolve(task)  # now, while HydraConfig is this job's: its run_dir is its own
                tasks.append(task)
                returns.append(ret)
                callbacks.on_job_start(config=config, task_function=self.task_function)
            to_file = _console_log(configs[0])
            try:
                results = train_stacked(tasks, log_name=configs[0].hydra.job.name if to_file else None)
                for ret, task, metrics in zip(returns, tasks, results, strict=True):
                    ret.return_value, ret.status = monitored(metrics, task), JobStatus.COMPLETED
            except Exception:  # a bug, not a user's mistake: every job of the stack failed (their metrics.json
                # say so), and the sweep goes on, as for a job run alone (dlbasics.run.cli)
                log.exception("These jobs failed; the sweep goes on.")
                for ret in returns:
                    ret.return_value, ret.status = None, JobStatus.COMPLETED
            for config, ret in zip(configs, returns, strict=True):
                ret.task_name = config.hydra.job.name
                callbacks.on_job_end(config=config, job_return=ret)
        finally:
            HydraConfig.instance().cfg = original
        return returns


class _Deriving:
    """Hydra's config loader, but a sweep job's config comes from StackedLauncher._config."""

    def __init__(self, loader, launcher: StackedLauncher):
        self.loader, self.launcher = loader, launcher

    def load_sweep_config(self, master_config, sweep_overrides: list[str]):
        return self.launcher._config(list(sweep_overrides))

    def __getattr__(self, name):
        return getattr(self.loader, name)


def _console_log(config) -> bool:
    """The job logging the config asks for, without its log file: each stacked job writes its own. Whether it
    asks for a log file (hydra/job_logging=console does not)."""
    logging_cfg = OmegaConf.to_container(config.hydra.job_logging, resolve=False)
    files = [k for k, h in logging_cfg.get("handlers", {}).items() if h.get("class", "").endswith("FileHandler")]
    for name in files:
        del logging_cfg["handlers"][name]
    for logger in [logging_cfg.get("root", {}), *logging_cfg.get("loggers", {}).values()]:
        logger["handlers"] = [h for h in logger.get("handlers", []) if h not in files]
    configure_log(OmegaConf.create(logging_cfg), config.hydra.verbose)
    return bool(files)
