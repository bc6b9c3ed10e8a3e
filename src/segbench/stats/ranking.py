"""Ranking many losses over many blocks: Friedman test, Nemenyi post-hoc, critical difference.

Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", JMLR 7:1-30:
rank the ``k`` losses within each of ``N`` blocks (datasets, or dataset x model x fraction
cells), test equal mean ranks with the Friedman test (``scipy.stats.friedmanchisquare``), then
compare all pairs with the Nemenyi test (``scikit_posthocs.posthoc_nemenyi_friedman``). Two
losses differ at level ``alpha`` when their average ranks differ by more than the critical
difference ``CD = q_alpha sqrt(k (k + 1) / (6 N))`` (Demšar Eq. in Sec. 3.2.2), where
``q_alpha`` is the studentized range quantile with infinite degrees of freedom divided by
``sqrt(2)`` (``scipy.stats.studentized_range``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats as sps

from segbench.stats.summary import _check_columns


class FriedmanResult(NamedTuple):
    """Result of :func:`friedman_nemenyi`; unpacks as ``stat, p, posthoc, avg_ranks``.

    ``posthoc.attrs`` and ``avg_ranks.attrs`` hold ``n_blocks`` (blocks used) and
    ``n_dropped_blocks`` (blocks dropped because a loss had no value there).
    """

    statistic: float
    pvalue: float
    posthoc: pd.DataFrame
    avg_ranks: pd.Series


def block_matrix(
    df: pd.DataFrame,
    *,
    loss_col: str = "loss",
    value: str = "miou",
    blocks: Sequence[str] = ("dataset",),
    losses: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Blocks x losses matrix of mean values; incomplete blocks dropped.

    Rows sharing a (block, loss) (e.g. the seeds and folds of one dataset) are averaged first.

    Returns:
        ``(matrix, n_dropped)``: DataFrame indexed by the block columns with one column per
        loss, and the number of blocks dropped for a missing loss.

    Raises:
        ValueError: on missing columns or unknown ``losses``.
    """
    blocks = list(blocks)
    _check_columns(df, [*blocks, loss_col, value], "friedman_nemenyi")
    # groupby (not pivot_table(dropna=False)) so only observed block combinations appear
    wide = df.groupby([*blocks, loss_col], dropna=False, sort=True)[value].mean().unstack(loss_col)
    wide.columns.name = None
    if losses is not None:
        unknown = [x for x in losses if x not in wide.columns]
        if unknown:
            raise ValueError(
                f"losses {unknown} not in column {loss_col!r}; known: {list(wide.columns)}"
            )
        wide = wide[list(losses)]
    complete = wide.dropna(how="any")
    return complete, int(len(wide) - len(complete))


def average_ranks(matrix: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Mean within-block rank of each column; rank 1 = best, ties get the average rank.

    Args:
        matrix: blocks x losses values (no NaN).
        higher_is_better: ``True`` for IoU/Dice/NSD, ``False`` for HD95, NLL, ECE, ...

    Returns:
        Series indexed by loss, sorted from best (lowest) to worst average rank.
    """
    vals = matrix.to_numpy(dtype=np.float64)
    ranks = sps.rankdata(-vals if higher_is_better else vals, axis=1)
    return pd.Series(ranks.mean(axis=0), index=matrix.columns, name="avg_rank").sort_values(
        kind="mergesort"
    )


def friedman_nemenyi(
    df: pd.DataFrame,
    *,
    loss_col: str = "loss",
    value: str = "miou",
    blocks: Sequence[str] = ("dataset",),
    higher_is_better: bool = True,
    losses: Sequence[str] | None = None,
) -> FriedmanResult:
    """Friedman test over blocks, Nemenyi post-hoc and average ranks (Demšar 2006).

    Args:
        df: one row per run (or per block and loss) with ``blocks``, ``loss_col``, ``value``.
        loss_col: the compared factor (default ``"loss"``).
        value: metric (default ``"miou"``).
        blocks: columns defining a block (default ``["dataset"]``; e.g.
            ``["dataset", "model", "fraction"]`` for more blocks). Repeated rows of a
            (block, loss) are averaged; blocks missing a loss are dropped.
        higher_is_better: direction of ``value`` for the ranks (default True).
        losses: losses to include (default: all).

    Returns:
        :class:`FriedmanResult` ``(statistic, pvalue, posthoc, avg_ranks)``: Friedman chi-square
        and p-value, the k x k Nemenyi p-value matrix (DataFrame, loss labels), the average
        ranks (1 = best, sorted).

    Raises:
        ValueError: with fewer than 3 losses or 2 complete blocks.
    """
    matrix, n_dropped = block_matrix(
        df, loss_col=loss_col, value=value, blocks=blocks, losses=losses
    )
    k, n = matrix.shape[1], matrix.shape[0]
    if k < 3:
        raise ValueError(
            f"the Friedman test needs at least 3 losses, got {k}: {list(matrix.columns)}"
        )
    if n < 2:
        raise ValueError(f"the Friedman test needs at least 2 complete blocks, got {n}")
    stat, p = sps.friedmanchisquare(*(matrix[c].to_numpy(np.float64) for c in matrix.columns))
    posthoc = sp.posthoc_nemenyi_friedman(matrix.reset_index(drop=True))
    posthoc = posthoc.loc[list(matrix.columns), list(matrix.columns)]
    ranks = average_ranks(matrix, higher_is_better)
    for obj in (posthoc, ranks):
        obj.attrs["n_blocks"] = n
        obj.attrs["n_dropped_blocks"] = n_dropped
    return FriedmanResult(float(stat), float(p), posthoc, ranks)


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value ``q_alpha`` of the Nemenyi test for ``k`` groups (Demšar 2006, Table 5a).

    ``studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)``; e.g. 2.343 for k=3, 2.569 for k=4.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(sps.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0))


def critical_difference(
    avg_ranks: pd.Series | Sequence[float] | int, n_datasets: int, alpha: float = 0.05
) -> float:
    """Nemenyi critical difference of average ranks (Demšar 2006, Sec. 3.2.2).

    Args:
        avg_ranks: the average ranks (only their number ``k`` is used) or ``k`` itself.
        n_datasets: number of blocks ``N`` the ranks were averaged over.
        alpha: significance level (default 0.05).

    Returns:
        ``CD = q_alpha * sqrt(k (k + 1) / (6 N))``.
    """
    k = int(avg_ranks) if isinstance(avg_ranks, (int, np.integer)) else len(avg_ranks)
    if n_datasets < 1:
        raise ValueError(f"n_datasets must be >= 1, got {n_datasets}")
    return nemenyi_q(k, alpha) * float(np.sqrt(k * (k + 1) / (6.0 * n_datasets)))
