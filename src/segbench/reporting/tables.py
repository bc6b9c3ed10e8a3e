"""Tables in the layout of paper 000 Table 1: rows model x fraction x loss; columns the mean
metric and the per-class metric; cells mean ± std over seeds and folds (std with ddof=1, as
papers report sample spread; a single run shows ± 0.00). Best mean per (dataset, model,
fraction) block in bold, second underlined. Written as CSV, Markdown and LaTeX (booktabs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segbench.reporting.aggregate import run_table


def _order(values: list[str], preferred: list[str] | None) -> list[str]:
    if not preferred:
        return values
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def paper_table(
    tidy: pd.DataFrame,
    dataset: str,
    metric: str = "iou",
    scale: float = 100.0,
    loss_order: list[str] | None = None,
    model_order: list[str] | None = None,
) -> pd.DataFrame:
    """Long-form table for one dataset: one row per (model, fraction, loss) with, per column
    (``m<metric>`` and each class), ``mean``, ``std``, ``n`` and the block rank of the mean.

    Diverged runs are counted (``n_diverged``) and excluded from means.
    """
    sub = tidy[tidy["dataset"] == dataset]
    if sub.empty:
        raise ValueError(f"no runs of dataset {dataset!r} in the tidy table")
    runs = run_table(sub)
    ok = runs[runs["status"] == "completed"]
    keys = ["model", "fraction", "loss"]
    mean_col = "m" + metric
    cols: dict[str, pd.Series] = {"m" + metric: ok.set_index([*keys, "seed", "fold"])[mean_col]}
    ok_cls = sub[sub["status"] == "completed"]
    for name in list(dict.fromkeys(sub.sort_values("class")["class_name"])):
        cols[name] = ok_cls[ok_cls["class_name"] == name].set_index([*keys, "seed", "fold"])[metric]
    out = []
    for col, series in cols.items():
        g = (series.astype(float) * scale).groupby(level=keys)
        stat = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.count()})
        stat["column"] = col
        out.append(stat.reset_index())
    long = pd.concat(out, ignore_index=True)
    long["rank"] = long.groupby(["model", "fraction", "column"])["mean"].rank(
        ascending=False, method="min"
    )
    counts = runs.groupby(keys).agg(
        n_runs=("status", "size"), n_diverged=("status", lambda s: int((s == "diverged").sum()))
    )
    long = long.merge(counts.reset_index(), on=keys, how="left")
    long["model"] = pd.Categorical(
        long["model"], _order(sorted(long["model"].unique()), model_order)
    )
    long["loss"] = pd.Categorical(
        long["loss"], _order(list(dict.fromkeys(sub["loss"])), loss_order)
    )
    long["fraction_f"] = long["fraction"].astype(float)
    long = long.sort_values(["model", "fraction_f", "loss"], ascending=[True, False, True])
    return long.drop(columns="fraction_f").reset_index(drop=True)


def _fmt(mean: float, std: float, rank: float, style: str) -> str:
    if np.isnan(mean):
        return "n/a"
    text = f"{mean:.2f}±{std:.2f}" if style != "latex" else f"{mean:.2f}$\\pm${std:.2f}"
    if rank == 1:
        return {"md": f"**{text}**", "latex": f"\\textbf{{{text}}}", "csv": text}[style]
    if rank == 2:
        return {"md": f"<u>{text}</u>", "latex": f"\\underline{{{text}}}", "csv": text}[style]
    return text


def wide(long: pd.DataFrame, style: str) -> pd.DataFrame:
    """Wide layout: one row per (model, fraction, loss), one column per metric column."""
    columns = list(dict.fromkeys(long["column"]))
    rows: list[dict[str, Any]] = []
    for (model, fraction, loss), g in long.groupby(
        ["model", "fraction", "loss"], sort=False, observed=True
    ):
        row: dict[str, Any] = {"model": model, "fraction": fraction, "loss": loss}
        for _, r in g.iterrows():
            row[r["column"]] = _fmt(r["mean"], r["std"], r["rank"], style)
        row["runs"] = int(g["n_runs"].iloc[0])
        row["diverged"] = int(g["n_diverged"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", "fraction", "loss", *columns, "runs", "diverged"])


def to_markdown(long: pd.DataFrame, title: str) -> str:
    w = wide(long, "md")
    header = "| " + " | ".join(w.columns) + " |"
    sep = "|" + "|".join("---" for _ in w.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in w.itertuples(index=False)]
    return f"### {title}\n\n" + "\n".join([header, sep, *body]) + "\n"


def to_latex(long: pd.DataFrame, caption: str) -> str:
    w = wide(long, "latex")
    esc = [str(c).replace("_", "\\_") for c in w.columns]
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{caption}}}",
        "\\begin{tabular}{" + "l" * 3 + "c" * (len(w.columns) - 3) + "}",
        "\\toprule",
        " & ".join(esc) + " \\\\",
        "\\midrule",
    ]
    prev = None
    for row in w.itertuples(index=False):
        block = (row[0], row[1])
        if prev is not None and block != prev:
            lines.append("\\midrule")
        prev = block
        lines.append(
            " & ".join(str(v).replace("_", "\\_") if i < 3 else str(v) for i, v in enumerate(row))
            + " \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(long: pd.DataFrame) -> str:
    return wide(long, "csv").to_csv(index=False)
