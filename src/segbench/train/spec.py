"""What the engine is given (:class:`~segbench.runspec.RunSpec`, defined in
:mod:`segbench.runspec` and re-exported here) and what it returns (:class:`TrainResult`)."""

from __future__ import annotations

from dataclasses import dataclass

from segbench.runspec import RunSpec

__all__ = ["RunSpec", "TrainResult"]


@dataclass
class TrainResult:
    """How a run ended (also written to ``run.json`` under ``result``)."""

    status: str
    epochs_run: int
    best_epoch: int
    best_val: float
    diverged_epoch: int | None
    resumed_from_epoch: int | None
    wall_seconds: float
