"""Overlap metrics per class: IoU (Jaccard) and Dice (F1), from a confusion matrix.

Convention (docs/CONVENTIONS.md, "Empty-mask policy"): for a class absent from both the
prediction and the ground truth of an image, IoU = Dice = 1 and the row is flagged
``empty_gt=True`` so aggregation can exclude it; when exactly one of them is empty the value is 0
(this falls out of the formulas because TP = 0 and FP + FN > 0). This differs from MONAI's
``DiceMetric``/``MeanIoU`` defaults (``ignore_empty=True`` gives NaN whenever the ground truth is
empty, even with false positives).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel confusion matrix of one image.

    Args:
        pred: predicted labels ``[*spatial]`` (int, values in ``[0, num_classes)``).
        target: ground-truth labels, same shape.
        num_classes: ``C``.

    Shape:
        Returns ``[C, C]`` int64, rows = ground truth, columns = prediction.
    """
    idx = target.reshape(-1).astype(np.int64) * num_classes + pred.reshape(-1).astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def overlap_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class TP/FP/FN, IoU and Dice from a confusion matrix.

    IoU_c = TP / (TP + FP + FN) (Jaccard 1912); Dice_c = 2 TP / (2 TP + FP + FN) (Dice 1945),
    both set to 1 when TP + FP + FN = 0 (class absent from prediction and ground truth).

    Args:
        cm: ``[C, C]`` confusion matrix, rows = ground truth, columns = prediction.

    Returns:
        dict of ``[C]`` arrays: ``tp``, ``fp``, ``fn`` (int64), ``iou``, ``dice`` (float64),
        ``empty_gt``, ``empty_pred`` (bool).
    """
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    union = tp + fp + fn
    both_empty = union == 0
    safe = np.where(both_empty, 1, union)
    iou = np.where(both_empty, 1.0, tp / safe)
    dice_den = np.where(both_empty, 1, 2 * tp + fp + fn)
    dice = np.where(both_empty, 1.0, 2 * tp / dice_den)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "iou": iou.astype(np.float64),
        "dice": dice.astype(np.float64),
        "empty_gt": (tp + fn) == 0,
        "empty_pred": (tp + fp) == 0,
    }


def overlap_per_class(
    pred: np.ndarray, target: np.ndarray, num_classes: int
) -> dict[str, np.ndarray]:
    """IoU and Dice of every class of one image (see :func:`overlap_from_confusion`).

    Args:
        pred: predicted labels ``[*spatial]``.
        target: ground-truth labels ``[*spatial]``.
        num_classes: ``C``.

    Returns:
        dict of ``[C]`` arrays as in :func:`overlap_from_confusion`.
    """
    return overlap_from_confusion(confusion_matrix(pred, target, num_classes))
