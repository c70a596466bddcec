"""python predict.py ckpt_path=PATH input=new.csv: predictions for new rows, beside their columns."""

from dlbasics.startup import starting

with starting():  # Ctrl-C while these import (seconds) is one line, not a traceback
    import hydra
    from omegaconf import DictConfig

    from dlbasics.run import cli, predict, shell


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    cli(predict, cfg)


if __name__ == "__main__":
    shell(main)
