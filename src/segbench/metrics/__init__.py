"""Segmentation metrics per image and per class, from saved softmax probabilities.

Public API (used by the evaluation stage)::

    rows = image_metrics(prob, target, num_classes, spacing=None, nsd_tolerance=1.0,
                         n_bins=15, surface=True)       # list of per-class dicts
    cal = image_calibration(prob, target, n_bins=15)     # nll, brier, ece, mce, ece_classwise
    pooled = dataset_calibration(probs_list, targets_list, n_bins=15)
    rel = reliability_bins(probs_list, targets_list, n_bins=15)  # DataFrame

Conventions (empty masks, HD95 pooling, bins, Brier scaling) are in docs/metrics.md and in the
docstrings of the submodules: :mod:`.overlap`, :mod:`.surface`, :mod:`.calibration`,
:mod:`.per_image`.
"""

from segbench.metrics import calibration, overlap, per_image, surface
from segbench.metrics._inputs import EPS
from segbench.metrics.calibration import (
    BinStats,
    brier,
    dataset_calibration,
    image_calibration,
    nll,
    reliability_bins,
)
from segbench.metrics.overlap import confusion_matrix, overlap_from_confusion, overlap_per_class
from segbench.metrics.per_image import ROW_KEYS, image_metrics
from segbench.metrics.surface import (
    hd_percentile,
    image_diagonal,
    nsd_from_distances,
    surface_distances,
    surface_metrics_binary,
)

__all__ = [
    "EPS",
    "ROW_KEYS",
    "BinStats",
    "brier",
    "calibration",
    "confusion_matrix",
    "dataset_calibration",
    "hd_percentile",
    "image_calibration",
    "image_diagonal",
    "image_metrics",
    "nll",
    "nsd_from_distances",
    "overlap",
    "overlap_from_confusion",
    "overlap_per_class",
    "per_image",
    "reliability_bins",
    "surface",
    "surface_distances",
    "surface_metrics_binary",
]
