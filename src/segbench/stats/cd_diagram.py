"""Critical-difference diagram (Demšar 2006, Fig. 1) drawn with scikit-posthocs.

Losses are placed at their average rank; a bar joins losses whose ranks differ by less than
the critical difference (not significantly different under the Nemenyi test), and the CD is
drawn above the axis and its tick labels. Drawing is delegated to ``scikit_posthocs.critical_difference_diagram``;
the "not different" matrix is derived here from the CD (or given as Nemenyi p-values).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from segbench.io_utils import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def cd_sig_matrix(avg_ranks: pd.Series, cd: float) -> pd.DataFrame:
    """Pseudo p-value matrix: 1.0 where ``|r_i - r_j| <= cd`` (not different), else 0.0."""
    r = avg_ranks.to_numpy(dtype=np.float64)
    same = np.abs(r[:, None] - r[None, :]) <= cd
    return pd.DataFrame(same.astype(np.float64), index=avg_ranks.index, columns=avg_ranks.index)


def cd_diagram_figure(
    avg_ranks: pd.Series | dict[str, float],
    cd: float,
    *,
    posthoc: pd.DataFrame | None = None,
    alpha: float = 0.05,
    title: str | None = None,
    figsize: Sequence[float] = (7.0, 2.5),
) -> Figure:
    """Draw a critical-difference diagram on a new ``Figure`` (arguments as
    :func:`plot_cd_diagram`).

    Two things differ from ``scikit_posthocs.critical_difference_diagram`` alone:

    - each crossbar's points are drawn in rank order (scikit-posthocs iterates a Python
      ``set`` of loss names, whose order changes with the process's hash seed, so the PNG
      pixels changed from one run to the next);
    - the ``CD = ...`` bar and label are drawn above the axis tick labels (scikit-posthocs puts
      them 0.5 data units above the axis, on top of the tick labels), and the title above them.
    """
    import scikit_posthocs as sp
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    from matplotlib.lines import Line2D
    from matplotlib.transforms import offset_copy

    ranks = pd.Series(avg_ranks, dtype=np.float64).sort_values(kind="mergesort")
    if ranks.empty:
        raise ValueError("avg_ranks is empty")
    if posthoc is None:
        sig = cd_sig_matrix(ranks, cd)
        plot_alpha = 0.5  # pseudo p-values are 0 or 1
    else:
        sig = posthoc.loc[ranks.index, ranks.index].astype(np.float64)
        plot_alpha = alpha
    fig = Figure(figsize=tuple(figsize))
    FigureCanvasAgg(fig)  # a renderer, to measure the tick labels below
    ax = fig.subplots()
    artists = sp.critical_difference_diagram(ranks, sig, cd=None, alpha=plot_alpha, ax=ax)
    for bar in artists.get("crossbars", []):
        for line in bar:
            xs, ys = (np.asarray(a, dtype=np.float64) for a in line.get_data())
            order = np.argsort(xs, kind="mergesort")
            line.set_data(xs[order], ys[order])

    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    axis_y = ax.transData.transform((0.0, 0.0))[1]  # the axis line (the top spine is at y = 0)
    labels_top = ax.xaxis.get_tightbbox(renderer).y1
    to_pt = 72.0 / fig.dpi
    bar_pt = (labels_top - axis_y) * to_pt + 6.0
    lift = offset_copy(ax.transData, fig=fig, x=0.0, y=bar_pt, units="points")
    x0 = float(ranks.iloc[0])
    ax.add_artist(
        Line2D([x0, x0 + cd], [0.0, 0.0], color="k", linewidth=2, transform=lift, clip_on=False)
    )
    text = ax.text(
        x0 + cd / 2, 0.0, f"CD = {cd:.3g}", ha="center", va="bottom", clip_on=False,
        transform=offset_copy(ax.transData, fig=fig, x=0.0, y=bar_pt + 2.0, units="points"),
    )
    if title:
        # The title's pad counts from the top of the axes (below the tick labels here).
        text_top = text.get_window_extent(renderer).y1
        axes_top = ax.get_window_extent(renderer).y1
        ax.set_title(title, pad=(text_top - axes_top) * to_pt + 6.0)
    return fig


def plot_cd_diagram(
    avg_ranks: pd.Series | dict[str, float],
    cd: float,
    path: str | os.PathLike[str],
    *,
    posthoc: pd.DataFrame | None = None,
    alpha: float = 0.05,
    title: str | None = None,
    figsize: Sequence[float] = (7.0, 2.5),
) -> str:
    """Save a critical-difference diagram (:func:`cd_diagram_figure`).

    The file is byte-identical for identical inputs, in any process
    (:func:`segbench.figsave.figure_bytes`).

    Args:
        avg_ranks: average rank per loss (1 = best), e.g. ``friedman_nemenyi(...).avg_ranks``.
        cd: critical difference (:func:`~segbench.stats.ranking.critical_difference`).
        path: output file; the format follows the suffix (``.png``, ``.pdf``, ``.svg``).
            Written atomically.
        posthoc: optional Nemenyi p-value matrix; when given, losses are joined when
            ``p >= alpha`` instead of when their rank difference is at most ``cd``.
        alpha: level used with ``posthoc`` (default 0.05).
        title: optional figure title.
        figsize: inches (default 7 x 2.5).

    Returns:
        ``str(path)``.
    """
    from segbench.figsave import figure_bytes

    fig = cd_diagram_figure(
        avg_ranks, cd, posthoc=posthoc, alpha=alpha, title=title, figsize=figsize
    )
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    atomic_write_bytes(path, figure_bytes(fig, suffix or "png", bbox_inches="tight", dpi=150))
    return os.fspath(path)
