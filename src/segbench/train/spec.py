"""What the engine is given (:class:`RunSpec`) and what it returns (:class:`TrainResult`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunSpec:
    """Everything that defines one run; its hash decides whether a checkpoint may be resumed."""

    dataset: str
    model: str
    loss: str
    fraction: str
    seed: int
    fold: int
    model_cfg: dict[str, Any]
    loss_cfg: dict[str, Any]
    training: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "loss": self.loss,
            "fraction": self.fraction,
            "seed": self.seed,
            "fold": self.fold,
            "model_cfg": self.model_cfg,
            "loss_cfg": self.loss_cfg,
            "training": self.training,
            "evaluation": self.evaluation,
        }

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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
