"""Figures rebuilt from the tidy table and the run folders (seaborn/matplotlib, Agg backend).

Every figure is written atomically with :func:`save_figure`. Conventions as the tables
(:mod:`segbench.reporting.common`): diverged runs are excluded from every figure (their counts
are in the tables); overlap metrics are scaled by ``scale`` (100 = percent). A figure that
cannot be drawn for a study (e.g. a critical-difference diagram with one block) is replaced by
:func:`placeholder_figure`, a panel that states why, so the workflow never fails on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from segbench.figsave import figure_bytes  # noqa: E402
from segbench.io_utils import atomic_write_bytes  # noqa: E402
from segbench.reporting.aggregate import run_table  # noqa: E402
from segbench.reporting.common import (  # noqa: E402
    completed_runs,
    fraction_order,
    metric_info,
    ordered,
)


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save atomically (the format follows the suffix), byte-identical across runs
    (:func:`segbench.figsave.figure_bytes`: no dates or version stamps, fixed SVG ids)."""
    data = figure_bytes(fig, Path(path).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, data)


def miou_vs_fraction(
    tidy: pd.DataFrame, path: str | Path, metric: str = "iou", scale: float = 100.0
) -> None:
    """Mean metric vs training fraction per loss; one panel per (dataset, model); bars = sd.

    A placeholder panel when no run completed."""
    runs = run_table(tidy)
    runs = runs[runs["status"] == "completed"].copy()
    if runs.empty or runs["m" + metric].isna().all():
        placeholder_figure(path, f"m{metric.upper()} vs training fraction", "no completed run")
        return
    runs["fraction_f"] = runs["fraction"].astype(float)
    runs["value"] = runs["m" + metric].astype(float) * scale
    grid = sns.relplot(
        data=runs,
        x="fraction_f",
        y="value",
        hue="loss",
        style="loss",
        col="dataset",
        row="model",
        kind="line",
        markers=True,
        errorbar="sd",
        facet_kws={"sharey": False},
        height=3.0,
        aspect=1.1,
    )
    grid.set(xscale="log", xlabel="training fraction", ylabel=f"m{metric.upper()} (%)")
    for ax in grid.axes.flat:
        ticks = sorted(runs["fraction_f"].unique())
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
    save_figure(grid.figure, path)


def placeholder_figure(path: str | Path, title: str, message: str) -> None:
    """A text-only panel saying why a figure is not drawn for this study."""
    import textwrap

    fig, ax = plt.subplots(figsize=(7.0, 2.2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, textwrap.fill(message, 90), ha="center", va="center", fontsize=9, wrap=True)
    save_figure(fig, path)


# -------------------------------------------------------------------------- reliability diagrams


def pool_reliability(
    frames: Iterable[tuple[Mapping[str, Any], pd.DataFrame]],
    keys: Sequence[str] = ("dataset", "loss"),
) -> pd.DataFrame:
    """Pool the reliability bins of many runs (count-weighted), per group of ``keys``.

    Args:
        frames: ``(identity, bins)`` pairs; ``identity`` holds the ``keys`` (e.g. the ``run``
            dict of metrics.json), ``bins`` is a run's ``reliability.csv`` (``bin_lo, bin_hi,
            confidence, accuracy, count``; confidence/accuracy are bin means, NaN when empty).

    Returns:
        ``keys + [bin_lo, bin_hi, count, confidence, accuracy, n_runs]``: pooled bin means
        (``sum(mean * count) / sum(count)``, NaN for empty bins), i.e. the reliability diagram
        of all test pixels of the pooled runs.
    """
    keys = list(keys)
    rows = []
    for ident, bins in frames:
        b = bins.copy()
        for k in keys:
            b[k] = str(ident[k])
        cnt = b["count"].astype(float)
        b["sum_conf"] = b["confidence"].fillna(0.0) * cnt
        b["sum_acc"] = b["accuracy"].fillna(0.0) * cnt
        b["run"] = len(rows)
        rows.append(b)
    if not rows:
        return pd.DataFrame(columns=[*keys, "bin_lo", "bin_hi", "count", "confidence", "accuracy"])
    df = pd.concat(rows, ignore_index=True)
    g = df.groupby([*keys, "bin_lo", "bin_hi"], sort=True)
    out = g.agg(
        count=("count", "sum"),
        sum_conf=("sum_conf", "sum"),
        sum_acc=("sum_acc", "sum"),
        n_runs=("run", "nunique"),
    )
    out = out.reset_index()
    filled = out["count"] > 0
    safe = out["count"].where(filled, 1)
    out["confidence"] = np.where(filled, out["sum_conf"] / safe, np.nan)
    out["accuracy"] = np.where(filled, out["sum_acc"] / safe, np.nan)
    return out.drop(columns=["sum_conf", "sum_acc"])


def pooled_ece(pooled: pd.DataFrame, keys: Sequence[str] = ("dataset", "loss")) -> pd.Series:
    """Top-label ECE of pooled bins, ``sum_b n_b |acc_b - conf_b| / N`` (Guo et al. 2017)."""
    gap = (pooled["accuracy"] - pooled["confidence"]).abs().fillna(0.0) * pooled["count"]
    tmp = pooled.assign(_gap=gap)
    g = tmp.groupby(list(keys), sort=True)
    return g["_gap"].sum() / g["count"].sum().where(lambda s: s > 0)


def reliability_diagram(
    pooled: pd.DataFrame,
    path: str | Path,
    loss_order: Sequence[str] | None = None,
    wrap: int = 6,
) -> None:
    """Reliability diagrams (paper 002 style): one panel per (dataset, loss).

    Bars: accuracy of each confidence bin; red: the gap to the bin's mean confidence; dashed:
    perfect calibration. Panel title: the loss and the ECE of the pooled bins.
    """
    if pooled.empty or pooled["count"].sum() == 0:
        placeholder_figure(path, "Reliability diagrams", "no reliability bins in the runs")
        return
    ece = pooled_ece(pooled)
    panels = []
    for ds in sorted(pooled["dataset"].unique()):
        sub = pooled[pooled["dataset"] == ds]
        losses = ordered(sorted(sub["loss"].unique()), loss_order)
        for i in range(0, len(losses), wrap):
            panels.append((ds, losses[i : i + wrap]))
    ncols = min(wrap, max(len(p[1]) for p in panels))
    fig, axes = plt.subplots(
        len(panels), ncols, figsize=(2.3 * ncols, 2.5 * len(panels)), squeeze=False
    )
    for r, (ds, losses) in enumerate(panels):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(losses):
                ax.axis("off")
                continue
            loss = losses[c]
            b = pooled[(pooled["dataset"] == ds) & (pooled["loss"] == loss)]
            centers = (b["bin_lo"] + b["bin_hi"]) / 2
            width = (b["bin_hi"] - b["bin_lo"]).to_numpy()
            acc = b["accuracy"].fillna(0.0).to_numpy()
            conf = b["confidence"].to_numpy()
            ax.bar(centers, acc, width=width, color="#4c72b0", edgecolor="k", lw=0.4)
            has = ~np.isnan(conf)
            ax.bar(
                centers[has],
                (conf - acc)[has],
                bottom=acc[has],
                width=width[has],
                color="#c44e52",
                alpha=0.35,
                edgecolor="#c44e52",
                lw=0.4,
            )
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.set(xlim=(0, 1), ylim=(0, 1))
            ax.set_title(f"{ds}\n{loss} (ECE {ece.get((ds, loss), np.nan):.4f})", fontsize=8)
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel("accuracy", fontsize=8)
            ax.set_xlabel("confidence", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


# ----------------------------------------------------------------------------- DSC violin plots


def image_scores(
    per_image: pd.DataFrame, include_background: bool, metric: str = "dice"
) -> pd.DataFrame:
    """Per-image score of one run: mean over classes of ``metric`` (e.g. DSC).

    Follows the run-level convention of :mod:`segbench.evaluate`: a class absent from both
    ground truth and prediction of an image (``empty_gt & empty_pred``) is left out of that
    image's mean; background (class 0) is left out unless ``include_background``.

    Returns:
        ``image, value`` (NaN when no class of the image counts).
    """
    pi = per_image
    keep = ~(pi["empty_gt"].astype(bool) & pi["empty_pred"].astype(bool))
    if not include_background:
        keep &= pi["class"] != 0
    vals = pi[keep].groupby("image", sort=True)[metric].mean()
    images = pd.Index(sorted(pi["image"].astype(str).unique()), name="image")
    vals.index = vals.index.astype(str)
    return vals.reindex(images).rename("value").reset_index()


def score_violins(
    scores: pd.DataFrame,
    path: str | Path,
    metric: str = "dice",
    scale: float = 100.0,
    loss_order: Sequence[str] | None = None,
) -> None:
    """Violin plots of per-image scores per loss (paper 003 Fig. 4).

    One panel per dataset (columns) and (model, fraction) (rows); the test images of every
    completed seed and fold of the cell are pooled.

    Args:
        scores: ``dataset, model, fraction, loss, image, value`` (raw 0-1 values).
    """
    info = metric_info(metric)
    data = scores.dropna(subset=["value"]).copy()
    if data.empty:
        placeholder_figure(path, "Per-image distribution", "no per-image values in the runs")
        return
    data["value"] = data["value"] * info.scale(scale)
    fr = fraction_order(data["fraction"])
    data["cell"] = data["model"] + ", f=" + data["fraction"]
    cells = [
        f"{m}, f={f}"
        for m in sorted(data["model"].unique())
        for f in fr
        if ((data["model"] == m) & (data["fraction"] == f)).any()
    ]
    losses = ordered(sorted(data["loss"].unique()), loss_order)
    grid = sns.catplot(
        data=data,
        x="loss",
        y="value",
        hue="loss",
        col="dataset",
        row="cell",
        row_order=cells,
        order=losses,
        hue_order=losses,
        kind="violin",
        cut=0,
        inner="quart",
        density_norm="width",
        sharey=False,
        legend=False,
        height=2.8,
        aspect=max(1.0, 0.35 * len(losses)),
    )
    unit = " (%)" if info.percent and scale == 100 else ""
    name = {"dice": "DSC", "iou": "IoU"}.get(info.class_col, str(info.class_col).upper())
    grid.set_axis_labels("", f"per-image {name}{unit}")
    grid.set_titles("{col_name} | {row_name}")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    save_figure(grid.figure, path)


# ------------------------------------------------------------------------------ lambda ablation


def lambda_ablation(
    tidy: pd.DataFrame,
    sweeps: pd.DataFrame,
    path: str | Path,
    metric: str = "iou",
    scale: float = 100.0,
) -> None:
    """Metric against ``lam`` per loss family (paper 003 Fig. 3); mean ± sd over runs.

    ``sweeps`` is :func:`segbench.reporting.sweeps.lambda_sweeps` (the workflow passes
    :func:`~segbench.reporting.sweeps.sweeps_from_runs` of the runs' ``run.json``).

    One panel per (dataset, model); line style = training fraction. Placeholder when the
    study sweeps no ``lam`` or none of the sweep's runs completed.
    """
    info = metric_info(metric)
    runs = completed_runs(tidy).merge(sweeps, on="loss", how="inner")
    if sweeps.empty or runs.empty:
        placeholder_figure(
            path,
            "Lambda ablation",
            "no loss family of this study has runs at two or more values of its `lam` "
            "parameter (RCE / RFL / DBCE), so there is no lambda curve to draw",
        )
        return
    runs["value"] = runs[info.name].astype(float) * info.scale(scale)
    grid = sns.relplot(
        data=runs,
        x="lam",
        y="value",
        hue="family",
        style="fraction",
        col="dataset",
        row="model",
        kind="line",
        markers=True,
        errorbar="sd",
        err_style="bars",
        facet_kws={"sharey": False},
        height=3.0,
        aspect=1.2,
    )
    unit = " (%)" if info.percent and scale == 100 else ""
    grid.set(xscale="log", xlabel="λ (lam)", ylabel=f"{info.label}{unit}")
    for ax in grid.axes.flat:
        ticks = sorted(runs["lam"].unique())
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
    save_figure(grid.figure, path)


# -------------------------------------------------------------------- critical-difference diagram


def cd_figure(report: Any, path: str | Path) -> None:
    """The critical-difference diagram of a :class:`~segbench.reporting.statistics.FriedmanReport`
    (:func:`segbench.stats.plot_cd_diagram`), or a placeholder stating why there is none."""
    from segbench.stats import plot_cd_diagram

    label = metric_info(report.metric).label
    if not report.ok:
        placeholder_figure(path, f"Critical-difference diagram ({label})", report.reason)
        return
    title = f"{label}: average ranks over {report.n_blocks} blocks ({' x '.join(report.blocks)})\n"
    try:
        plot_cd_diagram(report.avg_ranks, report.cd, path, title=title)
    except ValueError as err:  # e.g. degenerate ranks scikit-posthocs cannot draw
        placeholder_figure(path, f"Critical-difference diagram ({label})", str(err))
