"""Reproduced vs published numbers, and the claims table.

**Published numbers** (``config/paper_results/<study>.csv``, long format ``study, table, dataset,
model, fraction, loss, metric, class, mean, std, notes``; docs/studies.md): each row is joined to
the reproduced runs of the same (dataset, model, fraction, loss) and metric:

* ``iou`` / ``dice`` / ``nsd`` / ``hd`` / ``hd95`` with ``class`` = a class name: the per-class
  column of the same name of the tidy table. ``hd`` is the classic (maximum) Hausdorff distance
  and is compared with our ``hd``, not ``hd95``: paper 004 reports "the Hausdorff Distance (HD)"
  (``/work/shared/papers/004_*.txt`` l.210) and nothing about a percentile;
* ``miou`` / ``mdice`` / ``mnsd`` / ``mhd95`` / ``mhd`` / ``nll`` / ``ece`` / ``mce`` / ``brier``
  with ``class = mean``: the run-level column;
* rows describing a dataset (``loss = ground_truth``: ``fg_percent``, ``region_proportion``) are
  not runs and are left out.

The reproduced values are those of the tidy table, i.e. of the run-level aggregation
``evaluation.aggregate`` picked (the Markdown header says which, :mod:`.notes`).
Overlap metrics are compared in percent (published numbers are in percent), whatever
``report.scale`` is. The reproduced mean ± std is over the replicates of ``report.replicate``
(:func:`segbench.stats.summarize`). ``diff = reproduced - published``; the cell is **within**
the combined spread when ``|diff| <= sqrt(std_pub^2 + std_rep^2)``, where a missing published std
(the paper gives none) or a single replicate counts as 0 (said in ``notes``). This is a
tolerance band, not a test.

**Claims** (``config/claims/<study>.yaml``): :func:`segbench.stats.evaluate_claims` on the
completed runs (one family, Holm-corrected). Claims that cannot be evaluated on these runs (a
loss not run, a metric not computed) are listed with the reason instead of failing; a ``than``
list with some losses not run is evaluated against the remaining ones and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from segbench.paths import fmt_fraction
from segbench.reporting.common import CELL_KEYS, completed_runs, replicate_unit, run_counts
from segbench.reporting.notes import header_note
from segbench.reporting.tables import frame_to_markdown
from segbench.stats import evaluate_claims, summarize

PUBLISHED_COLUMNS = [
    "study", "table", "dataset", "model", "fraction", "loss", "metric", "class", "mean", "std",
    "notes",
]  # fmt: skip

PUBLISHED_METRICS: dict[str, tuple[str, str, bool]] = {
    # published name: (level, tidy column, percent)
    "iou": ("class", "iou", True),
    "dice": ("class", "dice", True),
    "nsd": ("class", "nsd", True),
    "hd": ("class", "hd", False),
    "hd95": ("class", "hd95", False),
    "miou": ("run", "miou", True),
    "mdice": ("run", "mdice", True),
    "mnsd": ("run", "mnsd", True),
    "mhd95": ("run", "mhd95", False),
    "mhd": ("run", "mhd", False),
    "nll": ("run", "nll", False),
    "ece": ("run", "ece", False),
    "mce": ("run", "mce", False),
    "brier": ("run", "brier", False),
}
"""Published metric name -> (per class or per run, tidy column, compared in percent)."""

COMPARISON_COLUMNS = [
    "table", "dataset", "model", "fraction", "loss", "metric", "class", "published_mean",
    "published_std", "reproduced_mean", "reproduced_std", "n", "n_runs", "n_diverged", "diff",
    "spread", "within", "status", "notes",
]  # fmt: skip


def read_published(path: str) -> pd.DataFrame:
    """Read a published-numbers CSV; ``fraction`` canonical, ``model`` / ``class`` as text.

    Raises:
        ValueError: missing columns.
    """
    df = pd.read_csv(path, dtype={"fraction": str, "model": str, "class": str, "table": str})
    missing = [c for c in PUBLISHED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} missing; expected {PUBLISHED_COLUMNS}")
    df["fraction"] = df["fraction"].map(lambda f: fmt_fraction(f) if pd.notna(f) else f)
    return df


def _reproduced(tidy: pd.DataFrame, unit: list[str] | None) -> pd.DataFrame:
    """Long table of reproduced statistics: CELL_KEYS, metric (published name), class."""
    runs = completed_runs(tidy)
    done = tidy[tidy["status"] == "completed"]
    parts = []
    for pub, (level, col, percent) in PUBLISHED_METRICS.items():
        if col not in tidy.columns or tidy[col].isna().all():
            continue
        factor = 100.0 if percent else 1.0
        if level == "run":
            data = runs[[*CELL_KEYS, "seed", "fold", col]].copy()
            by = CELL_KEYS
        else:
            data = done[[*CELL_KEYS, "seed", "fold", "class_name", col]].copy()
            data = data.rename(columns={"class_name": "class"})
            by = [*CELL_KEYS, "class"]
        data[col] = data[col].astype(float) * factor
        stat = summarize(data, by=by, value=col, unit=unit, n_boot=1000)
        if level == "run":
            stat["class"] = "mean"
        stat["metric"] = pub
        parts.append(stat[[*CELL_KEYS, "metric", "class", "mean", "std", "n"]])
    if not parts:
        return pd.DataFrame(columns=[*CELL_KEYS, "metric", "class", "mean", "std", "n"])
    return pd.concat(parts, ignore_index=True)


def _status(row: pd.Series, computed: set[str]) -> str:
    if pd.isna(row["published_mean"]):
        return "no published value"
    if row["n_runs"] == 0 or pd.isna(row["n_runs"]):
        return "not run"
    if row["n_runs"] == row["n_diverged"]:
        return "all runs diverged"
    if pd.isna(row["reproduced_mean"]):
        metric = PUBLISHED_METRICS[row["metric"]][1]
        return "not computed" if metric not in computed else "no value"
    return "compared"


def published_comparison(
    tidy: pd.DataFrame, published: pd.DataFrame, replicate: str = "run"
) -> pd.DataFrame:
    """Join published numbers to the reproduced runs (module docstring for the rules).

    Returns:
        :data:`COMPARISON_COLUMNS`, one row per published value of a run (dataset
        descriptions dropped). ``status``: compared / not run / all runs diverged /
        not computed (metric off, e.g. NSD without ``evaluation.surface``) / no value (e.g. a
        class name the prepared dataset does not have) / no published value. ``within``:
        "yes" / "no" for compared rows, "" otherwise.
    """
    unit = replicate_unit(replicate)
    pub = published[published["metric"].isin(list(PUBLISHED_METRICS))].copy()
    pub = pub[pub["loss"] != "ground_truth"]
    pub["model"] = pub["model"].fillna("").astype(str)
    pub["class"] = pub["class"].fillna("mean").astype(str)
    rep = _reproduced(tidy, unit).rename(
        columns={"mean": "reproduced_mean", "std": "reproduced_std"}
    )
    rep["class"] = rep["class"].astype(str)
    out = pub.rename(columns={"mean": "published_mean", "std": "published_std"})
    out = out.merge(rep, on=[*CELL_KEYS, "metric", "class"], how="left")
    out = out.merge(run_counts(tidy), on=CELL_KEYS, how="left")
    out[["n_runs", "n_diverged"]] = out[["n_runs", "n_diverged"]].fillna(0).astype(int)
    out["n"] = out["n"].fillna(0).astype(int)
    computed = {c for c in tidy.columns if tidy[c].notna().any()}
    out["status"] = [_status(r, computed) for _, r in out.iterrows()] if len(out) else []
    s_pub = out["published_std"].astype(float)
    s_rep = out["reproduced_std"].astype(float)
    out["diff"] = out["reproduced_mean"] - out["published_mean"]
    out["spread"] = np.sqrt(s_pub.fillna(0.0) ** 2 + s_rep.fillna(0.0) ** 2)
    ok = out["status"] == "compared"
    out["within"] = np.where(ok, np.where(out["diff"].abs() <= out["spread"], "yes", "no"), "")
    out["spread"] = out["spread"].where(ok)
    notes = []
    for _, r in out.iterrows():
        parts = [str(r["notes"])] if isinstance(r["notes"], str) and r["notes"] else []
        if r["status"] == "compared":
            if pd.isna(r["published_std"]):
                parts.append("no published std (counted as 0)")
            if pd.isna(r["reproduced_std"]):
                parts.append("one replicate (std counted as 0)")
        if r["n_diverged"]:
            parts.append(f"{r['n_diverged']} of {r['n_runs']} runs diverged (excluded)")
        notes.append("; ".join(parts))
    out["notes"] = notes
    out["table"] = out["table"].astype(str)
    return out[COMPARISON_COLUMNS].reset_index(drop=True)


def no_published_frame(reason: str) -> pd.DataFrame:
    """The one-row table written when a study has no published numbers."""
    row = dict.fromkeys(COMPARISON_COLUMNS, "")
    row.update(status="no published results", notes=reason)
    return pd.DataFrame([row], columns=COMPARISON_COLUMNS)


def _fmt_num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
        return ""
    return f"{float(v):.{digits}g}"


def comparison_markdown(
    df: pd.DataFrame, title: str, aggregate: str = "image", rows: str = "all"
) -> str:
    """The comparison as Markdown, with a one-line tally of the ``within`` column and the
    aggregation note of ``aggregate`` (``evaluation.aggregate``).

    ``rows`` (``report.published_rows``): ``all`` lists every published row, ``covered`` only
    the rows of the (dataset, model, fraction, loss) cells the study ran (status other than
    ``not run``), saying how many were left out; the CSV always keeps every row.
    """
    if rows not in ("all", "covered"):
        raise ValueError(f"report.published_rows: {rows!r} is not one of 'all', 'covered'")
    if df.empty or (df["status"] == "no published results").all():
        reason = df["notes"].iloc[0] if len(df) else "no published rows match this study"
        return f"### {title}\n\nNo published results: {reason}.\n"
    compared = df[df["status"] == "compared"]
    n_in = int((compared["within"] == "yes").sum())
    counts = df["status"].value_counts()
    tally = ", ".join(f"{k}: {v}" for k, v in counts.items())
    head = (
        f"{n_in} of {len(compared)} compared values lie within the combined spread "
        f"|diff| <= sqrt(std_pub^2 + std_rep^2) (rows by status: {tally}). Overlap metrics in %, "
        f"HD (maximum symmetric surface distance, compared with our HD) and HD95 in pixels, "
        f"calibration in raw units. {header_note(aggregate)}\n\n"
    )
    t = df.copy()
    if rows == "covered":
        not_run = t["status"] == "not run"
        t = t[~not_run]
        head += (
            f"Only the rows this study covers are listed; {int(not_run.sum())} published rows of "
            "cells it does not run are left out here (they stay in published.csv).\n\n"
        )
    for c in ("published_mean", "published_std", "reproduced_mean", "reproduced_std", "diff"):
        t[c] = t[c].map(_fmt_num)
    t["spread"] = t["spread"].map(_fmt_num)
    return f"### {title}\n\n{head}" + frame_to_markdown(t)


# --------------------------------------------------------------------------------------- claims

CLAIM_TABLE_COLUMNS = [
    "id", "text", "metric", "better", "than", "n_pairs", "mean_better", "mean_than",
    "mean_diff", "rank_biserial", "statistic", "p_value", "p_holm", "direction_ok",
    "supported", "verdict", "claim_supported", "n_nonzero", "min_p", "min_p_holm", "underpowered",
    "note",
]  # fmt: skip


def _than_list(than: Any) -> list[str] | str:
    if than == "best_of":
        return "best_of"
    return [than] if isinstance(than, str) else [str(t) for t in than]


def _prepare_claim(
    claim: Mapping[str, Any], losses: set[str], metrics: set[str]
) -> tuple[dict[str, Any] | None, str]:
    """(claim to evaluate or None, note) after dropping what these runs cannot answer."""
    c = dict(claim)
    metric = str(c.get("metric", ""))
    if not losses:
        return None, "no completed run"
    if metric not in metrics:
        return None, f"metric {metric!r} not computed in these runs"
    if c.get("better") not in losses:
        return None, f"loss {c.get('better')!r} has no completed run"
    than = _than_list(c.get("than", []))
    if than == "best_of":
        return c, ""
    present = [t for t in than if t in losses]
    if not present:
        return None, f"loss(es) {', '.join(than)} have no completed run"
    note = ""
    if len(present) < len(than):
        missing = [t for t in than if t not in losses]
        note = f"compared without {', '.join(missing)} (no completed run)"
    c["than"] = (
        present if len(present) > 1 or not isinstance(claim.get("than"), str) else present[0]
    )
    return c, note


def claims_table(
    tidy: pd.DataFrame, claims: Sequence[Mapping[str, Any]], alpha: float = 0.05
) -> pd.DataFrame:
    """Evaluate ``claims`` on the completed runs (see the module docstring).

    Returns:
        :data:`CLAIM_TABLE_COLUMNS`, one row per comparison, in claim order; unevaluable claims
        have ``verdict = "not evaluated"`` and the reason in ``note``.
    """
    runs = completed_runs(tidy)
    losses = set(runs["loss"].astype(str))
    metrics = {c for c in runs.columns if runs[c].notna().any()}
    prepared, notes, skipped = [], {}, {}
    for claim in claims:
        cid = str(claim.get("id", "<no id>"))
        c, note = _prepare_claim(claim, losses, metrics)
        notes[cid] = note
        if c is None:
            skipped[cid] = claim
        else:
            prepared.append(c)
    result = evaluate_claims(runs, prepared, alpha=alpha) if prepared else pd.DataFrame()
    rows = []
    for claim in claims:
        cid = str(claim.get("id", "<no id>"))
        if cid in skipped:
            than = claim.get("than", "")
            rows.append(
                {
                    "id": cid,
                    "text": str(claim.get("text", "")).strip(),
                    "metric": claim.get("metric", ""),
                    "better": claim.get("better", ""),
                    "than": than if isinstance(than, str) else ",".join(map(str, than)),
                    "n_pairs": 0,
                    "verdict": "not evaluated",
                    "supported": False,
                    "claim_supported": False,
                    "underpowered": False,
                    "note": notes[cid],
                }
            )
            continue
        for _, r in result[result["id"] == cid].iterrows():
            row = r.to_dict()
            row["text"] = str(row.get("text", "")).strip()
            row["note"] = notes[cid]
            rows.append(row)
    return pd.DataFrame(rows, columns=CLAIM_TABLE_COLUMNS)


def no_claims_frame(reason: str) -> pd.DataFrame:
    """The one-row table written when a study has no claims file."""
    row = dict.fromkeys(CLAIM_TABLE_COLUMNS, "")
    row.update(verdict="no claims", note=reason)
    return pd.DataFrame([row], columns=CLAIM_TABLE_COLUMNS)


def claims_markdown(df: pd.DataFrame, title: str, alpha: float = 0.05) -> str:
    """Claims table as Markdown with a tally of verdicts."""
    if df.empty or (df["verdict"] == "no claims").all():
        reason = df["note"].iloc[0] if len(df) else "no claims"
        return f"### {title}\n\nNo claims: {reason}.\n"
    ids = df.drop_duplicates("id")
    n_sup = int(ids["claim_supported"].astype(bool).sum())
    tally = ", ".join(f"{k}: {v}" for k, v in df["verdict"].value_counts().items())
    head = (
        f"{n_sup} of {len(ids)} claims supported (every comparison of the claim in the claimed "
        f"direction with Holm-corrected p < {alpha}, two-sided Wilcoxon signed-rank on paired "
        f"runs). Comparisons by verdict: {tally}.\n\n"
    )
    cols = ["id", "metric", "better", "than", "n_pairs", "mean_better", "mean_than"]
    cols += ["mean_diff", "rank_biserial", "p_holm", "min_p_holm", "verdict", "note", "text"]
    t = df[cols].copy()
    for c in ("mean_better", "mean_than", "mean_diff", "rank_biserial", "p_holm", "min_p_holm"):
        t[c] = t[c].map(_fmt_num)
    return f"### {title}\n\n{head}" + frame_to_markdown(t)


__all__ = [
    "CLAIM_TABLE_COLUMNS",
    "COMPARISON_COLUMNS",
    "PUBLISHED_METRICS",
    "claims_markdown",
    "claims_table",
    "comparison_markdown",
    "no_claims_frame",
    "no_published_frame",
    "published_comparison",
    "read_published",
]
