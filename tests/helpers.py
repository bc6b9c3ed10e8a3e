"""Helpers shared by several test packages: the run spec of a tiny CPU training.

``tiny_spec()`` is the one place that spells a whole :class:`~segbench.runspec.RunSpec` for the
tests (identity, model, loss, training, evaluation); a test names only the fields it changes.
"""

from __future__ import annotations

from typing import Any

from segbench.runspec import RunSpec

#: The training section of the tiny CPU runs: 5 epochs of 3 steps of 4 crops of 24 pixels,
#: deterministic on one thread, a checkpoint every epoch (resume tests kill at any step).
TRAINING: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 0.003,
    "batch_size": 4,
    "epochs": 5,
    "steps_per_epoch": 3,
    "crop": 24,
    "hflip": True,
    "val_every": 1,
    "checkpoint_every": 1,
    "device": "cpu",
    "threads": 1,
    "deterministic": True,
    "amp": True,
    "scheduler": "none",
    "early_stopping": None,
}

#: The small U-Net of the tiny runs (4 base channels, 2 downsamplings: input multiple of 4).
TINY_UNET: dict[str, Any] = {"name": "unet", "base_channels": 4, "depth": 2}


def tiny_spec(**fields: Any) -> RunSpec:
    """The run spec of a tiny training; ``fields`` replace any of its fields.

    Defaults: dataset ``tiny`` (``tests/conftest.py``'s ``tiny_prepared``), model ``m`` =
    :data:`TINY_UNET`, loss ``dice_ce`` with weights 0.5 / 0.5, fraction ``"1"``, seed 0,
    fold 0, training :data:`TRAINING`, evaluation with the background class included.
    """
    base: dict[str, Any] = {
        "dataset": "tiny",
        "model": "m",
        "loss": "dice_ce",
        "fraction": "1",
        "seed": 0,
        "fold": 0,
        "model_cfg": dict(TINY_UNET),
        "loss_cfg": {"name": "dice_ce", "w_dice": 0.5, "w_ce": 0.5},
        "training": dict(TRAINING),
        "evaluation": {"include_background": True},
    }
    return RunSpec(**{**base, **fields})
