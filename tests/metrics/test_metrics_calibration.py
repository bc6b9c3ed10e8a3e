"""NLL / Brier against scikit-learn, ECE / MCE hand-worked, class-wise ECE against MONAI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss

from segbench.metrics import (
    EPS,
    brier,
    dataset_calibration,
    image_calibration,
    nll,
    reliability_bins,
)
from segbench.metrics.calibration import (
    bin_index,
    classwise_bin_stats,
    ece_from_bins,
    top_label_bin_stats,
)


def _random_probs(c: int, shape: tuple[int, ...], seed: int, temp: float = 1.5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(c, *shape)) * temp
    target = rng.integers(0, c, shape)
    # make the model informative so accuracy varies with confidence
    np.put_along_axis(logits, target[None], np.take_along_axis(logits, target[None], 0) + 1.0, 0)
    p = np.exp(logits - logits.max(0))
    return p / p.sum(0), target


def _guo_reference(conf, correct, n_bins):
    """Guo et al. (2017) reference loop: bins (lo, hi], ECE and MCE."""
    edges = np.linspace(0, 1, n_bins + 1)
    ece, mce = 0.0, 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - conf[in_bin].mean())
            ece += in_bin.mean() * gap
            mce = max(mce, gap)
    return ece, mce


@pytest.mark.parametrize("c", [2, 4])
def test_nll_matches_sklearn(c):
    prob, target = _random_probs(c, (16, 16), seed=c)
    expected = log_loss(target.ravel(), prob.reshape(c, -1).T, labels=list(range(c)))
    assert nll(prob, target) == pytest.approx(expected, rel=1e-10)


def test_nll_floor():
    prob = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    target = np.array([[1, 1]])  # first pixel: p_true = 0 -> -log(EPS)
    assert nll(prob, target) == pytest.approx(-np.log(EPS) / 2)


def test_brier_binary_matches_sklearn():
    prob, target = _random_probs(2, (16, 16), seed=7)
    expected = brier_score_loss(target.ravel(), prob[1].ravel())
    assert brier(prob, target) == pytest.approx(expected, rel=1e-12)


def test_brier_multiclass_matches_sklearn():
    prob, target = _random_probs(4, (16, 16), seed=8)
    expected = brier_score_loss(target.ravel(), prob.reshape(4, -1).T, labels=[0, 1, 2, 3])
    assert brier(prob, target) == pytest.approx(expected, rel=1e-12)
    onehot = np.eye(4)[target].transpose(2, 0, 1)
    assert brier(prob, target) == pytest.approx(np.mean(((prob - onehot) ** 2).sum(0)))


def test_ece_mce_hand_worked():
    # 4 pixels, 2 classes, 10 bins. p(class 1) = .85 .85 .65 .25
    p1 = np.array([[0.85, 0.85, 0.65, 0.25]])
    prob = np.stack([1 - p1, p1])
    target = np.array([[1, 0, 1, 0]])
    # top-label confidence .85 .85 .65 .75; correct 1 0 1 1
    # bins: (.8,.9]: n=2, conf .85, acc .5 -> gap .35; (.6,.7]: gap .35; (.7,.8]: gap .25
    out = image_calibration(prob, target, n_bins=10)
    assert out["ece"] == pytest.approx((2 * 0.35 + 0.35 + 0.25) / 4)
    assert out["mce"] == pytest.approx(0.35)


def test_bin_edges_go_to_lower_bin():
    # (lo, hi]: 0.5 with 2 bins is in bin 0; 0 is in bin 0; 1 in the last bin
    np.testing.assert_array_equal(bin_index(np.array([0.0, 0.5, 0.5000001, 1.0]), 2), [0, 0, 1, 1])
    edges = np.linspace(0, 1, 16)
    np.testing.assert_array_equal(bin_index(edges[1:], 15), np.arange(15))
    prob = np.full((2, 1, 3), 0.5)
    target = np.array([[0, 1, 1]])
    stats = top_label_bin_stats(prob, target, n_bins=2)
    np.testing.assert_array_equal(stats.count, [3, 0])


@pytest.mark.parametrize("n_bins", [10, 15])
def test_top_label_matches_guo_reference(n_bins):
    prob, target = _random_probs(5, (32, 32), seed=n_bins)
    conf, correct = prob.max(0).ravel(), (prob.argmax(0) == target).ravel().astype(float)
    ece, mce = _guo_reference(conf, correct, n_bins)
    out = image_calibration(prob, target, n_bins=n_bins)
    assert out["ece"] == pytest.approx(ece, rel=1e-10)
    assert out["mce"] == pytest.approx(mce, rel=1e-10)


def test_classwise_matches_monai():
    from monai.metrics import CalibrationErrorMetric

    prob, target = _random_probs(3, (24, 24), seed=11)
    onehot = np.eye(3)[target].transpose(2, 0, 1)
    metric = CalibrationErrorMetric(num_bins=15, include_background=True)
    metric(y_pred=torch.from_numpy(prob[None]).float(), y=torch.from_numpy(onehot[None]).float())
    expected = metric.aggregate().item()
    assert image_calibration(prob, target)["ece_classwise"] == pytest.approx(expected, abs=2e-6)
    per_class = ece_from_bins(classwise_bin_stats(prob, target, 15))
    assert per_class.shape == (3,)


def test_reliability_and_pooling():
    pairs = [_random_probs(3, (16, 16), seed=s) for s in range(3)]
    probs, targets = [p for p, _ in pairs], [t for _, t in pairs]
    rel = reliability_bins(probs, targets, n_bins=15)
    assert list(rel.columns) == ["bin_lo", "bin_hi", "confidence", "accuracy", "count"]
    assert len(rel) == 15 and rel["count"].sum() == 3 * 256
    filled = rel[rel["count"] > 0]
    assert ((filled.confidence > filled.bin_lo) & (filled.confidence <= filled.bin_hi)).all()
    assert rel.loc[rel["count"] == 0, "accuracy"].isna().all()
    pooled = dataset_calibration(probs, targets, n_bins=15)
    ece_from_df = (filled["count"] * (filled.accuracy - filled.confidence).abs()).sum() / (3 * 256)
    assert pooled["ece"] == pytest.approx(ece_from_df)
    conf = np.concatenate([p.max(0).ravel() for p in probs])
    correct = np.concatenate([(p.argmax(0) == t).ravel() for p, t in pairs]).astype(float)
    assert pooled["ece"] == pytest.approx(_guo_reference(conf, correct, 15)[0])
    # equal-size images: pooled NLL / Brier equal the mean of per-image values
    per_image = [image_calibration(p, t) for p, t in pairs]
    assert pooled["nll"] == pytest.approx(np.mean([m["nll"] for m in per_image]))
    assert pooled["brier"] == pytest.approx(np.mean([m["brier"] for m in per_image]))


def test_float16_and_3d_inputs():
    prob, target = _random_probs(3, (6, 8, 8), seed=5)
    out16 = image_calibration(prob.astype(np.float16), target)
    out64 = image_calibration(prob, target)
    assert set(out16) == {"nll", "brier", "ece", "mce", "ece_classwise"}
    for k in out64:
        assert out16[k] == pytest.approx(out64[k], abs=5e-3)


def test_bad_inputs():
    prob, target = _random_probs(3, (4, 4), seed=0)
    with pytest.raises(ValueError, match="n_bins"):
        image_calibration(prob, target, n_bins=0)
    with pytest.raises(ValueError, match="shape"):
        image_calibration(prob, target[:, :3])
    with pytest.raises(ValueError, match="labels"):
        image_calibration(prob, target + 3)
    with pytest.raises(ValueError, match="length"):
        reliability_bins([prob], [target, target])
