"""One wording, used by every report table header, for how a reported mean was formed.

``evaluation.aggregate`` (schema) picks which of the two run-level aggregations the tables show;
both are computed for every run (``metrics.json`` top level = image, ``dataset`` block =
dataset; :mod:`segbench.evaluate`, ``docs/metrics.md`` "Aggregation"). The papers are silent on
this, so each table states it.
"""

from __future__ import annotations

from typing import Any

AGGREGATE_NOTES = {
    "image": (
        "per-image aggregation (evaluation.aggregate: image): each run's class value is the "
        "mean over its test images of the per-image value, an image where the class is absent "
        "from both truth and prediction being left out of that class's mean; calibration "
        "metrics are per-image means"
    ),
    "dataset": (
        "dataset aggregation (evaluation.aggregate: dataset): each run's IoU/Dice come from one "
        "confusion matrix pooled over all pixels of its test fold and its calibration metrics "
        "from all its test pixels pooled; HD95/HD/NSD stay per-image means"
    ),
}


def aggregation_note(aggregate: str) -> str:
    """The sentence a table header carries for ``evaluation.aggregate`` = ``aggregate``.

    Raises:
        ValueError: ``aggregate`` is not ``"image"`` or ``"dataset"``.
    """
    try:
        return AGGREGATE_NOTES[aggregate]
    except KeyError:
        raise ValueError(
            f"evaluation.aggregate: {aggregate!r} is not one of {sorted(AGGREGATE_NOTES)}"
        ) from None


def header_note(aggregate: str) -> str:
    """:func:`aggregation_note` as a sentence for a table header ("Means: ...")."""
    return f"Means: {aggregation_note(aggregate)}."


def snakemake_aggregate(smk: Any) -> str:
    """``evaluation.aggregate`` for a Snakemake script: ``params.aggregate`` when the rule
    passes it, else ``config["evaluation"]["aggregate"]``, else ``"image"`` (schema default)."""
    value = getattr(smk.params, "aggregate", None)
    if not isinstance(value, str):
        value = dict(getattr(smk, "config", {}) or {}).get("evaluation", {}).get("aggregate")
    value = value or "image"
    aggregation_note(value)  # validate
    return value
