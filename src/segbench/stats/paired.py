"""Paired comparisons between losses: Wilcoxon signed-rank, Holm correction, rank-biserial.

Two losses are paired on the cells where everything but the loss is equal (default
:data:`~segbench.stats.summary.PAIR_KEYS`: dataset, model, fraction, fold, seed), so split, data
subset and seed effects cancel. The test is ``scipy.stats.wilcoxon`` (two-sided, zero
differences dropped: ``zero_method="wilcox"``, exact null distribution for small samples
without ties, as scipy's ``method="auto"`` chooses).

Hand-written here (scipy has neither): :func:`holm` (Holm 1979 step-down adjustment, checked
against statsmodels in the tests) and :func:`rank_biserial` (matched-pairs rank-biserial
correlation, Kerby 2014), because adding a dependency for ten lines is not worth it.

**Power floor.** With ``n`` non-zero differences the two-sided exact signed-rank test can reach no
p below ``2 / 2^n`` (every difference of one sign: the most extreme of the ``2^n`` equally likely
sign patterns, counted in both tails), e.g. 0.0625 for 5 pairs and 0.25 for 3, so such a
comparison can never be significant at 0.05. :func:`min_attainable_p` gives that floor by calling
the very test the tables use (:func:`wilcoxon_paired`) on ``n`` all-positive differences of
distinct size; convention: ``n`` counts the non-zero differences only (``zero_method="wilcox"``
drops zeros), ties do not change it. Above 50 pairs scipy's ``method="auto"`` uses the normal
approximation, and so does the floor. Holm's adjusted p-values are non-decreasing in every raw
p-value (closed testing with Bonferroni local tests: ``p_i^adj = max_{J ∋ i} min(1, |J| min_J p_j)``,
Holm 1979), so ``holm(floors)`` bounds each adjusted p from below: a comparison whose
``min_p_holm >= alpha`` cannot be significant whatever its data ("underpowered").
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from segbench.stats.summary import PAIR_KEYS, _check_columns


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (family-wise error control).

    ``p_(i)`` sorted ascending gets ``max_{j <= i} min(1, (m - j + 1) p_(j))``. NaN entries are
    kept as NaN and do not count in the family size ``m``.

    Args:
        pvalues: raw p-values.

    Returns:
        Adjusted p-values in the input order (float64).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return out
    pv = p[valid]
    order = np.argsort(pv, kind="mergesort")
    adj = np.maximum.accumulate((m - np.arange(m)) * pv[order])
    adj = np.minimum(adj, 1.0)
    res = np.empty(m)
    res[order] = adj
    out[valid] = res
    return out


def rank_biserial(diff: Sequence[float] | np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (Kerby 2014).

    ``r = (R+ - R-) / (R+ + R-)`` where ``R+`` / ``R-`` are the sums of the ranks of ``|d|``
    (average ranks for ties) over positive / negative differences; zero differences are dropped
    (as in the Wilcoxon test with ``zero_method="wilcox"``). In [-1, 1]; +1 means every pair
    favours the first sample.

    Args:
        diff: paired differences ``a - b``.

    Returns:
        ``r``; 0.0 when no difference is non-zero.
    """
    d = np.asarray(diff, dtype=np.float64)
    d = d[~np.isnan(d) & (d != 0)]
    if d.size == 0:
        return 0.0
    ranks = sps.rankdata(np.abs(d))
    r_plus = ranks[d > 0].sum()
    r_minus = ranks[d < 0].sum()
    return float((r_plus - r_minus) / (r_plus + r_minus))


def wilcoxon_paired(
    a: np.ndarray, b: np.ndarray, zero_method: str = "wilcox"
) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired samples (``scipy.stats.wilcoxon``).

    Returns:
        ``(statistic, pvalue)``; ``(nan, nan)`` with no pairs, ``(0.0, 1.0)`` when every
        difference is zero (no evidence of a difference; scipy would return NaN or warn).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return float("nan"), float("nan")
    if np.all(a == b):
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "sample size too small" notes
        res = sps.wilcoxon(a, b, zero_method=zero_method, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


@functools.lru_cache(maxsize=256)
def min_attainable_p(n_nonzero: int) -> float:
    """Smallest two-sided p :func:`wilcoxon_paired` can return with ``n_nonzero`` non-zero pairs.

    Computed with the same scipy call on the differences ``1, 2, ..., n`` (all positive, no
    ties): ``2 / 2^n`` under the exact null distribution scipy uses up to 50 pairs
    (Wilcoxon 1945; e.g. n = 5: 0.0625), the normal approximation above. ``n_nonzero = 0``
    gives 1.0 (every difference zero: :func:`wilcoxon_paired` returns p = 1).

    Args:
        n_nonzero: number of non-zero paired differences (zeros are dropped by the test).

    Returns:
        The floor of the p-value.

    Raises:
        ValueError: for a negative ``n_nonzero``.
    """
    n = int(n_nonzero)
    if n < 0:
        raise ValueError(f"n_nonzero must be >= 0, got {n_nonzero}")
    if n == 0:
        return 1.0
    d = np.arange(1.0, n + 1.0)
    return wilcoxon_paired(d, np.zeros(n))[1]


def paired_matrix(
    df: pd.DataFrame, loss_col: str, value: str, pair_on: Sequence[str]
) -> pd.DataFrame:
    """Pivot to one row per paired cell and one column per loss.

    Raises:
        ValueError: on missing columns or a (cell, loss) that appears twice (aggregate first,
            e.g. with :func:`~segbench.stats.summary.run_means`).
    """
    pair_on = list(pair_on)
    _check_columns(df, [*pair_on, loss_col, value], "paired comparison")
    dup = df.duplicated([*pair_on, loss_col])
    if dup.any():
        example = df.loc[dup, [*pair_on, loss_col]].iloc[0].to_dict()
        raise ValueError(
            f"more than one row per (cell, loss), e.g. {example}; aggregate to one value per run "
            "first (segbench.stats.run_means) or add the missing key to pair_on"
        )
    return df.pivot(index=pair_on, columns=loss_col, values=value)


def compare_pair(wide: pd.DataFrame, a: str, b: str) -> dict:
    """Paired statistics of losses ``a`` vs ``b`` on the cells where both have a value.

    ``n_nonzero`` counts the non-zero differences (the test's sample size), ``min_p`` is their
    :func:`min_attainable_p` (NaN without pairs).
    """
    both = wide[[a, b]].dropna()
    x, y = both[a].to_numpy(np.float64), both[b].to_numpy(np.float64)
    stat, p = wilcoxon_paired(x, y)
    d = x - y
    n_nonzero = int(np.count_nonzero(d))
    return {
        "n_pairs": int(len(both)),
        "n_nonzero": n_nonzero,
        "mean_a": float(x.mean()) if len(both) else float("nan"),
        "mean_b": float(y.mean()) if len(both) else float("nan"),
        "mean_diff": float(d.mean()) if len(both) else float("nan"),
        "median_diff": float(np.median(d)) if len(both) else float("nan"),
        "statistic": stat,
        "p_value": p,
        "rank_biserial": rank_biserial(d),
        "min_p": min_attainable_p(n_nonzero) if len(both) else float("nan"),
    }


def paired_wilcoxon_holm(
    df: pd.DataFrame,
    loss_col: str = "loss",
    value: str = "miou",
    pair_on: Sequence[str] = PAIR_KEYS,
    *,
    by: Sequence[str] = (),
    losses: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """All pairwise Wilcoxon signed-rank tests between losses, Holm-corrected.

    Args:
        df: one row per run with ``pair_on``, ``loss_col``, ``value`` (and ``by``) columns.
        loss_col: the compared factor (default ``"loss"``).
        value: the metric (default ``"miou"``).
        pair_on: columns identifying a paired cell (default dataset, model, fraction, fold,
            seed). Columns not in ``pair_on`` or ``by`` must not vary within a (cell, loss).
        by: run the comparison separately per group (e.g. ``["dataset", "model", "fraction"]``);
            each group is its own Holm family. Default: one family over the whole table.
        losses: the losses to compare, in this order (default: all, sorted).
        alpha: family-wise level for the ``significant`` column (default 0.05).

    Returns:
        One row per group and unordered pair ``(loss_a, loss_b)``: ``by`` columns, ``loss_a``,
        ``loss_b``, ``n_pairs``, ``mean_a``, ``mean_b``, ``mean_diff`` (a - b), ``median_diff``,
        ``statistic`` (scipy's: the smaller signed-rank sum for two-sided), ``p_value``,
        ``p_holm``, ``rank_biserial`` (positive: a > b), ``significant`` (``p_holm < alpha``),
        ``n_nonzero`` (non-zero differences), ``min_p`` (:func:`min_attainable_p`),
        ``min_p_holm`` (Holm over the family's ``min_p``: the smallest ``p_holm`` attainable)
        and ``underpowered`` (``min_p_holm >= alpha``: cannot be significant whatever the data).

    Raises:
        ValueError: on missing columns, unknown ``losses`` or duplicated (cell, loss) rows.
    """
    by = list(by)
    pair_cols = [c for c in pair_on if c not in by]
    _check_columns(df, [*by, *pair_cols, loss_col, value], "paired_wilcoxon_holm")
    known = sorted(df[loss_col].dropna().unique().tolist(), key=str)
    if losses is not None:
        unknown = [x for x in losses if x not in known]
        if unknown:
            raise ValueError(f"losses {unknown} not in column {loss_col!r}; known: {known}")
    rows: list[dict] = []
    groups = df.groupby(by, dropna=False, sort=True) if by else [((), df)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        wide = paired_matrix(g, loss_col, value, pair_cols)
        names = list(losses) if losses is not None else [c for c in known if c in wide.columns]
        group_rows = []
        for a, b in itertools.combinations(names, 2):
            if a not in wide.columns or b not in wide.columns:
                stats = compare_pair(pd.DataFrame({a: [], b: []}), a, b)
            else:
                stats = compare_pair(wide, a, b)
            group_rows.append(
                {**dict(zip(by, key, strict=True)), "loss_a": a, "loss_b": b, **stats}
            )
        adj = holm([r["p_value"] for r in group_rows])
        adj_min = holm([r["min_p"] for r in group_rows])
        for r, p_adj, p_min in zip(group_rows, adj, adj_min, strict=True):
            r["p_holm"] = float(p_adj)
            r["significant"] = bool(p_adj < alpha)
            r["min_p_holm"] = float(p_min)
            r["underpowered"] = bool(p_min >= alpha)
        rows.extend(group_rows)
    columns = [
        *by, "loss_a", "loss_b", "n_pairs", "mean_a", "mean_b", "mean_diff", "median_diff",
        "statistic", "p_value", "p_holm", "rank_biserial", "significant", "n_nonzero", "min_p",
        "min_p_holm", "underpowered",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
