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
    _set_ticks(grid.axes.flat, runs["fraction_f"].unique(), log=False)
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


# ------------------------------------------------------------ parameter sweeps (lambda, alpha)


def _set_ticks(axes: Iterable[plt.Axes], ticks: Sequence[float], log: bool) -> None:
    """Every axis gets the swept values as its x ticks (``{:g}`` labels), log-scaled when
    ``log`` (one call for the fraction, lambda and alpha figures)."""
    ticks = sorted(ticks)
    for ax in axes:
        if log:
            ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()


def _swept_cells(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Runs of the (dataset, model, fraction, family) cells with two or more swept values (a
    family run at one value in some cell, e.g. a main-table loss on another model, is no
    curve there)."""
    keys = ["dataset", "model", "fraction", "family"]
    n = runs.groupby(keys)[column].transform("nunique")
    return runs[n >= 2]


LINESTYLES = ("-", "-.", ":", (0, (5, 1)))
"""Line style per training fraction (largest first) in the sweep figures."""


def sweep_curves(
    tidy: pd.DataFrame,
    sweeps: pd.DataFrame,
    sweep: str = "lambda",
    metric: str = "iou",
    scale: float = 100.0,
) -> pd.DataFrame:
    """The points of a sweep figure: mean and sd of the metric over the completed runs of each
    (dataset, model, fraction, family, value), cells with one value left out.

    Returns:
        ``dataset, model, fraction, family, label, <Sweep.column>, mean, sd, n`` (``sd`` with
        ddof 1, 0 for a single run; values scaled by ``scale`` for overlap metrics).
    """
    from segbench.reporting.sweeps import get_sweep

    col = get_sweep(sweep).column
    info = metric_info(metric)
    cols = ["dataset", "model", "fraction", "family", "label", col, "mean", "sd", "n"]
    if sweeps.empty:
        return pd.DataFrame(columns=cols)
    runs = completed_runs(tidy).merge(sweeps, on="loss", how="inner")
    runs = _swept_cells(runs, col)
    if runs.empty:
        return pd.DataFrame(columns=cols)
    runs = runs.assign(value=runs[info.name].astype(float) * info.scale(scale))
    g = runs.groupby(["dataset", "model", "fraction", "family", "label", col], sort=True)["value"]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    return out[cols]


def sweep_references(
    tidy: pd.DataFrame, reference: Sequence[str], metric: str = "iou", scale: float = 100.0
) -> pd.DataFrame:
    """The dashed lines of a sweep figure: the mean metric of each ``reference`` loss over its
    completed runs per (dataset, model, fraction): ``dataset, model, fraction, loss, mean, n``."""
    info = metric_info(metric)
    done = completed_runs(tidy)
    refs = done[done["loss"].isin(list(reference))]
    refs = refs.assign(value=refs[info.name].astype(float) * info.scale(scale))
    g = refs.groupby(["dataset", "model", "fraction", "loss"], sort=True)["value"]
    return g.agg(mean="mean", n="count").reset_index()


def sweep_figure(
    tidy: pd.DataFrame,
    sweeps: pd.DataFrame,
    path: str | Path,
    sweep: str = "lambda",
    metric: str = "iou",
    scale: float = 100.0,
    reference: Sequence[str] = (),
) -> None:
    """Metric against a swept loss parameter (paper 003 Fig. 3: lambda; paper 004 Fig. 3:
    alpha): the points of :func:`sweep_curves` with sd bars.

    Layout as the papers: one panel per dataset (columns; one row per model that has a
    sweep), one solid line per loss family (:func:`segbench.reporting.sweeps.parameter_sweeps`
    ``label``), a line style per training fraction when there are several, and, for a sweep
    with references (:attr:`segbench.reporting.sweeps.Sweep.reference`), one dashed horizontal
    line per loss of ``reference`` at its mean in the panel (:func:`sweep_references`; "the
    dashed lines represent the DSC performance of the other loss functions", paper 004 Fig. 3).
    Placeholder when nothing sweeps or none of the sweep's runs completed.

    Args:
        tidy: the tidy table.
        sweeps: :func:`segbench.reporting.sweeps.parameter_sweeps` for ``sweep`` (the workflow
            passes :func:`~segbench.reporting.sweeps.sweeps_from_runs` of the runs).
        sweep: a :data:`segbench.reporting.sweeps.SWEEPS` name.
        metric: run-level metric (``iou`` / ``dice`` mean the class means).
        scale: factor of overlap metrics (100 = percent).
        reference: loss keys drawn as dashed lines (ignored for a sweep without references).
    """
    from segbench.reporting.sweeps import get_sweep

    sw = get_sweep(sweep)
    col = sw.column
    info = metric_info(metric)
    curves = sweep_curves(tidy, sweeps, sweep, metric, scale)
    if curves.empty:
        placeholder_figure(
            path,
            f"{sweep.capitalize()} ablation",
            f"no loss family of this study has completed runs at two or more values of its "
            f"{sweep} parameter ({', '.join(sorted(sw.params))}), so there is no curve to draw",
        )
        return
    refs = sweep_references(tidy, reference if sw.reference else (), metric, scale)
    datasets = sorted(curves["dataset"].unique())
    models = sorted(curves["model"].unique())
    fractions = fraction_order(curves["fraction"])
    labels = sorted(curves["label"].unique())
    colors = dict(zip(labels, sns.color_palette("tab10", len(labels)), strict=True))
    ref_losses = ordered(refs["loss"].unique(), reference)
    ref_colors = dict(
        zip(ref_losses, sns.color_palette("Set2", max(len(ref_losses), 1)), strict=False)
    )
    fig, axes = plt.subplots(
        len(models),
        len(datasets),
        figsize=(3.6 * len(datasets) + 1.8, 3.0 * len(models)),
        squeeze=False,
    )
    unit = " (%)" if info.percent and scale == 100 else ""
    handles: dict[str, Any] = {}
    for r, model in enumerate(models):
        for c, ds in enumerate(datasets):
            ax = axes[r][c]
            cell = curves[(curves["dataset"] == ds) & (curves["model"] == model)]
            cref = refs[(refs["dataset"] == ds) & (refs["model"] == model)]
            for fi, frac in enumerate(fractions):
                suffix = "" if len(fractions) == 1 else f", f={frac}"
                for label in labels:
                    sub = cell[(cell["fraction"] == frac) & (cell["label"] == label)]
                    if sub.empty:
                        continue
                    handles[label + suffix] = ax.errorbar(
                        sub[col].to_numpy(float),
                        sub["mean"].to_numpy(float),
                        yerr=sub["sd"].to_numpy(float),
                        color=colors[label],
                        ls=LINESTYLES[fi % len(LINESTYLES)],
                        marker="o",
                        ms=4,
                        lw=1.4,
                        capsize=2,
                    )
                for loss in ref_losses:
                    hit = cref[(cref["loss"] == loss) & (cref["fraction"] == frac)]
                    if hit.empty:
                        continue
                    handles[loss + suffix] = ax.axhline(
                        float(hit["mean"].iloc[0]), color=ref_colors[loss], ls="--", lw=1.0
                    )
            ax.set_title(ds if len(models) == 1 else f"{ds} | {model}", fontsize=9)
            ax.set_xlabel(sw.xlabel)
            ax.set_ylabel(f"{info.label}{unit}" if c == 0 else "")
            ax.tick_params(labelsize=7)
    _set_ticks(axes.flat, curves[col].unique(), sw.log_x)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout()
    save_figure(fig, path)


def lambda_ablation(
    tidy: pd.DataFrame,
    sweeps: pd.DataFrame,
    path: str | Path,
    metric: str = "iou",
    scale: float = 100.0,
) -> None:
    """Metric against lambda per loss family (paper 003 Fig. 3: RCE-L1, RCE-KL, DiceCE,
    LogDiceCE, DBCE on Retinal Lesions, Kvasir and Liver): :func:`sweep_figure` of the
    ``lambda`` sweep; ``sweeps`` is :func:`segbench.reporting.sweeps.lambda_sweeps`."""
    sweep_figure(tidy, sweeps, path, "lambda", metric, scale)


def alpha_ablation(
    tidy: pd.DataFrame,
    sweeps: pd.DataFrame,
    path: str | Path,
    metric: str = "dice",
    scale: float = 100.0,
    reference: Sequence[str] = (),
) -> None:
    """DSC against the Balance loss weight alpha (paper 004 Fig. 3, Eq. 13: BL = alpha
    Intra-CBL + (1 - alpha) Inter-CBL, alpha in [0.1, 0.9] on CVC-ClinicDB, KiTS19 tumour and
    NIH pancreas), the other losses as dashed lines: :func:`sweep_figure` of the ``alpha``
    sweep."""
    sweep_figure(tidy, sweeps, path, "alpha", metric, scale, reference)


# ------------------------------------------------------------------------- training curves

OPTIMIZER_LABELS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def optimizer_label(training: Mapping[str, Any]) -> str:
    """``SGD + Nesterov momentum`` / ``Adam`` from a run's resolved ``training`` section."""
    opt = str(training.get("optimizer", ""))
    label = OPTIMIZER_LABELS.get(opt, opt)
    if opt == "sgd" and training.get("nesterov"):
        label += " + Nesterov momentum"
    return label


def load_histories(
    run_jsons: Sequence[str | Path], histories: Sequence[str | Path]
) -> pd.DataFrame:
    """The ``history.csv`` of each completed run with its identity and optimiser.

    Args:
        run_jsons / histories: the runs' ``run.json`` and ``history.csv``, in the same order.

    Returns:
        the history rows with ``dataset, model, loss, fraction, seed, fold`` (``run.json``
        ``run``; ``loss`` is the base loss of a derived key, the key itself is ``loss_key``),
        ``optimizer`` (:func:`optimizer_label` of ``config.training``), ``variant`` (the tag of
        a grid block with training overrides, ``config.training.variant``; empty otherwise)
        and ``run`` (the run's position); diverged runs are left out, as in every figure.

    Raises:
        ValueError: the two lists differ in length, or a ``run.json`` is not valid.
    """
    from segbench.rundir import read_run_json

    if len(run_jsons) != len(histories):
        raise ValueError(f"{len(run_jsons)} run.json files but {len(histories)} history.csv files")
    frames = []
    for i, (rj, hist) in enumerate(zip(run_jsons, histories, strict=True)):
        record = read_run_json(rj, require=("run", "config", "result"))
        if record["result"].get("status") != "completed":
            continue
        h = pd.read_csv(hist)
        for k, v in record["run"].items():
            h[k] = v
        training = record["config"].get("training", {})
        variant = training.get("variant") or {}
        # a derived key ("dice~hp03", "dice~adam": the schema allows no "~" in loss keys)
        # draws as its base loss (run.json's variant identity, else the key before its "~"),
        # so one loss has one colour in every optimiser's panel
        key = str(record["run"]["loss"])
        h["loss_key"] = key
        h["loss"] = str(variant.get("loss", key.split("~", 1)[0]))
        h["optimizer"] = optimizer_label(training)
        h["variant"] = str(variant.get("tag", ""))
        h["run"] = i
        frames.append(h)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def training_curve_panels(histories: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """The columns of :func:`training_curves`: ``(dataset, optimiser, variant, title)`` per
    (dataset, optimiser label, variant tag) of ``histories`` (:func:`load_histories`), by
    dataset, then SGD before Adam (the paper's Fig. 5 order), then label and tag. The title is
    the optimiser label; two columns of one dataset with the same label add the tag (``Adam
    (adam_low)``; ``study training`` for runs without one)."""
    order = {"SGD": 0, "Adam": 1}
    tags = histories["variant"] if "variant" in histories else pd.Series("", histories.index)
    cells = sorted(
        {
            (str(d), str(o), str(v))
            for d, o, v in zip(histories["dataset"], histories["optimizer"], tags, strict=True)
        },
        key=lambda c: (c[0], order.get(c[1].split(" ")[0], 2), c[1], c[2]),
    )
    count: dict[tuple[str, str], int] = {}
    for d, o, _ in cells:
        count[(d, o)] = count.get((d, o), 0) + 1
    return [
        (d, o, v, f"{o} ({v or 'study training'})" if count[(d, o)] > 1 else o) for d, o, v in cells
    ]


def training_curves(
    histories: pd.DataFrame,
    path: str | Path,
    loss_order: Sequence[str] | None = None,
    scale: float = 100.0,
) -> None:
    """Training curves per optimiser (paper 002 Fig. 5, App. D: "Training curves with
    SGD+Nesterov Momentum and Adam optimizers for a dice loss training and a model with the
    same hyperparameters trained with our dice surgery training objective").

    One column per (dataset, optimiser), in the paper's order (SGD, then Adam); top row the
    training loss, bottom row the validation mIoU (``history.csv`` ``val_miou``, epochs without
    a validation skipped), one line per loss (mean over the runs of the cell, band = min..max).
    Two training variants of one dataset with the same optimiser (e.g. Adam at two learning
    rates, tags ``adam`` and ``adam_low``) get a column each, titled with their tag.

    Args:
        histories: :func:`load_histories` (``history.csv`` rows with ``dataset, loss,
            optimizer, run``).
        loss_order: losses first in this order (config order), others after.
    """
    title = "Training curves"
    if histories.empty or "epoch" not in histories:
        placeholder_figure(path, title, "no training history in the runs")
        return
    histories = histories.copy()
    if "variant" not in histories:
        histories["variant"] = ""
    cells = training_curve_panels(histories)
    losses = ordered(sorted(histories["loss"].astype(str).unique()), loss_order)
    colors = dict(zip(losses, sns.color_palette("tab10", len(losses)), strict=True))
    rows = (
        ("train_loss", "training loss", 1.0),
        ("val_miou", "validation mIoU" + (" (%)" if scale == 100 else ""), scale),
    )
    fig, axes = plt.subplots(2, len(cells), figsize=(3.6 * len(cells) + 1.6, 5.6), squeeze=False)
    handles: dict[str, Any] = {}
    for c, (ds, opt, tag, label) in enumerate(cells):
        cell = histories[
            (histories["dataset"] == ds)
            & (histories["optimizer"] == opt)
            & (histories["variant"] == tag)
        ]
        for r, (column, ylabel, factor) in enumerate(rows):
            ax = axes[r][c]
            for loss in losses:
                sub = cell[cell["loss"] == loss].dropna(subset=[column])
                if sub.empty:
                    continue
                g = sub.groupby("epoch")[column]
                x = g.mean().index.to_numpy(float)
                (line,) = ax.plot(x, g.mean().to_numpy() * factor, color=colors[loss], lw=1.3)
                if sub["run"].nunique() > 1:
                    ax.fill_between(
                        x, g.min().to_numpy() * factor, g.max().to_numpy() * factor,
                        color=colors[loss], alpha=0.2, lw=0,
                    )  # fmt: skip
                handles.setdefault(loss, line)
            if r == 0:
                ax.set_title(f"{ds}\n{label}", fontsize=9)
            ax.set_xlabel("epoch" if r == 1 else "")
            ax.set_ylabel(ylabel if c == 0 else "")
            ax.tick_params(labelsize=7)
    fig.legend(
        list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(1.0, 0.5),
        fontsize=8, frameon=False,
    )  # fmt: skip
    fig.tight_layout()
    save_figure(fig, path)


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
