"""The evaluation-stage interface: image_metrics rows (keys, order, values, empty flags)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score

from segbench.metrics import ROW_KEYS, image_diagonal, image_metrics


def _probs_from_labels(pred: np.ndarray, c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(c, *pred.shape))
    np.put_along_axis(logits, pred[None], 10.0, 0)
    p = np.exp(logits - logits.max(0))
    return (p / p.sum(0)).astype(np.float32)


def test_rows_keys_values():
    target = np.zeros((40, 40), np.int64)
    target[5:20, 5:20] = 1
    target[25:35, 25:35] = 2
    pred = target.copy()
    pred[5:20, 8:23] = np.where(pred[5:20, 8:23] == 0, 1, pred[5:20, 8:23])  # class 1 grows
    pred[25:35, 25:35] = 0  # class 2 missed
    pred[0:3, 30:33] = 3  # class 3 hallucinated
    prob = _probs_from_labels(pred, 5)
    rows = image_metrics(prob, target, 5)
    assert [r["class"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(tuple(r) == ROW_KEYS for r in rows)
    labels = list(range(5))
    iou = jaccard_score(target.ravel(), pred.ravel(), labels=labels, average=None, zero_division=1)
    dice = f1_score(target.ravel(), pred.ravel(), labels=labels, average=None, zero_division=1)
    np.testing.assert_allclose([r["iou"] for r in rows], iou)
    np.testing.assert_allclose([r["dice"] for r in rows], dice)
    diag = image_diagonal((40, 40))
    # class 1: grows by 3 columns to the right
    assert 0 < rows[1]["hd95"] <= 3.0 and 0 < rows[1]["nsd"] < 1
    # class 2 missed, class 3 hallucinated: worst case HD95, NSD 0
    assert rows[2]["hd95"] == pytest.approx(diag)
    assert rows[2]["nsd"] == 0.0 and rows[2]["empty_pred"] and not rows[2]["empty_gt"]
    assert rows[3]["hd95"] == pytest.approx(diag) and rows[3]["iou"] == 0.0
    assert rows[3]["empty_gt"] and not rows[3]["empty_pred"]
    # class 4 absent from both: perfect, flagged
    assert rows[4] == {
        "class": 4, "iou": 1.0, "dice": 1.0, "hd95": 0.0, "hd": 0.0, "nsd": 1.0,
        "empty_gt": True, "empty_pred": True,
    }  # fmt: skip
    for r in rows:
        assert isinstance(r["class"], int) and isinstance(r["empty_gt"], bool)
        assert all(isinstance(r[k], float) for k in ("iou", "dice", "hd95", "hd", "nsd"))
    # class 1 grows by exactly 3 columns: the largest distance (HD) is 3 px
    assert rows[1]["hd"] == pytest.approx(3.0) and rows[1]["hd95"] <= rows[1]["hd"]
    assert rows[2]["hd"] == pytest.approx(diag) and rows[3]["hd"] == pytest.approx(diag)


def test_surface_off_gives_nan_and_float16_ok():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 3, (16, 16))
    prob = _probs_from_labels(target, 3).astype(np.float16)
    rows = image_metrics(prob, target, 3, surface=False)
    assert all(math.isnan(r["hd95"]) and math.isnan(r["hd"]) and math.isnan(r["nsd"]) for r in rows)
    assert all(r["iou"] == 1.0 for r in rows)


def test_3d_volume_with_spacing():
    target = np.zeros((10, 20, 20), np.int64)
    target[2:8, 5:15, 5:15] = 1
    pred = np.roll(target, 1, axis=0)  # shift one slice along D
    prob = _probs_from_labels(pred, 2)
    rows = image_metrics(prob, target, 2, spacing=(3.0, 1.0, 1.0), nsd_tolerance=3.0)
    assert rows[1]["hd95"] == pytest.approx(3.0)
    assert rows[1]["nsd"] == pytest.approx(1.0)
    rows_px = image_metrics(prob, target, 2, nsd_tolerance=0.5)
    assert rows_px[1]["hd95"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 4}, "num_classes"),
        ({"num_classes": 3, "spacing": (1.0,) * 3}, "spacing"),
        ({"num_classes": 3, "nsd_tolerance": -1.0}, "nsd_tolerance"),
        ({"num_classes": 3, "n_bins": 0}, "n_bins"),
    ],
)
def test_bad_arguments(kwargs, match):
    target = np.zeros((8, 8), np.int64)
    prob = _probs_from_labels(target, 3)
    with pytest.raises(ValueError, match=match):
        image_metrics(prob, target, **kwargs)


def test_bad_arrays():
    target = np.zeros((8, 8), np.int64)
    prob = _probs_from_labels(target, 3)
    with pytest.raises(ValueError, match="shape"):
        image_metrics(prob[:, :4], target, 3)
    with pytest.raises(ValueError, match="labels"):
        image_metrics(prob, target + 5, 3)
    with pytest.raises(ValueError, match="float"):
        image_metrics(prob.astype(np.int64), target, 3)
