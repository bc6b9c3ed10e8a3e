"""Optimiser and learning-rate schedule of a run, from ``training.optimizer`` / ``lr`` /
``weight_decay`` / ``momentum`` / ``nesterov`` and ``training.scheduler`` / ``scheduler_*`` /
``poly_power`` / ``epochs``.

Schedules step once per epoch; ``plateau`` steps on the validated epochs with the monitored value
(:func:`is_plateau`), every other schedule after every epoch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Scheduler = Any  # torch's LRScheduler or ReduceLROnPlateau (no common public base class)


def build_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """``adam`` (default), ``adamw`` or ``sgd`` (momentum 0.9 unless set) over the model's
    parameters."""
    name = cfg.get("optimizer", "adam")
    lr, wd = float(cfg.get("lr", 1e-3)), float(cfg.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=float(cfg.get("momentum", 0.9)),
            nesterov=bool(cfg.get("nesterov", False)),
            weight_decay=wd,
        )
    raise ValueError(f"training.optimizer must be adam, adamw or sgd, got {name!r}")


def build_scheduler(opt: torch.optim.Optimizer, cfg: dict[str, Any]) -> Scheduler | None:
    """``none`` (default: None), ``plateau`` (mode max on ``val_score``, min on ``val_loss``),
    ``cosine`` (T_max = epochs) or ``poly`` (total_iters = epochs)."""
    name = cfg.get("scheduler", "none")
    if name == "none":
        return None
    if name == "plateau":
        monitor = cfg.get("scheduler_monitor", "val_score")
        if monitor not in ("val_score", "val_loss"):
            raise ValueError(
                f"training.scheduler_monitor must be val_score or val_loss, got {monitor!r}"
            )
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="max" if monitor == "val_score" else "min",
            factor=float(cfg.get("scheduler_factor", 0.5)),
            patience=int(cfg.get("scheduler_patience", 5)),
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg["epochs"]))
    if name == "poly":
        return torch.optim.lr_scheduler.PolynomialLR(
            opt, total_iters=int(cfg["epochs"]), power=float(cfg.get("poly_power", 0.9))
        )
    raise ValueError(f"training.scheduler must be none, plateau, cosine or poly, got {name!r}")


def is_plateau(sched: Scheduler | None) -> bool:
    """Whether ``sched`` steps on a monitored value (after a validation) rather than per epoch."""
    return isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
