"""Training: the engine (``segbench.train.engine``) that turns one grid cell into a run folder."""

from segbench.train.engine import RunSpec, TrainResult, train_pack, train_run

__all__ = ["RunSpec", "TrainResult", "train_pack", "train_run"]
