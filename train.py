"""python train.py [data=iris] [model=mlp] [key=value ...]: train, test and log one model (or a sweep with -m)."""

from dlbasics.startup import starting

with starting():  # Ctrl-C while these import is one line, not a traceback
    import hydra
    from omegaconf import DictConfig

    from dlbasics.command import cli, shell  # the config's resolvers, and no Lightning


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from dlbasics.run import monitored, train  # Lightning (seconds), only where a job runs: --help answers at once

    return monitored(cli(train, cfg), cfg)


if __name__ == "__main__":
    shell(main)
