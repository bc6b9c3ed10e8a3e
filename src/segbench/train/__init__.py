"""Training: one grid cell -> one run folder, or the runs of a pack in one process.

Module map (docs/training.md): ``engine`` (the epoch loop, step strategies, ``train_run``,
``train_pack``), ``run`` (:class:`TrainingRun`, one run's state and outputs), ``spec``
(:class:`TrainResult`; :class:`RunSpec` is :mod:`segbench.runspec`'s, re-exported), ``stacked`` / ``interleaved`` (concurrent step
strategies), ``augment`` (crop, flips and the other augmentations), ``optim`` (optimiser and
schedule), ``validate`` (prediction, validation mIoU and loss), ``checkpoint`` (atomic outputs,
generator states), ``device`` (device choice, determinism), ``gpu_slots`` (GPU job slots).
"""

from segbench.train.engine import (
    STRATEGIES,
    SequentialSteps,
    StepStrategy,
    strategy_for,
    train_pack,
    train_run,
    train_runs,
)
from segbench.train.interleaved import InterleavedSteps
from segbench.train.run import TrainingRun
from segbench.train.spec import RunSpec, TrainResult
from segbench.train.stacked import StackedSteps

__all__ = [
    "STRATEGIES",
    "InterleavedSteps",
    "RunSpec",
    "SequentialSteps",
    "StackedSteps",
    "StepStrategy",
    "TrainResult",
    "TrainingRun",
    "strategy_for",
    "train_pack",
    "train_run",
    "train_runs",
]
