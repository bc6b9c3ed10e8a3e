"""Collect every run's ``metrics.json`` into one tidy table: one row per (run, class).

Columns: dataset, model, loss, fraction, seed, fold, status, class, class_name, n_valid, the
class metrics (iou, dice[, hd95, hd, nsd]) and the run-level metrics repeated on each row (miou,
mdice[, mhd95, mhd, mnsd], nll, brier, ece, mce, epochs_run, best_epoch, diverged_epoch). Every
table and figure is rebuilt from this table alone.

``aggregate`` (``evaluation.aggregate``) picks which of the two run-level aggregations that
every ``metrics.json`` holds fills the columns (docs/metrics.md "Aggregation"); the column names
are the same for both, so every table, test and figure works on either:

* ``"image"`` (default): the top-level keys (per-image means; images where a class is absent
  from both truth and prediction left out of that class).
* ``"dataset"``: iou, dice, miou, mdice, nll, brier, ece, mce from the ``dataset`` block (one
  confusion matrix / all pixels pooled over the test fold); hd95, hd, nsd and their means have
  no pooled form and stay the per-image means.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from segbench.rundir import read_metrics_json
from segbench.runspec import RUN_KEYS

__all__ = ["RUN_KEYS", "check_aggregate", "run_table", "tidy_from_metrics"]
AGGREGATES = ("image", "dataset")
CLASS_COLUMNS = ("class", "class_name", "n_valid", "iou", "dice", "hd95", "hd", "nsd")
"""Per-class columns of the tidy table (everything else is run-level)."""
RUN_METRIC_KEYS = {
    "miou": "mean_iou", "mdice": "mean_dice", "mhd95": "mean_hd95", "mhd": "mean_hd",
    "mnsd": "mean_nsd", "nll": "nll", "brier": "brier", "ece": "ece", "mce": "mce",
}  # fmt: skip
"""Run-level tidy column -> ``metrics.json`` key (top level, or the ``dataset`` block), in the
order of the table's columns."""
RESULT_KEYS = ("epochs_run", "best_epoch", "diverged_epoch")
"""Run-level tidy columns copied from ``metrics.json``'s ``result`` (the training summary)."""
DATASET_RUN_KEYS = {
    col: RUN_METRIC_KEYS[col] for col in ("miou", "mdice", "nll", "brier", "ece", "mce")
}
"""Run-level tidy columns taken from the ``dataset`` block when ``aggregate="dataset"`` (the
surface metrics have no pooled form)."""
DATASET_CLASS_KEYS = ("iou", "dice")
"""Per-class tidy columns taken from ``dataset.classes`` when ``aggregate="dataset"``."""


def check_aggregate(aggregate: str) -> str:
    """Return ``aggregate`` if it is ``"image"`` or ``"dataset"``, else raise ``ValueError``."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"evaluation.aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    return aggregate


def _dataset_block(m: dict[str, Any], path: str | Path) -> dict[str, Any]:
    block = m.get("dataset")
    if not isinstance(block, dict) or "classes" not in block:
        raise ValueError(
            f"{path}: no 'dataset' block (written by an evaluation older than "
            "evaluation.aggregate); re-run the evaluate rule or use evaluation.aggregate: image"
        )
    return block


def tidy_from_metrics(paths: Iterable[str | Path], aggregate: str = "image") -> pd.DataFrame:
    """Build the tidy table from metrics.json files (identity read from the files, not paths).

    Args:
        paths: metrics.json files.
        aggregate: ``"image"`` or ``"dataset"`` (module docstring).

    Raises:
        ValueError: no files, a bad ``aggregate``, or ``aggregate="dataset"`` on a file without
            the ``dataset`` block.
        RunFolderError: a metrics.json that is not valid (the message names it and the
            recovery; :func:`segbench.rundir.read_metrics_json`).
    """
    check_aggregate(aggregate)
    rows = []
    for path in paths:
        m = read_metrics_json(path)
        run = m["run"]
        res = m.get("result", {})
        base = {k: run[k] for k in RUN_KEYS}
        base["fraction"] = str(base["fraction"])
        base["status"] = m.get("status", "completed")
        base.update({col: m.get(key) for col, key in RUN_METRIC_KEYS.items()})
        base.update({key: res.get(key) for key in RESULT_KEYS})
        pooled: dict[int, dict[str, Any]] = {}
        if aggregate == "dataset":
            block = _dataset_block(m, path)
            for col, key in DATASET_RUN_KEYS.items():
                base[col] = block.get(key)
            pooled = {int(c["class"]): c for c in block["classes"]}
        for cls in m["classes"]:
            row = dict(base)
            row.update({k: cls.get(k) for k in CLASS_COLUMNS})
            if aggregate == "dataset":
                row.update(
                    {k: pooled.get(int(cls["class"]), {}).get(k) for k in DATASET_CLASS_KEYS}
                )
            rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("no metrics files to aggregate")
    df = df.dropna(axis=1, how="all")
    return df.sort_values([*RUN_KEYS, "class"], kind="stable").reset_index(drop=True)


def run_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per run (the run-level columns of the tidy table)."""
    run_cols = [c for c in tidy.columns if c not in CLASS_COLUMNS]
    return tidy[run_cols].drop_duplicates(subset=list(RUN_KEYS)).reset_index(drop=True)
