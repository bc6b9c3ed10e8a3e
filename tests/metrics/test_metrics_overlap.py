"""IoU / Dice against scikit-learn (jaccard_score, f1_score, average=None) and the empty policy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score

from segbench.metrics import confusion_matrix, overlap_from_confusion, overlap_per_class


def test_matches_sklearn_on_random_maps():
    rng = np.random.default_rng(0)
    for c in (2, 3, 5):
        target = rng.integers(0, c, (37, 41))
        pred = np.where(rng.random((37, 41)) < 0.7, target, rng.integers(0, c, (37, 41)))
        ov = overlap_per_class(pred, target, c)
        labels = list(range(c))
        np.testing.assert_allclose(
            ov["iou"], jaccard_score(target.ravel(), pred.ravel(), labels=labels, average=None)
        )
        np.testing.assert_allclose(
            ov["dice"], f1_score(target.ravel(), pred.ravel(), labels=labels, average=None)
        )


def test_confusion_matrix_rows_are_ground_truth():
    target = np.array([[0, 0, 1, 2]])
    pred = np.array([[0, 1, 1, 1]])
    cm = confusion_matrix(pred, target, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [0, 1, 0]])
    ov = overlap_from_confusion(cm)
    np.testing.assert_array_equal(ov["tp"], [1, 1, 0])
    np.testing.assert_array_equal(ov["fp"], [0, 2, 0])
    np.testing.assert_array_equal(ov["fn"], [1, 0, 1])
    # class 1: TP=1, FP=2, FN=0 -> IoU 1/3, Dice 2/4
    assert ov["iou"][1] == pytest.approx(1 / 3)
    assert ov["dice"][1] == pytest.approx(0.5)


def test_empty_policy():
    target = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 2, 2]])
    ov = overlap_per_class(pred, target, 4)
    # class 3: absent from both -> 1, flagged empty_gt (and empty_pred)
    assert ov["iou"][3] == 1.0 and ov["dice"][3] == 1.0
    assert ov["empty_gt"][3] and ov["empty_pred"][3]
    # class 1: missed (empty prediction) -> 0
    assert ov["iou"][1] == 0.0 and ov["dice"][1] == 0.0
    assert ov["empty_pred"][1] and not ov["empty_gt"][1]
    # class 2: hallucinated (empty ground truth, false positives) -> 0, flagged empty_gt
    assert ov["iou"][2] == 0.0 and ov["dice"][2] == 0.0
    assert ov["empty_gt"][2] and not ov["empty_pred"][2]
