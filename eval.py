"""python eval.py ckpt_path=PATH: test a checkpoint again, with the data preparation it holds."""

from dlbasics.startup import starting

with starting():  # Ctrl-C while these import is one line, not a traceback
    import hydra
    from omegaconf import DictConfig

    from dlbasics.command import cli, shell  # the config's resolvers, and no Lightning


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from dlbasics.run import evaluate  # Lightning (seconds), only where a job runs: --help answers at once

    cli(evaluate, cfg)


if __name__ == "__main__":
    shell(main)
