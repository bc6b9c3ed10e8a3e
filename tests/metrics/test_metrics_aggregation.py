"""Run-level aggregation (issue #15): ``dataset`` = one confusion matrix per test fold.

Independent reference: scikit-learn ``jaccard_score`` / ``f1_score`` (``average=None``) on all
pixels of the fold concatenated (pooled counts), and a hand-made case where the per-image mean
and the pooled value differ by a known amount.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, jaccard_score

from segbench.evaluate import dataset_aggregate, summarize_run
from segbench.metrics import dataset_calibration, image_metrics


def _probs(pred: np.ndarray, c: int) -> np.ndarray:
    onehot = np.eye(c, dtype=np.float32)[pred]  # [N, H, W, C]
    p = 0.1 / c + 0.9 * onehot
    return np.moveaxis(p / p.sum(-1, keepdims=True), -1, 1)


def _image_summary(probs, masks, names, include_background):
    rows = []
    for k in range(len(probs)):
        for r in image_metrics(probs[k], masks[k], len(names), surface=False):
            rows.append({**r, "image": str(k)})
    per_image = pd.DataFrame(rows)[["image", "class", "iou", "dice", "empty_gt", "empty_pred"]]
    return summarize_run(per_image, pd.DataFrame({"nll": [0.0]}), include_background, names)


def test_dataset_aggregate_equals_sklearn_on_pooled_pixels():
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 4, (5, 12, 10))
    masks[:, :3] = 0
    pred = np.where(rng.random(masks.shape) < 0.7, masks, rng.integers(0, 4, masks.shape))
    pred[2][pred[2] == 3] = 0  # class 3 missed in image 2
    probs = _probs(pred, 4)
    names = ["bg", "a", "b", "c"]
    block = dataset_aggregate(probs, masks, True, names, n_bins=10)
    labels = [0, 1, 2, 3]
    iou = jaccard_score(masks.ravel(), pred.ravel(), labels=labels, average=None)
    dice = f1_score(masks.ravel(), pred.ravel(), labels=labels, average=None)
    np.testing.assert_allclose([c["iou"] for c in block["classes"]], iou, rtol=1e-12)
    np.testing.assert_allclose([c["dice"] for c in block["classes"]], dice, rtol=1e-12)
    assert block["mean_iou"] == pytest.approx(iou.mean(), rel=1e-12)
    fg = dataset_aggregate(probs, masks, False, names, n_bins=10)
    assert fg["mean_dice"] == pytest.approx(dice[1:].mean(), rel=1e-12)
    tp = [int(((masks == c) & (pred == c)).sum()) for c in labels]
    assert [c["tp"] for c in block["classes"]] == tp
    pooled = dataset_calibration(list(probs), list(masks), n_bins=10)
    assert block["ece"] == pooled["ece"] and block["nll"] == pooled["nll"]


def test_image_and_dataset_differ_by_known_amount_and_empty_images():
    """Image 0: foreground 2 px, both predicted (IoU 1). Image 1: foreground 8 px, 4 found
    (IoU 0.5). Image 2: no foreground anywhere (left out of the image mean, adds nothing to the
    pooled matrix). Image mean of fg IoU = 0.75; pooled = (2 + 4) / (2 + 8) = 0.6."""
    masks = np.zeros((3, 4, 4), np.int64)
    pred = np.zeros_like(masks)
    masks[0, 0, :2] = 1
    pred[0, 0, :2] = 1
    masks[1, :2, :] = 1
    pred[1, 0, :] = 1
    probs = _probs(pred, 2)
    names = ["bg", "fg"]
    image = _image_summary(probs, masks, names, include_background=False)
    block = dataset_aggregate(probs, masks, False, names)
    assert image["classes"][1]["iou"] == pytest.approx(0.75)
    assert image["classes"][1]["n_valid"] == 2  # the empty image is left out
    assert block["classes"][1]["iou"] == pytest.approx(0.6)
    assert block["mean_iou"] == pytest.approx(0.6) and image["mean_iou"] == pytest.approx(0.75)
    assert block["classes"][1]["dice"] == pytest.approx(2 * 6 / (2 * 6 + 4))


def test_class_absent_from_whole_fold_is_nan_and_left_out():
    masks = np.zeros((2, 4, 4), np.int64)
    masks[:, 0, 0] = 1
    probs = _probs(masks, 3)  # perfect, class 2 never present nor predicted
    block = dataset_aggregate(probs, masks, True, ["bg", "a", "b"])
    assert np.isnan(block["classes"][2]["iou"]) and np.isnan(block["classes"][2]["dice"])
    assert block["mean_iou"] == 1.0
