"""Fixed synthetic run tables for the statistics tests."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

LOSS_EFFECT = {"ce": 0.0, "dice": 0.01, "dice_ce_0.5": 0.015, "caml": 0.03}


@pytest.fixture
def runs() -> pd.DataFrame:
    """One row per run: 2 datasets x 1 model x 2 fractions x 3 seeds x 5 folds x 4 losses.

    ``miou`` = cell baseline + loss effect + small noise, so pairing on the cell matters.
    """
    rng = np.random.default_rng(42)
    rows = []
    for dataset, fraction, seed, fold in itertools.product(
        ["covid", "droso"], ["1", "0.125"], [0, 1, 2], range(5)
    ):
        base = rng.uniform(0.4, 0.8)
        for loss, effect in LOSS_EFFECT.items():
            rows.append(
                {
                    "dataset": dataset,
                    "model": "unet",
                    "loss": loss,
                    "fraction": fraction,
                    "seed": seed,
                    "fold": fold,
                    "miou": base + effect + rng.normal(0, 0.004),
                    "hd95": 20.0 - 100 * effect + rng.normal(0, 0.3),
                }
            )
    return pd.DataFrame(rows)
