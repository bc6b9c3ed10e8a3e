"""Per-image, per-class segmentation metrics: the rows of ``per_image.csv``.

Combines :mod:`segbench.metrics.overlap` (IoU, Dice) and :mod:`segbench.metrics.surface`
(HD95, HD, NSD) on the hard prediction ``argmax_c prob``. Raw per-image, per-class values only; all
averaging (over classes, images, runs) happens in the tables stage (:mod:`segbench.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segbench.metrics._inputs import check_n_bins, check_prob_target, resolve_spacing
from segbench.metrics.overlap import overlap_per_class
from segbench.metrics.surface import surface_metrics_binary

ROW_KEYS: tuple[str, ...] = (
    "class", "iou", "dice", "hd95", "hd", "nsd", "empty_gt", "empty_pred",
)  # fmt: skip
"""Keys of every dict returned by :func:`image_metrics`, in order."""


def image_metrics(
    prob: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    *,
    spacing: float | Sequence[float] | None = None,
    nsd_tolerance: float = 1.0,
    n_bins: int = 15,
    surface: bool = True,
) -> list[dict]:
    """IoU, Dice, HD95, HD (max) and NSD of every class of one image.

    Args:
        prob: softmax probabilities ``[C, H, W]`` or ``[C, D, H, W]`` (float16 is fine).
        target: integer labels ``[H, W]`` / ``[D, H, W]`` in ``[0, C)``.
        num_classes: ``C`` (checked against ``prob.shape[0]``).
        spacing: pixel/voxel spacing per spatial axis (``None``: 1, so HD95 and the NSD
            tolerance are in pixels; give millimetres to get millimetres).
        nsd_tolerance: NSD tolerance in the units of ``spacing`` (default 1.0).
        n_bins: accepted for interface symmetry with :func:`image_calibration`; only checked
            here (calibration is not per class).
        surface: compute HD95/HD/NSD (default True); ``False`` fills them with NaN ("not
            computed"), which is much faster.

    Shape:
        ``prob [C, *spatial]``, ``target [*spatial]``.

    Returns:
        ``C`` dicts, one per class ``c`` in order, with keys :data:`ROW_KEYS`:
        ``class`` (int), ``iou``, ``dice`` (CONVENTIONS.md empty policy: both empty -> 1,
        one empty -> 0), ``hd95`` (pooled 95th percentile; both empty -> 0, one empty -> image
        diagonal), ``hd`` (classic Hausdorff distance, the maximum of both directed distance
        sets, paper 004 l.210; same empty policy as ``hd95``), ``nsd`` (both empty -> 1, one
        empty -> 0; exact grid ties with the tolerance count as within), ``empty_gt`` (class absent from
        the ground truth), ``empty_pred`` (class absent from the prediction).

    Raises:
        ValueError: on bad shapes, labels, ``num_classes``, ``spacing``, ``nsd_tolerance`` or
            ``n_bins``.
    """
    prob, target = check_prob_target(prob, target, num_classes)
    check_n_bins(n_bins)
    resolve_spacing(spacing, target.ndim)
    if not (np.isfinite(nsd_tolerance) and nsd_tolerance >= 0):
        raise ValueError(f"nsd_tolerance must be a finite number >= 0, got {nsd_tolerance!r}")
    pred = prob.argmax(axis=0)
    ov = overlap_per_class(pred, target, num_classes)
    rows: list[dict] = []
    for c in range(num_classes):
        if surface:
            surf = surface_metrics_binary(
                pred == c, target == c, spacing=spacing, nsd_tolerance=nsd_tolerance
            )
        else:
            surf = {"hd95": float("nan"), "hd": float("nan"), "nsd": float("nan")}
        rows.append(
            {
                "class": c,
                "iou": float(ov["iou"][c]),
                "dice": float(ov["dice"][c]),
                "hd95": float(surf["hd95"]),
                "hd": float(surf["hd"]),
                "nsd": float(surf["nsd"]),
                "empty_gt": bool(ov["empty_gt"][c]),
                "empty_pred": bool(ov["empty_pred"][c]),
            }
        )
    return rows
