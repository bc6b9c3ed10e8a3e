"""Tables in the papers' layouts, written as CSV, Markdown and LaTeX (booktabs).

Two layouts per dataset, both with one row per (model, fraction, loss) and blocks of rows per
(model, fraction), as in paper 000 Table 1 / paper 003 Tables 2-3 / paper 004 Tables 2-4:

* :func:`paper_table`: the main metric (``report.metric``, IoU or Dice) as its class mean and
  per class (paper 000 Table 1, paper 003 Table 2).
* :func:`metrics_table`: one column per run-level metric (mIoU, mDSC, mNSD, mHD95, NLL, ECE,
  MCE, Brier: those the runs computed), with the direction arrow of each (paper 002 Table 1,
  paper 004 Tables 2-4).

Cells are mean ± std over the replicates of the cell (``replicate="run"``: every (seed, fold)
run; ``"seed"``: the folds of each seed averaged first, then over seeds, paper 000's reading),
computed with :func:`segbench.stats.summarize` (sample std, ddof=1; a single replicate shows
no ±). Best mean per (model, fraction) block and column in bold, second underlined; "best"
follows the metric's direction. Diverged runs are counted (``runs``, ``diverged`` columns) and
excluded from the means.

Every Markdown and LaTeX table carries, under its title / in its caption, the sentence of
:func:`segbench.reporting.notes.header_note` saying how the run-level means were formed
(``evaluation.aggregate``: per-image or one confusion matrix per test fold); the CSV stays a
plain table (same cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from segbench.reporting import common
from segbench.stats import summarize

BLOCK = ["model", "fraction"]
ROW = ["model", "fraction", "loss"]


def _column_stats(
    values: pd.DataFrame, value: str, label: str, factor: float, hib: bool, digits: int, unit
) -> pd.DataFrame:
    """mean/std/n per (model, fraction, loss) of one column, scaled by ``factor``."""
    data = values[[*ROW, "seed", "fold", value]].copy()
    data[value] = data[value].astype(float) * factor
    stat = summarize(data, by=ROW, value=value, unit=unit, n_boot=1000)
    stat = stat.drop(columns=["ci_lo", "ci_hi", "n_nan"])
    if stat.empty:  # every run of the dataset diverged: keep the column's metadata
        stat = pd.DataFrame({c: [np.nan] for c in stat.columns})
    stat["column"], stat["hib"], stat["digits"] = label, hib, digits
    return stat


def _finish(
    parts: list[pd.DataFrame],
    tidy_ds: pd.DataFrame,
    loss_order: Sequence[str] | None,
    model_order: Sequence[str] | None,
) -> pd.DataFrame:
    """Every (cell, column) of the dataset (cells whose runs all diverged get NaN), ranks per
    block and column, run counts, and the row order of the papers."""
    meta = pd.DataFrame(
        [
            {"column": p["column"].iloc[0], "hib": p["hib"].iloc[0], "digits": p["digits"].iloc[0]}
            for p in parts
        ]
    )
    stats = pd.concat(parts, ignore_index=True).drop(columns=["hib", "digits"])
    counts = common.run_counts(tidy_ds, ROW)
    stats = stats.dropna(subset=ROW).astype({c: counts[c].dtype for c in ROW})
    long = counts.merge(meta, how="cross").merge(stats, on=[*ROW, "column"], how="left")
    score = np.where(long["hib"].astype(bool), long["mean"], -long["mean"])
    long["rank"] = (
        long.assign(_score=score)
        .groupby([*BLOCK, "column"], sort=False)["_score"]
        .rank(ascending=False, method="min")
    )
    models = common.ordered(sorted(long["model"].unique()), model_order)
    losses = common.ordered(tidy_ds["loss"], loss_order)
    fracs = common.fraction_order(long["fraction"])
    cols = list(meta["column"])
    keys = pd.DataFrame(
        {
            "m": long["model"].map(models.index),
            "f": long["fraction"].map(fracs.index),
            "l": long["loss"].map(losses.index),
            "c": long["column"].map(cols.index),
        }
    )
    order = keys.sort_values(["m", "f", "l", "c"], kind="stable").index
    return long.loc[order].reset_index(drop=True)


def _dataset_rows(tidy: pd.DataFrame, dataset: str) -> pd.DataFrame:
    sub = tidy[tidy["dataset"] == dataset]
    if sub.empty:
        raise ValueError(f"no runs of dataset {dataset!r} in the tidy table")
    return sub


def paper_table(
    tidy: pd.DataFrame,
    dataset: str,
    metric: str = "iou",
    scale: float = 100.0,
    loss_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
    replicate: str = "run",
) -> pd.DataFrame:
    """Long-form table of the main metric for one dataset (paper 000 Table 1 layout).

    Columns of the printed table: the class mean (``m<metric>``, as the run computed it, with or
    without background per ``include_background``) then each class (all classes, background
    too, in label order).

    Returns:
        One row per (model, fraction, loss, column): ``mean``, ``std`` (NaN for one replicate),
        ``n`` (replicates), ``rank`` in its (model, fraction, column) block (1 = best),
        ``hib``, ``digits``, ``n_runs``, ``n_diverged``.
    """
    sub = _dataset_rows(tidy, dataset)
    info = common.metric_info(metric)
    unit = common.replicate_unit(replicate)
    runs = common.completed_runs(sub)
    factor = info.scale(scale)
    parts = [
        _column_stats(runs, info.name, info.label, factor, info.higher_is_better, info.digits, unit)
    ]
    done = sub[sub["status"] == "completed"]
    for name in dict.fromkeys(sub.sort_values("class", kind="stable")["class_name"].astype(str)):
        rows = done[done["class_name"].astype(str) == name]
        parts.append(
            _column_stats(
                rows, info.class_col, name, factor, info.higher_is_better, info.digits, unit
            )
        )
    return _finish(parts, sub, loss_order, model_order)


def metrics_table(
    tidy: pd.DataFrame,
    dataset: str,
    metrics: Sequence[str] | None = None,
    scale: float = 100.0,
    loss_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
    replicate: str = "run",
) -> pd.DataFrame:
    """Long-form table with one column per run-level metric (paper 002 Table 1 layout).

    Args:
        metrics: run-level metrics to show (default: every one the runs computed, in the order
            mIoU, mDSC, mNSD, mHD95, NLL, ECE, MCE, Brier); metrics without values are skipped.

    Returns:
        As :func:`paper_table`; column labels carry the direction arrow (↑ / ↓) and the unit.
    """
    sub = _dataset_rows(tidy, dataset)
    unit = common.replicate_unit(replicate)
    runs = common.completed_runs(sub)
    names = common.available_metrics(sub, metrics)
    if not names:
        raise ValueError(f"none of the metrics {metrics} has values for dataset {dataset!r}")
    parts = []
    for name in names:
        info = common.metric_info(name)
        label = info.label + (" (%)" if info.percent and scale == 100 else "")
        label += " ↑" if info.higher_is_better else " ↓"
        parts.append(
            _column_stats(
                runs, name, label, info.scale(scale), info.higher_is_better, info.digits, unit
            )
        )
    return _finish(parts, sub, loss_order, model_order)


def _fmt(mean: float, std: float, rank: float, digits: int, style: str) -> str:
    pm = "$\\pm$" if style == "latex" else "±"
    text = f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f}{pm}{std:.{digits}f}"
    if rank == 1:
        return {"md": f"**{text}**", "latex": f"\\textbf{{{text}}}", "csv": text}[style]
    if rank == 2:
        return {"md": f"<u>{text}</u>", "latex": f"\\underline{{{text}}}", "csv": text}[style]
    return text


def wide(long: pd.DataFrame, style: str) -> pd.DataFrame:
    """Wide layout: one row per (model, fraction, loss), one column per metric column, then
    ``runs`` (runs of the cell) and ``diverged`` (how many of them diverged)."""
    columns = list(dict.fromkeys(long["column"]))
    rows: list[dict[str, Any]] = []
    for (model, fraction, loss), g in long.groupby(ROW, sort=False):
        row: dict[str, Any] = {"model": model, "fraction": fraction, "loss": loss}
        for col in columns:
            row[col] = "n/a"
        for _, r in g.iterrows():
            if not pd.isna(r["mean"]):
                row[r["column"]] = _fmt(r["mean"], r["std"], r["rank"], int(r["digits"]), style)
        row["runs"] = int(g["n_runs"].iloc[0])
        row["diverged"] = int(g["n_diverged"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*ROW, *columns, "runs", "diverged"])


def to_markdown(long: pd.DataFrame, title: str, note: str | None = None) -> str:
    """Markdown table (best **bold**, second <u>underlined</u>) under a ``###`` title.

    Args:
        note: a line printed between the title and the table (the aggregation note,
            :func:`segbench.reporting.notes.header_note`); ``None`` prints none.
    """
    w = wide(long, "md")
    head = f"### {title}\n\n" + (f"{note}\n\n" if note else "")
    return head + frame_to_markdown(w)


def frame_to_markdown(df: pd.DataFrame) -> str:
    """A DataFrame as a plain GitHub-flavoured Markdown table (no index)."""
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = [
        "| " + " | ".join(_md_cell(v) for v in row) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join([header, sep, *body]) + "\n"


def _md_cell(value: Any) -> str:
    if isinstance(value, float):
        if np.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def latex_escape(text: str) -> str:
    """Escape LaTeX specials in plain text (arrows become math arrows)."""
    out = str(text)
    for a, b in (
        ("\\", "\\textbackslash{}"),
        ("_", "\\_"),
        ("%", "\\%"),
        ("&", "\\&"),
        ("#", "\\#"),
    ):
        out = out.replace(a, b)
    return out.replace("↑", "$\\uparrow$").replace("↓", "$\\downarrow$")


def to_latex(long: pd.DataFrame, caption: str, note: str | None = None) -> str:
    """booktabs table; a ``\\midrule`` between (model, fraction) blocks.

    Args:
        note: appended to the caption (the aggregation note); ``None`` appends nothing.
    """
    w = wide(long, "latex")
    if note:
        caption = f"{caption}. {note}"
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(caption)}}}",
        "\\begin{tabular}{" + "l" * 3 + "c" * (len(w.columns) - 3) + "}",
        "\\toprule",
        " & ".join(latex_escape(c) for c in w.columns) + " \\\\",
        "\\midrule",
    ]
    prev = None
    for row in w.itertuples(index=False):
        block = (row[0], row[1])
        if prev is not None and block != prev:
            lines.append("\\midrule")
        prev = block
        cells = [latex_escape(v) if i < 3 else str(v) for i, v in enumerate(row)]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(long: pd.DataFrame) -> str:
    """CSV of the wide layout (plain ``mean±std`` text, no emphasis)."""
    return wide(long, "csv").to_csv(index=False)
