"""python train.py [data=iris] [model=mlp] [key=value ...]: train, test and log one model (or a sweep with -m)."""

from dlbasics.startup import starting

with starting():  # Ctrl-C while these import (seconds) is one line, not a traceback
    import hydra
    from omegaconf import DictConfig

    from dlbasics.run import cli, monitored, shell, train  # run imports the sweep's resolver that names its jobs


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return monitored(cli(train, cfg), cfg)


if __name__ == "__main__":
    shell(main)
