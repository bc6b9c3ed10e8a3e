"""Collect every run's ``metrics.json`` into one tidy table: one row per (run, class).

Columns: dataset, model, loss, fraction, seed, fold, status, class, class_name, n_valid, the
class metrics (iou, dice[, hd95, nsd]) and the run-level metrics repeated on each row (miou,
mdice[, mhd95, mnsd], nll, brier, ece, mce, epochs_run, best_epoch, diverged_epoch). Every table
and figure is rebuilt from this table alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

RUN_KEYS = ["dataset", "model", "loss", "fraction", "seed", "fold"]


def tidy_from_metrics(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Build the tidy table from metrics.json files (identity read from the files, not paths)."""
    rows = []
    for path in paths:
        m = json.loads(Path(path).read_text())
        run = m["run"]
        res = m.get("result", {})
        base = {k: run[k] for k in RUN_KEYS}
        base["fraction"] = str(base["fraction"])
        base.update(
            status=m.get("status", "completed"),
            miou=m.get("mean_iou"),
            mdice=m.get("mean_dice"),
            mhd95=m.get("mean_hd95"),
            mnsd=m.get("mean_nsd"),
            nll=m.get("nll"),
            brier=m.get("brier"),
            ece=m.get("ece"),
            mce=m.get("mce"),
            epochs_run=res.get("epochs_run"),
            best_epoch=res.get("best_epoch"),
            diverged_epoch=res.get("diverged_epoch"),
        )
        for cls in m["classes"]:
            row = dict(base)
            row.update(
                {
                    k: cls.get(k)
                    for k in ("class", "class_name", "n_valid", "iou", "dice", "hd95", "nsd")
                }
            )
            rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("no metrics files to aggregate")
    df = df.dropna(axis=1, how="all")
    return df.sort_values([*RUN_KEYS, "class"], kind="stable").reset_index(drop=True)


def run_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per run (the run-level columns of the tidy table)."""
    run_cols = [
        c
        for c in tidy.columns
        if c not in ("class", "class_name", "n_valid", "iou", "dice", "hd95", "nsd")
    ]
    return tidy[run_cols].drop_duplicates(subset=RUN_KEYS).reset_index(drop=True)
