"""Critical-difference diagram (Demšar 2006, Fig. 1) drawn with scikit-posthocs.

Losses are placed at their average rank; a bar joins losses whose ranks differ by less than
the critical difference (not significantly different under the Nemenyi test), and the CD is
drawn above the axis. Drawing is delegated to ``scikit_posthocs.critical_difference_diagram``;
the "not different" matrix is derived here from the CD (or given as Nemenyi p-values).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from segbench.io_utils import atomic_write_bytes


def cd_sig_matrix(avg_ranks: pd.Series, cd: float) -> pd.DataFrame:
    """Pseudo p-value matrix: 1.0 where ``|r_i - r_j| <= cd`` (not different), else 0.0."""
    r = avg_ranks.to_numpy(dtype=np.float64)
    same = np.abs(r[:, None] - r[None, :]) <= cd
    return pd.DataFrame(same.astype(np.float64), index=avg_ranks.index, columns=avg_ranks.index)


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
    """Save a critical-difference diagram.

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
    import scikit_posthocs as sp
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

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
    ax = fig.subplots()
    sp.critical_difference_diagram(ranks, sig, cd=cd, alpha=plot_alpha, ax=ax)
    if title:
        ax.set_title(title)
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    buf = io.BytesIO()
    fig.savefig(buf, format=suffix or "png", bbox_inches="tight", dpi=150)
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)
