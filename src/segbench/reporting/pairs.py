"""Which two losses the qualitative panel compares, and the run files it reads (papers 000
Fig. 3-4, 003 Fig. 5). No plotting imports: the workflow calls these while Snakemake builds the
DAG; :mod:`segbench.reporting.qualitative` draws the panel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CELL = ("model", "fraction", "seed", "fold")
"""A cell of the qualitative comparison: both losses must have a run with these values."""


def _cells(runs: Sequence[Any], dataset: str, loss: str) -> set[tuple]:
    return {
        tuple(str(getattr(r, k)) for k in CELL)
        for r in runs
        if r.dataset == dataset and r.loss == loss
    }


def resolve_pair(
    runs: Sequence[Any],
    dataset: str,
    pair: Sequence[str] | None = None,
    loss_order: Sequence[str] | None = None,
) -> tuple[str, str] | None:
    """The two losses compared on ``dataset`` (``report.qualitative_pair``).

    Args:
        runs: the study's runs (:class:`segbench.config.Run`: dataset, model, loss, ...).
        pair: the configured pair, or None for the first two losses (config order) with runs of
            the same (model, fraction, seed, fold) on this dataset.
        loss_order: the study's loss keys in config order.

    Returns:
        The pair, or None when the dataset has no cell both losses ran.

    Raises:
        ValueError: a configured loss that the study does not define.
    """
    known = list(loss_order) if loss_order else sorted({r.loss for r in runs})
    if pair is not None:
        unknown = [p for p in pair if p not in known]
        if unknown:
            raise ValueError(
                f"report.qualitative_pair: unknown loss(es) {unknown}; defined: {', '.join(known)}"
            )
        a, b = str(pair[0]), str(pair[1])
        return (a, b) if _cells(runs, dataset, a) & _cells(runs, dataset, b) else None
    present = [loss for loss in known if _cells(runs, dataset, loss)]
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            if _cells(runs, dataset, a) & _cells(runs, dataset, b):
                return a, b
    return None


def pair_run_files(
    runs: Sequence[Any], dataset: str, pair: tuple[str, str], templates: dict[str, str]
) -> dict[str, list[str]]:
    """``run_a, probs_a, run_b, probs_b`` file lists of the pair's runs on ``dataset``.

    Args:
        templates: ``{"run": ..., "probs": ...}`` path templates (``segbench.paths.RUN_FILES``).
    """
    out: dict[str, list[str]] = {"run_a": [], "probs_a": [], "run_b": [], "probs_b": []}
    shared = _cells(runs, dataset, pair[0]) & _cells(runs, dataset, pair[1])
    for side, loss in (("a", pair[0]), ("b", pair[1])):
        for r in sorted(runs):
            if r.dataset != dataset or r.loss != loss:
                continue
            if tuple(str(getattr(r, k)) for k in CELL) not in shared:
                continue
            out[f"run_{side}"].append(templates["run"].format(**r.wildcards()))
            out[f"probs_{side}"].append(templates["probs"].format(**r.wildcards()))
    return out
