"""Figures rebuilt from the tidy table (seaborn/matplotlib, Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from segbench.io_utils import atomic_write_bytes  # noqa: E402
from segbench.reporting.aggregate import run_table  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save atomically (the format follows the suffix)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def miou_vs_fraction(
    tidy: pd.DataFrame, path: str | Path, metric: str = "iou", scale: float = 100.0
) -> None:
    """Mean metric vs training fraction per loss; one panel per (dataset, model); error bars = sd."""
    runs = run_table(tidy)
    runs = runs[runs["status"] == "completed"].copy()
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
