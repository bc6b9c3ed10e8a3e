"""Shared pieces of the reporting stage: metric metadata, run tables, diverged-run counts.

Conventions used by every table and figure of :mod:`segbench.reporting`:

* One **run** is one (dataset, model, loss, fraction, seed, fold) row of
  :func:`~segbench.reporting.aggregate.run_table`; the run-level metric columns are those of the
  tidy table (``miou``, ``mdice``, ``mhd95``, ``mnsd``, ``nll``, ``brier``, ``ece``, ``mce``).
* **Diverged runs** (``status == "diverged"``) are counted per cell (``n_runs``,
  ``n_diverged``) and shown next to every statistic, but excluded from means, tests and
  figures (their metrics come from whatever checkpoint existed when training stopped).
* **Scale**: overlap metrics (IoU, Dice, NSD) are multiplied by ``scale`` (``report.scale``,
  100 = percent); HD95 stays in pixels and calibration metrics stay in their own units.
* **Direction**: :func:`segbench.stats.metric_higher_is_better` (HD95, NLL, Brier, ECE, MCE are
  lower-is-better); "best" in a table follows it.
* **Training variants** (grid blocks with ``tag`` + ``training`` overrides, loss keys
  ``{loss}~{tag}``, e.g. paper 002 Fig. 5's ``dice~adam``) are in ``tidy.csv`` but not in the
  tables, statistics and loss-comparison figures (:func:`load_tidy` drops them): they are a
  different training protocol, not a loss of the paper's tables, and as extra pairs they would
  change the Holm family of the table's comparisons. ``training_curves`` draws them from their
  histories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segbench.reporting.aggregate import run_table
from segbench.runspec import RUN_KEYS
from segbench.stats import metric_higher_is_better

CELL_KEYS = ["dataset", "model", "fraction", "loss"]
"""One table cell: the runs sharing these keys are the replicates (seeds x folds)."""


@dataclass(frozen=True)
class MetricInfo:
    """What a run-level metric is and how tables print it.

    Attributes:
        name: run-level column of the tidy table (``miou``, ``nll``, ...).
        class_col: the per-class column it averages (``iou`` for ``miou``), or None.
        label: column header in tables and axis label in figures.
        percent: multiply by ``report.scale`` (overlap metrics).
        digits: decimals printed.
    """

    name: str
    class_col: str | None
    label: str
    percent: bool
    digits: int

    @property
    def higher_is_better(self) -> bool:
        return metric_higher_is_better(self.name)

    def scale(self, scale: float) -> float:
        """Factor applied to the raw values (``scale`` for percent metrics, else 1)."""
        return float(scale) if self.percent else 1.0


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("miou", "iou", "mIoU", True, 2),
        MetricInfo("mdice", "dice", "mDSC", True, 2),
        MetricInfo("mnsd", "nsd", "mNSD", True, 2),
        MetricInfo("mhd95", "hd95", "mHD95 (px)", False, 2),
        MetricInfo("mhd", "hd", "mHD (px)", False, 2),
        MetricInfo("nll", None, "NLL", False, 4),
        MetricInfo("ece", None, "ECE", False, 4),
        MetricInfo("mce", None, "MCE", False, 4),
        MetricInfo("brier", None, "Brier", False, 4),
    )
}
"""Run-level metrics in table order."""

CLASS_METRICS = {"iou": "miou", "dice": "mdice", "nsd": "mnsd", "hd95": "mhd95", "hd": "mhd"}
"""Per-class column -> its run-level mean."""


def metric_info(name: str) -> MetricInfo:
    """Metadata of a run-level metric (``"iou"`` and ``"dice"`` are accepted for their means).

    Raises:
        ValueError: unknown metric, listing the known ones.
    """
    name = CLASS_METRICS.get(name, name)
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[name]


def available_metrics(tidy: pd.DataFrame, wanted: Sequence[str] | None = None) -> list[str]:
    """Run-level metrics with at least one value in ``tidy`` (``wanted`` filters and orders).

    ``wanted=None`` gives every known metric present, in :data:`METRICS` order.
    """
    names = [metric_info(w).name for w in wanted] if wanted else list(METRICS)
    return [m for m in dict.fromkeys(names) if m in tidy.columns and tidy[m].notna().any()]


_SEARCH_KEY = re.compile(r"~hp\d+$")
"""Search configurations' loss keys ``{loss}~hp{i:02d}`` (:data:`segbench.config.SEARCH_SEP`;
a variant tag may not have this form, so the two never mix)."""


def is_variant_key(loss: str) -> bool:
    """Whether ``loss`` is a training variant's key ``{loss}~{tag}`` (``dice~adam``), not a
    plain loss key (``dice``) nor a search configuration's (``dice~hp07``)."""
    return "~" in loss and _SEARCH_KEY.search(loss) is None


def load_tidy(path: str | Path, variants: bool = False) -> pd.DataFrame:
    """Read the tidy table with ``fraction`` kept as its canonical text ("1", "0.5", ...).

    Training variants' rows (:func:`is_variant_key`) are dropped unless ``variants``: see the
    module docstring."""
    tidy = pd.read_csv(path, dtype={"fraction": str, "class_name": str})
    if variants or tidy.empty:
        return tidy
    keep = ~tidy["loss"].astype(str).map(is_variant_key)
    return tidy if keep.all() else tidy[keep].reset_index(drop=True)


def completed_runs(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per completed run (diverged runs dropped; count them with :func:`run_counts`)."""
    runs = run_table(tidy)
    return runs[runs["status"] == "completed"].reset_index(drop=True)


def run_counts(tidy: pd.DataFrame, keys: Sequence[str] = CELL_KEYS) -> pd.DataFrame:
    """``n_runs`` and ``n_diverged`` per group of ``keys`` (every status counted)."""
    runs = run_table(tidy)
    g = runs.groupby(list(keys), sort=True)["status"]
    out = pd.DataFrame(
        {"n_runs": g.size(), "n_diverged": g.agg(lambda s: int((s == "diverged").sum()))}
    )
    return out.reset_index()


def ordered(values: Iterable[str], preferred: Sequence[str] | None = None) -> list[str]:
    """Unique ``values`` with those in ``preferred`` first, in its order (config order)."""
    vals = list(dict.fromkeys(str(v) for v in values))
    if not preferred:
        return vals
    pref = [str(p) for p in preferred]
    return [v for v in pref if v in vals] + [v for v in vals if v not in pref]


def fraction_order(fractions: Iterable[str]) -> list[str]:
    """Fractions from the largest (full data) to the smallest, as the papers list them."""
    return sorted(dict.fromkeys(str(f) for f in fractions), key=float, reverse=True)


def replicate_unit(replicate: str) -> list[str] | None:
    """``summarize``'s ``unit`` for ``report.replicate``: ``run`` -> None, ``seed`` -> ["seed"].

    Raises:
        ValueError: any other value.
    """
    if replicate == "run":
        return None
    if replicate == "seed":
        return ["seed"]
    raise ValueError(f"report.replicate must be 'run' or 'seed', got {replicate!r}")


__all__ = [
    "CELL_KEYS",
    "CLASS_METRICS",
    "METRICS",
    "RUN_KEYS",
    "MetricInfo",
    "available_metrics",
    "completed_runs",
    "fraction_order",
    "load_tidy",
    "metric_info",
    "ordered",
    "replicate_unit",
    "run_counts",
    "write_csv",
]


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as CSV (no index) atomically (:func:`segbench.io_utils.atomic_write_text`)."""
    import io

    from segbench.io_utils import atomic_write_text

    buf = io.StringIO()
    df.to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())
