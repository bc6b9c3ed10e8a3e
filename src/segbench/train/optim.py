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
    """``adam``, ``adamw`` or ``sgd`` (with ``momentum`` / ``nesterov``) over the model's
    parameters; ``cfg`` is a resolved ``training`` section (:func:`segbench.runspec.resolve_training`:
    defaults and allowed values are the schema's)."""
    name = cfg["optimizer"]
    lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=float(cfg["momentum"]),
            nesterov=bool(cfg["nesterov"]),
            weight_decay=wd,
        )
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    return cls(model.parameters(), lr=lr, weight_decay=wd)


def build_scheduler(opt: torch.optim.Optimizer, cfg: dict[str, Any]) -> Scheduler | None:
    """``none`` (None), ``plateau`` (mode max on ``val_score``, min on ``val_loss``),
    ``cosine`` (T_max = epochs) or ``poly`` (total_iters = epochs); ``cfg`` is a resolved
    ``training`` section."""
    name = cfg["scheduler"]
    if name == "none":
        return None
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="max" if cfg["scheduler_monitor"] == "val_score" else "min",
            factor=float(cfg["scheduler_factor"]),
            patience=int(cfg["scheduler_patience"]),
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg["epochs"]))
    return {"poly": torch.optim.lr_scheduler.PolynomialLR}[name](
        opt, total_iters=int(cfg["epochs"]), power=float(cfg["poly_power"])
    )


def is_plateau(sched: Scheduler | None) -> bool:
    """Whether ``sched`` steps on a monitored value (after a validation) rather than per epoch."""
    return isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
