"""The claims table: does each pairwise claim of a paper hold in the reproduced runs?

A claim is a dict::

    {"id": "000-caml-unet-1/8",
     "text": "CAML beats the best additive loss on U-Net at 1/8 data",
     "better": "caml",
     "than": ["dice_ce_0.3", "dice_ce_0.5", "dice_ce_0.7"],   # or one name, or "best_of"
     "mode": "best_of",              # optional: "best_of" (default) or "each"
     "where": {"model": "unet", "fraction": "0.125"},          # optional filters
     "metric": "miou",
     "higher_is_better": True}       # optional; inferred from the metric name

* ``than`` a list + ``mode="best_of"``: the competitor is the listed loss with the best mean
  ``metric`` on the cells it shares with ``better`` (the paper's "beats the best of"). One test.
* ``mode="each"``: one test per listed loss; the claim holds only if every comparison does.
* ``than="best_of"``: the competitor set is every other loss present under ``where``.
* ``where``: column -> value or list of values; ``fraction`` values are compared in canonical
  form (``segbench.paths.fmt_fraction``: ``"1/8"``, ``0.125`` and ``"0.125"`` match), other
  columns as strings.

Each comparison is a paired Wilcoxon signed-rank test (two-sided, ``scipy.stats.wilcoxon``) on
the cells of :data:`~segbench.stats.summary.PAIR_KEYS`; p-values are Holm-corrected over all
comparisons of one call (the claims table is one family). Effect sizes: the mean paired
difference ``better - than`` in metric units and the matched-pairs rank-biserial correlation
(Kerby 2014; positive = ``better`` has the higher values), not Cliff's delta (which ignores the
pairing). Verdict: ``supported`` when the mean difference is in the claimed direction and
``p_holm < alpha``; ``contradicted`` when it is significant the other way; otherwise
``not significant`` (claimed direction), ``opposite, not significant`` or ``no difference``
(mean difference exactly 0); ``no data`` when no paired cell exists.

Power floor: with ``n`` non-zero paired differences the two-sided exact Wilcoxon test cannot go
below ``min_p = 2 / 2^n`` (:func:`~segbench.stats.paired.min_attainable_p`; 0.0625 for 5 pairs,
0.25 for 3). ``min_p_holm`` is Holm's adjustment of the family's floors, a lower bound of
``p_holm`` (Holm is monotone in every raw p). When ``min_p_holm >= alpha`` the comparison could
not be significant whatever the runs showed, so instead of ``not significant`` the verdict is
``underpowered (min attainable p 0.0625)`` (``..., Holm 0.125)`` when the adjustment raises it;
``opposite, underpowered (...)`` against the claimed direction) and ``underpowered`` is True.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from segbench.paths import fmt_fraction
from segbench.stats.paired import compare_pair, holm, paired_matrix
from segbench.stats.summary import PAIR_KEYS, _check_columns

LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"hd95", "hd", "nll", "brier", "ece", "mce", "ece_classwise", "asd", "assd"}
)
"""Metric names (lower-cased, also with an ``m`` or ``mean_`` prefix) where smaller is better."""

CLAIM_KEYS: frozenset[str] = frozenset(
    {"id", "text", "better", "than", "mode", "where", "metric", "higher_is_better"}
)
MODES: tuple[str, ...] = ("best_of", "each")

COLUMNS: tuple[str, ...] = (
    "id", "text", "metric", "better", "than", "n_pairs", "mean_better", "mean_than",
    "mean_diff", "rank_biserial", "statistic", "p_value", "p_holm", "direction_ok",
    "supported", "verdict", "claim_supported", "n_nonzero", "min_p", "min_p_holm", "underpowered",
)  # fmt: skip


def metric_higher_is_better(metric: str) -> bool:
    """``False`` for the names in :data:`LOWER_IS_BETTER` (also ``mhd95``, ``mean_ece``)."""
    name = metric.lower()
    for prefix in ("mean_", "m"):
        if name.startswith(prefix) and name[len(prefix) :] in LOWER_IS_BETTER:
            return False
    return name not in LOWER_IS_BETTER


def underpowered_text(min_p: float, min_p_holm: float) -> str:
    """``"min attainable p 0.0625"`` (``", Holm 0.125"`` added when the adjustment raises it)."""
    text = f"min attainable p {min_p:.3g}"
    if not np.isclose(min_p_holm, min_p, rtol=1e-9, atol=0.0):
        text += f", Holm {min_p_holm:.3g}"
    return text


def _canon(col: str, value: Any) -> str:
    if col == "fraction":
        try:
            return fmt_fraction(value)
        except (ValueError, ZeroDivisionError):
            return str(value)
    return str(value)


def _apply_where(df: pd.DataFrame, where: Mapping[str, Any], claim_id: str) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for col, wanted in where.items():
        if col not in df.columns:
            raise ValueError(f"claim {claim_id!r}: where-column {col!r} not in the table")
        values = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        targets = {_canon(col, v) for v in values}
        mask &= df[col].map(lambda x, c=col: _canon(c, x)).isin(targets).to_numpy()
    return df[mask]


def _validate_claim(claim: Mapping[str, Any], known_losses: list[str], df: pd.DataFrame) -> None:
    cid = claim.get("id", "<no id>")
    missing = [k for k in ("id", "better", "than", "metric") if k not in claim]
    if missing:
        raise ValueError(f"claim {cid!r} lacks key(s) {missing}")
    extra = set(claim) - CLAIM_KEYS
    if extra:
        raise ValueError(
            f"claim {cid!r} has unknown key(s) {sorted(extra)}; allowed: {sorted(CLAIM_KEYS)}"
        )
    if claim.get("mode", "best_of") not in MODES:
        raise ValueError(f"claim {cid!r}: mode must be one of {MODES}, got {claim.get('mode')!r}")
    if claim["metric"] not in df.columns:
        raise ValueError(f"claim {cid!r}: metric {claim['metric']!r} not in the table")
    than = claim["than"]
    names = [claim["better"]] + (
        [] if than == "best_of" else ([than] if isinstance(than, str) else list(than))
    )
    unknown = [n for n in names if n not in known_losses]
    if unknown:
        raise ValueError(f"claim {cid!r}: unknown loss(es) {unknown}; known: {known_losses}")


def evaluate_claims(
    df: pd.DataFrame,
    claims: Sequence[Mapping[str, Any]],
    *,
    loss_col: str = "loss",
    pair_on: Sequence[str] = PAIR_KEYS,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Test each claim on paired runs; one row per comparison.

    Args:
        df: one row per run (e.g. :func:`~segbench.stats.summary.run_means` output) with the
            ``pair_on`` columns, ``loss_col`` and each claim's metric column.
        claims: claim dicts (module docstring).
        loss_col: loss column (default ``"loss"``).
        pair_on: paired-cell columns (default dataset, model, fraction, fold, seed).
        alpha: family-wise level for ``supported`` (default 0.05).

    Returns:
        DataFrame with columns :data:`COLUMNS`: ``than`` is the resolved competitor,
        ``mean_diff`` = mean of paired ``better - than``, ``direction_ok`` whether that sign
        matches the claim, ``supported`` per comparison, ``claim_supported`` for the whole
        claim (all its comparisons supported), ``n_nonzero`` (non-zero differences, the test's
        n), ``min_p`` (smallest attainable two-sided p with that n), ``min_p_holm`` (Holm over
        the floors of the family) and ``underpowered`` (not significant and
        ``min_p_holm >= alpha``: no outcome of these pairs could have been significant).

    Raises:
        ValueError: on malformed claims, unknown losses or columns, or duplicated
            (cell, loss) rows.
    """
    _check_columns(df, [*pair_on, loss_col], "evaluate_claims")
    known = sorted(df[loss_col].dropna().unique().tolist(), key=str)
    rows: list[dict] = []
    for claim in claims:
        _validate_claim(claim, known, df)
        cid, metric, better = str(claim["id"]), claim["metric"], claim["better"]
        hib = claim.get("higher_is_better")
        hib = metric_higher_is_better(metric) if hib is None else bool(hib)
        sub = _apply_where(df, claim.get("where", {}) or {}, cid)
        wide = paired_matrix(sub, loss_col, metric, pair_on) if len(sub) else pd.DataFrame()
        than = claim["than"]
        if than == "best_of":
            competitors = [c for c in wide.columns if c != better]
        else:
            competitors = [than] if isinstance(than, str) else list(than)
        mode = claim.get("mode", "best_of")
        base = {"id": cid, "text": claim.get("text", ""), "metric": metric, "better": better}
        if better not in wide.columns or not any(c in wide.columns for c in competitors):
            rows.append({**base, "than": ",".join(map(str, competitors)), "n_pairs": 0})
            continue
        present = [c for c in competitors if c in wide.columns]
        if mode == "best_of":
            means = {c: wide[[better, c]].dropna()[c].mean() for c in present}
            means = {c: m for c, m in means.items() if not np.isnan(m)}
            if not means:
                rows.append({**base, "than": ",".join(map(str, present)), "n_pairs": 0})
                continue
            best = max(means, key=means.get) if hib else min(means, key=means.get)
            targets = [best]
        else:
            targets = present
        for t in targets:
            s = compare_pair(wide, better, t)
            rows.append(
                {
                    **base,
                    "than": t,
                    "n_pairs": s["n_pairs"],
                    "mean_better": s["mean_a"],
                    "mean_than": s["mean_b"],
                    "mean_diff": s["mean_diff"],
                    "rank_biserial": s["rank_biserial"],
                    "statistic": s["statistic"],
                    "p_value": s["p_value"] if s["n_pairs"] else np.nan,
                    "n_nonzero": s["n_nonzero"],
                    "min_p": s["min_p"],
                    "_hib": hib,
                }
            )
        if mode == "each":
            for c in competitors:
                if c not in wide.columns:
                    rows.append({**base, "than": c, "n_pairs": 0})
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    for col in (
        "mean_better", "mean_than", "mean_diff", "rank_biserial", "statistic", "p_value", "min_p",
        "n_nonzero",
    ):  # fmt: skip
        if col not in out:
            out[col] = np.nan
    out["n_pairs"] = out["n_pairs"].fillna(0).astype(int)
    out["n_nonzero"] = out["n_nonzero"].fillna(0).astype(int)
    out["p_holm"] = holm(out["p_value"].to_numpy(dtype=np.float64))
    # a lower bound of p_holm: Holm is non-decreasing in every raw p (module docstring)
    out["min_p_holm"] = holm(out["min_p"].to_numpy(dtype=np.float64))
    hib_col = out["_hib"] if "_hib" in out else pd.Series(True, index=out.index)
    sign = np.where(hib_col.fillna(True).astype(bool), 1.0, -1.0)
    diff = out["mean_diff"].to_numpy(dtype=np.float64) * sign
    out["direction_ok"] = diff > 0
    significant = out["p_holm"].to_numpy() < alpha
    out["supported"] = out["direction_ok"] & significant
    has_data = out["n_pairs"].to_numpy() > 0
    floor = out["min_p_holm"].to_numpy(dtype=np.float64)
    out["underpowered"] = has_data & ~significant & (floor >= alpha)
    verdicts = []
    for i in range(len(out)):
        if not has_data[i]:
            verdicts.append("no data")
        elif out["supported"].iloc[i]:
            verdicts.append("supported")
        elif significant[i] and diff[i] < 0:
            verdicts.append("contradicted")
        elif diff[i] == 0:
            verdicts.append("no difference")
        else:
            side = "" if out["direction_ok"].iloc[i] else "opposite, "
            if out["underpowered"].iloc[i]:
                why = underpowered_text(float(out["min_p"].iloc[i]), float(floor[i]))
                verdicts.append(f"{side}underpowered ({why})")
            else:
                verdicts.append(f"{side}not significant")
    out["verdict"] = verdicts
    out["claim_supported"] = out.groupby("id", sort=False)["supported"].transform("all")
    return out[list(COLUMNS)].reset_index(drop=True)
