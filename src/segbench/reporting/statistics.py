"""Statistics tables of a study, all computed with :mod:`segbench.stats` (nothing hand-rolled).

* :func:`summary_table`: mean ± std, n and the 95 % percentile-bootstrap CI of the mean per
  (dataset, model, fraction, loss) and run-level metric (:func:`segbench.stats.summarize`).
* :func:`paired_table`: all loss pairs per (dataset, model, fraction) block, paired on
  (seed, fold), two-sided Wilcoxon signed-rank with Holm's correction per block
  (:func:`segbench.stats.paired_wilcoxon_holm`).
* :func:`friedman_analysis`: Friedman test, Nemenyi post-hoc and the critical difference over
  blocks (:func:`segbench.stats.friedman_nemenyi`, :func:`segbench.stats.critical_difference`);
  with fewer than 2 blocks or 3 common losses it returns the reason instead of failing.

Conventions: see :mod:`segbench.reporting.common` (diverged runs counted and excluded; overlap
metrics scaled by ``scale``; direction from the metric name). Means and differences in these
tables are in the scaled units (percent for IoU / Dice / NSD when ``scale = 100``).

Every Markdown table opens with :func:`table_note`: how a run's value is aggregated
(:func:`segbench.reporting.notes.aggregation_note` of ``evaluation.aggregate``) and what the
table's mean is over. A cell with one replicate shows ``mean (n=1)`` and no std (the papers
never give a ± over one run; 0 would read as perfect reproducibility). A paired comparison whose
smallest attainable Holm-adjusted p (``min_p_holm``, :func:`segbench.stats.min_attainable_p`:
``2 / 2^n`` for ``n`` non-zero pairs) is ``>= alpha`` is marked ``underpowered``, not "not
significant": no outcome of so few pairs could have been significant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segbench.reporting.common import (
    CELL_KEYS,
    available_metrics,
    completed_runs,
    fraction_order,
    metric_info,
    ordered,
    replicate_unit,
    run_counts,
)
from segbench.reporting.notes import aggregation_note
from segbench.reporting.tables import frame_to_markdown
from segbench.stats import (
    PAIR_KEYS,
    critical_difference,
    format_mean_std,
    friedman_nemenyi,
    paired_wilcoxon_holm,
    summarize,
)

BLOCK_KEYS = ["dataset", "model", "fraction"]
"""A comparison block: the losses of one (dataset, model, fraction) are compared."""


def _sort_cells(df: pd.DataFrame, loss_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Papers' order: dataset, model, fraction from full data down, loss in config order."""
    if df.empty:
        return df
    keys: list[str] = []
    tmp = df.copy()
    for col in ("dataset", "model"):
        if col in tmp:
            tmp["_" + col] = tmp[col].map(sorted(tmp[col].unique()).index)
            keys.append("_" + col)
    if "fraction" in tmp:
        fr = fraction_order(tmp["fraction"])
        tmp["_fraction"] = tmp["fraction"].map(fr.index)
        keys.append("_fraction")
    if "loss" in tmp:
        losses = ordered(sorted(tmp["loss"].unique()), loss_order)
        tmp["_loss"] = tmp["loss"].map(losses.index)
        keys.append("_loss")
    tmp = tmp.sort_values(keys, kind="stable")
    return tmp.drop(columns=keys).reset_index(drop=True)


def table_note(aggregate: str, mean_over: str) -> str:
    """The header sentence of a statistics table: run-level aggregation + what a mean is over.

    Args:
        aggregate: ``evaluation.aggregate`` (``"image"`` or ``"dataset"``).
        mean_over: what the table averages those run values over, e.g. ``"the seeds and folds of
            a cell"``.

    Returns:
        ``"How a mean is formed: <aggregation note>; <mean_over>."`` (ends with a blank line).
    """
    return f"How a mean is formed: {aggregation_note(aggregate)}; {mean_over}.\n\n"


def add_table_note(markdown: str, aggregate: str, mean_over: str) -> str:
    """Insert :func:`table_note` after the ``### title`` line of ``markdown`` (or in front)."""
    note = table_note(aggregate, mean_over)
    head, sep, rest = markdown.partition("\n\n")
    if head.startswith("#") and sep:
        return f"{head}\n\n{note}{rest}"
    return note + markdown


# ------------------------------------------------------------------------------------ summary


def summary_table(
    tidy: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    scale: float = 100.0,
    replicate: str = "run",
    n_boot: int = 10_000,
    ci: float = 0.95,
    loss_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean, std, n and bootstrap CI per (dataset, model, fraction, loss) and metric.

    Args:
        tidy: the tidy table.
        metrics: run-level metrics (default: every one computed).
        scale: factor of overlap metrics (100 = percent).
        replicate: ``"run"`` (each seed x fold run is a replicate) or ``"seed"`` (folds of a
            seed averaged first; paper 000).
        n_boot, ci: bootstrap resamples and level (:func:`segbench.stats.summarize`, seed 0).

    Returns:
        Long table: ``dataset, model, fraction, loss, metric, mean, std, n, n_nan, ci_lo,
        ci_hi, n_runs, n_diverged``; cells whose runs all diverged have NaN statistics.
    """
    runs = completed_runs(tidy)
    unit = replicate_unit(replicate)
    counts = run_counts(tidy)
    parts = []
    for name in available_metrics(tidy, metrics):
        factor = metric_info(name).scale(scale)
        data = runs[[*CELL_KEYS, "seed", "fold", name]].copy()
        data[name] = data[name].astype(float) * factor
        stat = summarize(data, by=CELL_KEYS, value=name, unit=unit, n_boot=n_boot, ci=ci)
        stat = counts.merge(stat, on=CELL_KEYS, how="left")
        stat.insert(4, "metric", name)
        parts.append(stat)
    if not parts:
        raise ValueError("no run-level metric has values in the tidy table")
    out = pd.concat(parts, ignore_index=True)
    out["metric"] = pd.Categorical(out["metric"], list(dict.fromkeys(out["metric"])))
    out = _sort_cells(out.sort_values("metric", kind="stable"), loss_order)
    out["metric"] = out["metric"].astype(str)
    return out


def summary_markdown(
    summary: pd.DataFrame, title: str, aggregate: str = "image", replicate: str = "run"
) -> str:
    """One row per cell; per metric ``mean±std [ci_lo, ci_hi]`` (n replicates, diverged).

    A cell with one replicate reads ``mean (n=1)`` (no std, no CI). ``aggregate``
    (``evaluation.aggregate``, schema default ``"image"``) and ``replicate`` (``report.replicate``)
    only word the header note.
    """
    if replicate == "seed":
        spread = "the seeds of a cell (folds averaged per seed)"
    else:
        spread = "the (seed, fold) runs of a cell"
    rows = []
    for key, g in summary.groupby(CELL_KEYS, sort=False):
        row = dict(zip(CELL_KEYS, key, strict=True))
        for _, r in g.iterrows():
            info = metric_info(r["metric"])
            d = info.digits
            n = None if pd.isna(r["n"]) else int(r["n"])
            text = format_mean_std(r["mean"], r["std"], digits=d, n=n)
            if not np.isnan(r["ci_lo"]):
                text += f" [{r['ci_lo']:.{d}f}, {r['ci_hi']:.{d}f}]"
            row[info.label] = text
        row["n"] = int(g["n"].fillna(0).max())
        row["runs"] = int(g["n_runs"].iloc[0])
        row["diverged"] = int(g["n_diverged"].iloc[0])
        rows.append(row)
    table = pd.DataFrame(rows)
    note = table_note(
        aggregate,
        f"mean ± sample std (ddof = 1) over {spread}; a cell with one replicate: mean (n=1), "
        "no std",
    )
    return f"### {title}\n\n{note}" + frame_to_markdown(table)


# ------------------------------------------------------------------------------------- paired


def paired_table(
    tidy: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    scale: float = 100.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests with Holm's correction per block and metric.

    Pairs are the (seed, fold) runs both losses completed in one (dataset, model, fraction)
    block; each (block, metric) is one Holm family.

    Returns:
        ``dataset, model, fraction, metric, loss_a, loss_b, n_pairs, mean_a, mean_b,
        mean_diff (a - b), median_diff, statistic, p_value, p_holm, rank_biserial,
        significant, better`` (the loss with the better mean under the metric's direction,
        ``"-"`` for a tie or no pairs). Empty (with these columns) when no block has two losses.
    """
    runs = completed_runs(tidy)
    parts = []
    for name in available_metrics(tidy, metrics):
        info = metric_info(name)
        data = runs[[*PAIR_KEYS, "loss", name]].copy()
        data[name] = data[name].astype(float) * info.scale(scale)
        data = data.dropna(subset=[name])
        if data.empty:
            continue
        res = paired_wilcoxon_holm(data, "loss", name, PAIR_KEYS, by=BLOCK_KEYS, alpha=alpha)
        res.insert(3, "metric", name)
        sign = 1.0 if info.higher_is_better else -1.0
        d = res["mean_diff"].to_numpy(dtype=float) * sign
        res["better"] = np.where(
            np.isnan(d) | (d == 0), "-", np.where(d > 0, res["loss_a"], res["loss_b"])
        )
        parts.append(res)
    if not parts:
        return pd.DataFrame(
            columns=[*BLOCK_KEYS, "metric", "loss_a", "loss_b", "n_pairs", "p_holm", "better"]
        )
    out = pd.concat(parts, ignore_index=True)
    metric_rank = {m: i for i, m in enumerate(dict.fromkeys(out["metric"]))}
    fr = fraction_order(out["fraction"])
    keys = pd.DataFrame(
        {
            "d": out["dataset"],
            "m": out["model"],
            "f": out["fraction"].map(fr.index),
            "k": out["metric"].map(metric_rank),
        }
    )
    order = keys.sort_values(["d", "m", "f", "k"], kind="stable").index
    return out.loc[order].reset_index(drop=True)


def paired_markdown(
    paired: pd.DataFrame, title: str, alpha: float = 0.05, aggregate: str = "image"
) -> str:
    """The paired table with rounded numbers; significant rows (p_holm < alpha) marked ``*``.

    ``min p`` is the smallest Holm-adjusted p the block could reach with its numbers of
    non-zero pairs (``min_p_holm``); a row whose ``min p >= alpha`` is marked ``underpowered``
    instead of being read as "not significant". ``aggregate``: ``evaluation.aggregate`` (header).
    """
    mean_over = (
        "mean_a / mean_b / mean_diff are means over the (seed, fold) runs both losses completed"
    )
    head = f"### {title}\n\n{table_note(aggregate, mean_over)}"
    if paired.empty:
        return f"{head}No block has two losses with paired runs: nothing to compare.\n"
    cols = [*BLOCK_KEYS, "metric", "loss_a", "loss_b", "n_pairs", "mean_a", "mean_b"]
    cols += ["mean_diff", "rank_biserial", "p_value", "p_holm", "min_p_holm", "better"]
    t = paired[cols].copy().rename(columns={"min_p_holm": "min p"})
    under = paired["underpowered"].fillna(False).astype(bool).to_numpy()
    t["sig."] = np.where(paired["p_holm"] < alpha, "*", np.where(under, "underpowered", ""))
    for c in ("mean_a", "mean_b", "mean_diff"):
        t[c] = t[c].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    for c in ("rank_biserial", "p_value", "p_holm"):
        t[c] = t[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    t["min p"] = t["min p"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    n_under = int(under.sum())
    note = (
        f"Two-sided Wilcoxon signed-rank tests on runs paired by (seed, fold); Holm's correction "
        f"within each (dataset, model, fraction, metric); * = p_holm < {alpha}. With n non-zero "
        f"paired differences the smallest two-sided p is 2/2^n (n = 5: 0.0625); min p = the "
        f"smallest Holm-adjusted p the block could reach with its pairs; 'underpowered' "
        f"({n_under} of {len(t)} rows) = min p >= {alpha}: not significant whatever the "
        f"results.\n\n"
    )
    return f"{head}{note}" + frame_to_markdown(t)


# ----------------------------------------------------------------------------------- friedman


@dataclass
class FriedmanReport:
    """Result of :func:`friedman_analysis` (``ok`` False: ``reason`` says why not computed)."""

    metric: str
    ok: bool
    reason: str = ""
    losses: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    n_blocks: int = 0
    n_dropped: int = 0
    statistic: float = float("nan")
    pvalue: float = float("nan")
    cd: float = float("nan")
    avg_ranks: pd.Series | None = None
    posthoc: pd.DataFrame | None = None


def common_losses(runs: pd.DataFrame, metric: str, blocks: Sequence[str]) -> list[str]:
    """Losses with a value of ``metric`` in every block (sorted)."""
    data = runs.dropna(subset=[metric])
    if data.empty:
        return []
    per_block = data.groupby(list(blocks), sort=True)["loss"].agg(lambda s: set(s))
    common = set.intersection(*per_block.tolist())
    return sorted(common)


def friedman_analysis(
    tidy: pd.DataFrame,
    metric: str,
    blocks: Sequence[str] = BLOCK_KEYS,
    alpha: float = 0.05,
) -> FriedmanReport:
    """Friedman + Nemenyi over blocks for the losses every block has.

    A block is one (dataset, model, fraction) by default (its runs averaged per loss); only the
    losses present in every block take part (a study's extra ablation losses are left out).
    Needs >= 3 such losses and >= 2 blocks; otherwise ``ok=False`` with the reason.
    """
    info = metric_info(metric)
    runs = completed_runs(tidy)
    blocks = list(blocks)
    rep = FriedmanReport(metric=info.name, ok=False, blocks=blocks)
    if info.name not in runs.columns or runs[info.name].isna().all():
        rep.reason = f"no completed run has a value of {info.name}"
        return rep
    losses = common_losses(runs, info.name, blocks)
    n_blocks = runs.dropna(subset=[info.name]).groupby(blocks).ngroups
    rep.losses, rep.n_blocks = losses, n_blocks
    if n_blocks < 2 or len(losses) < 3:
        rep.reason = (
            f"the Friedman test needs >= 2 blocks ({' x '.join(blocks)}) and >= 3 losses present "
            f"in every block; this study has {n_blocks} block(s) and {len(losses)} common "
            f"loss(es) ({', '.join(losses) or 'none'})"
        )
        return rep
    try:
        res = friedman_nemenyi(
            runs,
            value=info.name,
            blocks=blocks,
            higher_is_better=info.higher_is_better,
            losses=losses,
        )
    except ValueError as err:
        rep.reason = str(err)
        return rep
    rep.ok = True
    rep.statistic, rep.pvalue = res.statistic, res.pvalue
    rep.avg_ranks, rep.posthoc = res.avg_ranks, res.posthoc
    rep.n_blocks = int(res.avg_ranks.attrs.get("n_blocks", n_blocks))
    rep.n_dropped = int(res.avg_ranks.attrs.get("n_dropped_blocks", 0))
    rep.cd = critical_difference(res.avg_ranks, rep.n_blocks, alpha=alpha)
    return rep


def friedman_frame(reports: Sequence[FriedmanReport]) -> pd.DataFrame:
    """One row per (metric, loss) with its average rank; test statistics repeated per metric."""
    rows = []
    for r in reports:
        base = {
            "metric": r.metric,
            "n_blocks": r.n_blocks,
            "n_dropped_blocks": r.n_dropped,
            "k_losses": len(r.losses),
            "chi2": r.statistic,
            "p_value": r.pvalue,
            "cd": r.cd,
            "note": r.reason,
        }
        if not r.ok or r.avg_ranks is None:
            rows.append({**base, "loss": "", "avg_rank": np.nan})
            continue
        for loss, rank in r.avg_ranks.items():
            rows.append({**base, "loss": loss, "avg_rank": float(rank)})
    cols = ["metric", "loss", "avg_rank", "n_blocks", "n_dropped_blocks", "k_losses"]
    cols += ["chi2", "p_value", "cd", "note"]
    return pd.DataFrame(rows, columns=cols)


def friedman_markdown(
    reports: Sequence[FriedmanReport], title: str, aggregate: str = "image"
) -> str:
    """Average ranks, the Friedman test and the Nemenyi p-values per metric.

    ``aggregate``: ``evaluation.aggregate`` (header note).
    """
    mean_over = (
        "each block's value of a loss is the mean over its completed (seed, fold) runs, ranks are "
        "averaged over blocks"
    )
    out = [f"### {title}\n", table_note(aggregate, mean_over).rstrip("\n") + "\n"]
    for r in reports:
        info = metric_info(r.metric)
        out.append(f"#### {info.label}\n")
        if not r.ok:
            out.append(f"Not computed: {r.reason}.\n")
            continue
        out.append(
            f"Blocks: {' x '.join(r.blocks)} ({r.n_blocks} used, {r.n_dropped} dropped for a "
            f"missing loss); Friedman chi2 = {r.statistic:.3f}, p = {r.pvalue:.3g}; Nemenyi "
            f"critical difference CD = {r.cd:.3f} (alpha 0.05). Rank 1 = best.\n"
        )
        ranks = pd.DataFrame({"loss": r.avg_ranks.index, "average rank": r.avg_ranks.values})
        ranks["average rank"] = ranks["average rank"].map(lambda v: f"{v:.3f}")
        out.append(frame_to_markdown(ranks))
        ph = r.posthoc.map(lambda v: f"{v:.3f}")
        ph.insert(0, "Nemenyi p", ph.index)
        out.append("\n" + frame_to_markdown(ph.reset_index(drop=True)))
    return "\n".join(out)


__all__ = [
    "BLOCK_KEYS",
    "FriedmanReport",
    "add_table_note",
    "common_losses",
    "friedman_analysis",
    "friedman_frame",
    "friedman_markdown",
    "paired_markdown",
    "paired_table",
    "summary_markdown",
    "summary_table",
    "table_note",
]
