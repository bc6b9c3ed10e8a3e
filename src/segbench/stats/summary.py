"""Descriptive summaries of runs: per-run class means, mean +- std and bootstrap CIs.

Pure functions on pandas DataFrames. The tidy table (``results/tables/tidy.csv``) has one row
per (run, class) with the identity columns :data:`RUN_KEYS`; :func:`run_means` turns it into one
row per run (e.g. ``miou``), :func:`summarize` gives the table cells.

Reporting protocols of the papers (what one "+-" means):

* Paper 000 (Yokoi & Hotta): each setting is 5-fold CV repeated with 3 seeds and "the average
  mIoU was reported"; the +- values are sample stds (ddof=1) of 3 numbers on a 0.2 grid
  (0.11 = sd(0, 0, 0.2), 0.23 = sd(0, 0, 0.4), 0.61 = sd(0, 0.4, 1.2)), i.e. a std over the 3
  seeds (inferred from the tables; the text does not say). Use ``unit=["seed"]`` (the 5 folds
  of each seed are averaged first), ``ddof=1``.
* Papers 002, 003, 004: mean +- std over independent runs (002: the 5 best of 25 runs; 003 and
  004: 3 runs); ddof is not stated; we use ``ddof=1`` and ``unit=None`` (one row = one run).

A single replicate has no spread: its std is NaN (written as an empty CSV cell), never 0, for
every ``ddof`` (``ddof=0`` would otherwise give 0.0), and :func:`format_mean_std` writes
``"45.26 (n=1)"``: the papers never report a +- over one run, so a 0 would read as "perfectly
reproducible". Our choice, stated in the tables' headers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from segbench.runspec import RUN_KEYS

__all__ = ["PAIR_KEYS", "RUN_KEYS", "bootstrap_ci", "format_mean_std", "run_means", "summarize"]

PAIR_KEYS: tuple[str, ...] = ("dataset", "model", "fraction", "fold", "seed")
"""Columns that identify one paired cell: the same split, data fraction and seed, loss varies."""


def _check_columns(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what}: column(s) {missing} not in the table; columns are {list(df.columns)}"
        )


def run_means(
    tidy: pd.DataFrame,
    value: str = "iou",
    *,
    name: str | None = None,
    include_background: bool = True,
    background_class: int = 0,
    class_col: str = "class",
    run_cols: Sequence[str] = RUN_KEYS,
) -> pd.DataFrame:
    """Mean over classes of one metric, per run (e.g. mIoU from per-class IoU).

    Args:
        tidy: one row per (run, class) with ``run_cols``, ``class_col`` and ``value``.
        value: metric column to average (default ``"iou"``).
        name: output column name (default ``"m" + value``, e.g. ``"miou"``).
        include_background: keep class ``background_class`` in the mean (default True, the
            CONVENTIONS.md default; paper 000 tables include background).
        background_class: label of the background class (default 0).
        class_col: class column (default ``"class"``).
        run_cols: run identity columns (default :data:`RUN_KEYS`).

    Returns:
        One row per run: ``run_cols`` + ``name`` + ``n_classes`` (classes averaged; NaN values
        are skipped and not counted).

    Raises:
        ValueError: on missing columns or a (run, class) appearing twice.
    """
    cols = list(run_cols)
    _check_columns(tidy, [*cols, class_col, value], "run_means")
    if tidy.duplicated([*cols, class_col]).any():
        raise ValueError("run_means: a (run, class) pair appears more than once in the table")
    df = tidy if include_background else tidy[tidy[class_col] != background_class]
    out = (
        df.groupby(cols, dropna=False, sort=True)[value]
        .agg(["mean", "count"])
        .reset_index()
        .rename(columns={"mean": name or f"m{value}", "count": "n_classes"})
    )
    return out


def bootstrap_ci(
    values: np.ndarray,
    *,
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean (``scipy.stats.bootstrap``).

    Args:
        values: 1-D sample (NaN not allowed; drop it first).
        n_boot: resamples (default 10 000).
        ci: confidence level (default 0.95).
        seed: seed of ``numpy.random.default_rng`` (default 0), so tables are reproducible.
        method: ``"percentile"`` (default: robust with few or tied values), ``"basic"`` or
            ``"BCa"``.

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` for fewer than 2 values; ``(v, v)`` if all values equal.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = sps.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_boot,
        confidence_level=ci,
        method=method,
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(
    df: pd.DataFrame,
    by: Sequence[str],
    value: str = "iou",
    *,
    unit: Sequence[str] | None = None,
    ddof: int = 1,
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> pd.DataFrame:
    """Mean, standard deviation, count and bootstrap CI of ``value`` per group.

    Args:
        df: table with the ``by`` columns and ``value`` (e.g. per-run ``miou`` from
            :func:`run_means`, or per-class rows with ``"class"`` in ``by``).
        by: grouping columns (one output row per group), e.g.
            ``["dataset", "model", "fraction", "loss"]``.
        value: the numeric column (default ``"iou"``).
        unit: columns naming the replicate the std is taken over. ``None`` (default): every
            row is one replicate. E.g. ``["seed"]``: rows sharing ``(*by, seed)`` are first
            averaged (the folds of each seed), then mean/std/CI are over seeds (paper 000).
        ddof: delta degrees of freedom of the std (default 1: sample std).
        n_boot, ci, seed, method: bootstrap of the mean over replicates, see
            :func:`bootstrap_ci` (default 10 000 percentile resamples, 95 %, seed 0).

    Returns:
        ``by`` columns + ``mean``, ``std`` (NaN when n <= ddof and for a single replicate,
        whatever ``ddof``: one value has no spread), ``n`` (replicates with a value), ``n_nan`` (replicates whose value was NaN, skipped), ``ci_lo``, ``ci_hi``.

    Raises:
        ValueError: on missing columns or a non-numeric ``value``.
    """
    by = list(by)
    unit_cols = list(unit or [])
    _check_columns(df, [*by, *unit_cols, value], "summarize")
    if not pd.api.types.is_numeric_dtype(df[value]):
        raise ValueError(f"summarize: column {value!r} is not numeric")
    data = df[[*by, *unit_cols, value]]
    if unit_cols:
        data = data.groupby([*by, *unit_cols], dropna=False, sort=True)[value].mean().reset_index()
    rows = []
    groups = data.groupby(by, dropna=False, sort=True) if by else [((), data)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        vals = g[value].to_numpy(dtype=np.float64)
        finite = vals[~np.isnan(vals)]
        n = finite.size
        lo, hi = bootstrap_ci(finite, n_boot=n_boot, ci=ci, seed=seed, method=method)
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "mean": float(finite.mean()) if n else float("nan"),
                "std": float(finite.std(ddof=ddof)) if n > max(ddof, 1) else float("nan"),
                "n": int(n),
                "n_nan": int(vals.size - n),
                "ci_lo": lo,
                "ci_hi": hi,
            }
        )
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "n", "n_nan", "ci_lo", "ci_hi"])


def format_mean_std(
    mean: float, std: float, *, scale: float = 1.0, digits: int = 2, n: int | None = None
) -> str:
    """``"45.26±0.11"``-style cell text (``scale=100`` for percentages as in paper 000).

    Args:
        mean, std: the statistics (NaN std: no ``±`` part).
        scale: factor applied to both (100 for percent).
        digits: decimals.
        n: number of replicates, when known. ``n == 1`` writes ``"45.26 (n=1)"`` whatever
            ``std`` is (a std over one replicate is undefined, not 0).

    Returns:
        The cell text; ``"n/a"`` for a NaN mean.
    """
    if np.isnan(mean):
        return "n/a"
    if n is not None and int(n) == 1:
        return f"{mean * scale:.{digits}f} (n=1)"
    if np.isnan(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f}±{std * scale:.{digits}f}"
