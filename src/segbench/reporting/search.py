"""Selection step of a random hyper-parameter search (paper 002): keep the best configurations
by validation score, then tabulate their test metrics.

Paper 002 (../shared/papers/002_bd5429997cd2b0b6.txt): "We conduct a random hyperparameter
search to find the optimal configuration for each setup with 25 and 10 runs for our 2D and 3D
datasets, respectively" (l.118); Table 1 is the "Average test set performance of the 5 best runs
out of 25 (selected through validation dice scores)" (l.95); Table 2 the "Best out of 10 runs
(selected through validation dice scores)" (l.122).

Conventions (documented choices where the paper is silent; docs/studies.md):

* A search configuration i of loss ``L`` is the run folder(s) of loss key ``L~hp{i:02d}`` with
  seed i (:func:`segbench.config.search_configs`); its identity is read from ``run.json``
  (``config.training.search``), never from the folder name.
* **Validation score** of a run: ``result.best_val`` of ``run.json``, the best validation-set
  mIoU over the validated epochs (dataset-level confusion, ``include_background`` as
  configured), i.e. the score of the checkpoint whose test predictions are tabulated. With one
  scored class (paper 002: binary, foreground only) the pooled validation Dice is
  ``2 IoU / (1 + IoU)``, a strictly increasing function of it, so the order is exactly the
  paper's "validation dice"; ``val_dice`` is reported then. With several scored classes the
  engine records no validation Dice and the ranking is by validation mIoU (``val_dice`` empty).
* **Score of a configuration**: the mean of its runs' validation scores (several folds); a
  configuration with a diverged (or unvalidated) run is not eligible (``kept`` false).
* **Selection**: per (dataset, model, loss, fraction) the ``keep`` eligible configurations with
  the highest score are kept (ties: the lower index first); fewer than ``keep`` eligible keeps
  them all (the selection table shows it).
* **Tables**: the kept runs enter the tidy table under the base loss key (seed = configuration
  index, so each kept configuration is one replicate); mean ± std over them is the paper's
  "average ... of the 5 best runs" (Table 1) and, with keep = 1, the single "best out of 10"
  (Table 2). Runs of blocks without a search pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segbench.rundir import read_run_json
from segbench.runspec import RUN_KEYS

SELECTION_TABLE = "results/tables/search_selection.csv"
SELECTION_MD = "results/tables/search_selection.md"
SELECTED_TIDY = "results/tables/tidy_selected.csv"
CELL = ["dataset", "model", "loss", "fraction"]


def read_search_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per search run from its ``run.json``: identity, search identity, validation
    score, status and the sampled values (``training.lr``, ``loss.alpha``, ...)."""
    rows = []
    for path in paths:
        run = read_run_json(path, require=("run", "config", "result", "num_classes"))
        search = run["config"]["training"].get("search")
        if search is None:
            raise ValueError(f"{path}: run.json has no config.training.search (not a search run)")
        res = run["result"]
        include_bg = bool(run["config"].get("evaluation", {}).get("include_background", True))
        n_scored = int(run["num_classes"]) - (0 if include_bg else 1)
        best = float(res["best_val"])
        validated = int(res.get("best_epoch", -1)) > 0 and best >= 0
        ok = res["status"] == "completed" and validated
        row: dict[str, Any] = {
            "dataset": run["run"]["dataset"],
            "model": run["run"]["model"],
            "loss": search["loss"],
            "fraction": str(run["run"]["fraction"]),
            "config": int(search["config"]),
            "search_loss": run["run"]["loss"],
            "seed": int(run["run"]["seed"]),
            "fold": int(run["run"]["fold"]),
            "status": res["status"],
            "val_miou": best if ok else np.nan,
            "val_dice": 2 * best / (1 + best) if ok and n_scored == 1 else np.nan,
            "best_epoch": int(res.get("best_epoch", -1)),
        }
        row.update({k: v for k, v in sorted(search.get("sampled", {}).items())})
        rows.append(row)
    if not rows:
        raise ValueError("no search runs to select from")
    return pd.DataFrame(rows)


def select_configs(runs: pd.DataFrame, keep: Mapping[str, int]) -> pd.DataFrame:
    """Rank the configurations of each (dataset, model, loss, fraction) and mark the kept ones.

    Args:
        runs: :func:`read_search_runs` rows.
        keep: base loss key -> number of configurations kept (``search.keep``).

    Returns:
        One row per configuration: the cell, ``config``, ``search_loss``, ``n_runs``,
        ``val_miou`` / ``val_dice`` (mean over its runs), ``eligible``, ``rank`` (1 = best
        eligible; empty when not eligible), ``kept`` and the sampled values; sorted by cell,
        then rank.
    """
    sampled = [c for c in runs.columns if c.startswith(("training.", "loss."))]
    grouped = runs.groupby([*CELL, "config", "search_loss"], sort=True)
    table = grouped.agg(
        n_runs=("status", "size"),
        n_completed=("status", lambda s: int((s == "completed").sum())),
        val_miou=("val_miou", lambda s: s.mean() if s.notna().all() else np.nan),
        val_dice=("val_dice", lambda s: s.mean() if s.notna().all() else np.nan),
    ).reset_index()
    if sampled:
        table = table.merge(
            grouped[sampled].first().reset_index(), on=[*CELL, "config", "search_loss"]
        )
    table["eligible"] = table["val_miou"].notna()
    parts = []
    for _, g in table.groupby(CELL, sort=True):
        loss = str(g["loss"].iloc[0])
        if loss not in keep:
            raise ValueError(f"no search.keep for loss {loss!r}; known: {sorted(keep)}")
        k = int(keep[loss])
        ok = g[g["eligible"]].sort_values(["val_miou", "config"], ascending=[False, True])
        rank = pd.Series(np.arange(1, len(ok) + 1), index=ok.index)
        g = g.assign(rank=rank.reindex(g.index).astype("Int64"), keep=k)
        g["kept"] = g["rank"].notna() & (g["rank"] <= k)
        g["kept"] = g["kept"].astype(bool)
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    out["_r"] = out["rank"].astype("float").fillna(np.inf)
    out = out.sort_values([*CELL, "_r", "config"], kind="stable").drop(columns="_r")
    cols = [*CELL, "config", "search_loss", "rank", "kept", "keep", "val_dice", "val_miou",
            "n_runs", "n_completed", "eligible", *sampled]  # fmt: skip
    return out[cols].reset_index(drop=True)


def selected_tidy(tidy: pd.DataFrame, selection: pd.DataFrame) -> pd.DataFrame:
    """The tidy table the tables are built from: runs of non-search losses unchanged, runs of
    kept configurations under their base loss key, the other search runs dropped.

    Raises:
        ValueError: a kept run would share its (dataset, model, loss, fraction, seed, fold) with
            a non-search run (check_study forbids such grids).
    """
    derived = set(selection["search_loss"])
    plain = tidy[~tidy["loss"].isin(derived)]
    kept = selection[selection["kept"]]
    rename = dict(zip(kept["search_loss"], kept["loss"], strict=True))
    chosen = tidy[tidy["loss"].isin(set(rename))].copy()
    chosen["loss"] = chosen["loss"].map(rename)
    keys = list(RUN_KEYS)
    clash = chosen[keys].drop_duplicates().merge(plain[keys].drop_duplicates())
    if not clash.empty:
        raise ValueError(
            f"kept search runs collide with non-search runs: {clash.to_dict('records')[:3]}"
        )
    out = pd.concat([plain, chosen], ignore_index=True)
    return out.sort_values([*RUN_KEYS, "class"], kind="stable").reset_index(drop=True)


def selection_markdown(selection: pd.DataFrame, title: str) -> str:
    """The selection table in Markdown (one row per configuration; kept ones marked)."""
    df = selection.copy()
    df["rank"] = df["rank"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    df["kept"] = df["kept"].map(lambda v: "**kept**" if v else "")

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = [
        "| " + " | ".join(str(c) for c in df.columns) + " |",
        "|" + "|".join("---" for _ in df.columns) + "|",
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)),
    ]
    return f"### {title}\n\n" + "\n".join(lines) + "\n"
