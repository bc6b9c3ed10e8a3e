"""Calibration metrics (paper 002): NLL, Brier, ECE and MCE, top-label and class-wise.

Every pixel is one prediction. Definitions (``p`` = softmax probabilities ``[C, N]``, ``y`` =
labels, ``N`` pixels):

* NLL = ``-(1/N) sum_i log max(p_{y_i, i}, EPS)`` with ``EPS = 1e-7`` (natural log).
* Brier (Brier 1950) = ``(1/N) sum_i sum_c (p_{c,i} - [y_i = c])^2``, halved when ``C = 2`` so
  that the binary case equals the usual foreground-probability score ``mean (p_fg - y)^2``
  (scikit-learn's ``brier_score_loss(..., scale_by_half="auto")`` convention; range [0, 1] for
  binary, [0, 2] for multi-class).
* Top-label ECE / MCE (Guo et al. 2017, "On calibration of modern neural networks", ICML,
  Eq. 3 and Eq. 5; Naeini et al. 2015): confidence = ``max_c p_c``, correct = ``argmax_c p_c == y``;
  ``n_bins`` equal-width bins over [0, 1], bin ``b`` = ``(b/M, (b+1)/M]`` (a confidence exactly on
  an edge goes to the lower bin, as in Guo et al.'s code and MONAI; 0 goes to the first bin).
  ``ECE = sum_b (n_b / N) |acc_b - conf_b|``, ``MCE = max_{b: n_b > 0} |acc_b - conf_b|``.
* Class-wise ECE (MONAI 1.6 ``CalibrationErrorMetric`` semantics, ``include_background=True``,
  ``calibration_reduction="expected"``, ``metric_reduction="mean"``): for each class ``c`` bin
  ``p_c`` of every pixel, with "accuracy" = fraction of pixels in the bin whose label is ``c``;
  ECE_c as above; ``ece_classwise`` = mean over classes. MONAI computes in float32 with 20 bins
  by default; here float64 with ``n_bins`` (15 by default, as Guo et al.).

Per-image values come from :func:`image_calibration`; :func:`dataset_calibration` pools all
pixels of a test set (ECE/MCE of the pooled bins, which is not the mean of per-image ECEs);
:func:`reliability_bins` gives the reliability-diagram data of the pooled top-label bins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segbench.metrics._inputs import EPS, check_n_bins, check_prob_target


@dataclass
class BinStats:
    """Sufficient statistics of equal-width confidence bins; add two to pool images.

    Attributes (``[..., n_bins]`` arrays; the leading axis is the class for class-wise bins):
        count: number of predictions in each bin.
        sum_conf: sum of their confidences.
        sum_acc: sum of their correctness indicators (0/1).
    """

    count: np.ndarray
    sum_conf: np.ndarray
    sum_acc: np.ndarray

    def __add__(self, other: BinStats) -> BinStats:
        return BinStats(
            self.count + other.count,
            self.sum_conf + other.sum_conf,
            self.sum_acc + other.sum_acc,
        )

    @property
    def n_bins(self) -> int:
        return int(self.count.shape[-1])


def bin_edges(n_bins: int) -> np.ndarray:
    """``n_bins + 1`` equal-width edges over [0, 1] (``numpy.linspace``)."""
    return np.linspace(0.0, 1.0, check_n_bins(n_bins) + 1)


def bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence: bins are ``(lo, hi]``; 0 (and anything below) goes to bin 0.

    Args:
        conf: confidences, any shape.
        n_bins: number of equal-width bins over [0, 1].

    Returns:
        int64 array of the same shape with values in ``[0, n_bins)``.
    """
    inner = bin_edges(n_bins)[1:-1]
    return np.searchsorted(inner, np.asarray(conf, dtype=np.float64), side="left").astype(np.int64)


def _bin_sums(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> BinStats:
    idx = bin_index(conf, n_bins).reshape(-1)
    conf = np.asarray(conf, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    return BinStats(
        count=np.bincount(idx, minlength=n_bins).astype(np.float64),
        sum_conf=np.bincount(idx, weights=conf, minlength=n_bins),
        sum_acc=np.bincount(idx, weights=correct, minlength=n_bins),
    )


def top_label_bin_stats(prob: np.ndarray, target: np.ndarray, n_bins: int = 15) -> BinStats:
    """Top-label (Guo et al. 2017) bin statistics of one image.

    Args:
        prob: probabilities ``[C, *spatial]``.
        target: labels ``[*spatial]``.
        n_bins: equal-width bins over [0, 1] (default 15).

    Returns:
        :class:`BinStats` with ``[n_bins]`` arrays.
    """
    prob, target = check_prob_target(prob, target)
    n_bins = check_n_bins(n_bins)
    conf = prob.max(axis=0).astype(np.float64)
    correct = prob.argmax(axis=0) == target
    return _bin_sums(conf, correct, n_bins)


def classwise_bin_stats(prob: np.ndarray, target: np.ndarray, n_bins: int = 15) -> BinStats:
    """Class-wise (MONAI ``calibration_binning``) bin statistics of one image.

    Takes the arguments of :func:`top_label_bin_stats`: ``prob [C, *spatial]``, ``target
    [*spatial]``, ``n_bins`` (default 15).

    Returns:
        :class:`BinStats` with ``[C, n_bins]`` arrays; for class ``c`` every pixel is binned by
        ``p_c`` and counts as correct when its label is ``c``.
    """
    prob, target = check_prob_target(prob, target)
    n_bins = check_n_bins(n_bins)
    stats = [_bin_sums(prob[c], target == c, n_bins) for c in range(prob.shape[0])]
    return BinStats(
        count=np.stack([s.count for s in stats]),
        sum_conf=np.stack([s.sum_conf for s in stats]),
        sum_acc=np.stack([s.sum_acc for s in stats]),
    )


def ece_from_bins(stats: BinStats) -> np.ndarray | float:
    """Expected calibration error ``sum_b (n_b/N) |acc_b - conf_b|`` (Guo et al. 2017, Eq. 3).

    Returns:
        float for ``[n_bins]`` statistics, ``[C]`` array for class-wise ``[C, n_bins]``; NaN
        where no prediction was binned.
    """
    total = stats.count.sum(axis=-1)
    gap = np.abs(stats.sum_acc - stats.sum_conf).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, gap / np.where(total > 0, total, 1), np.nan)
    return float(out) if np.ndim(out) == 0 else out


def mce_from_bins(stats: BinStats) -> np.ndarray | float:
    """Maximum calibration error ``max_{b: n_b>0} |acc_b - conf_b|`` (Guo et al. 2017, Eq. 5).

    Returns:
        float (or ``[C]`` array for class-wise statistics); NaN where every bin is empty.
    """
    filled = stats.count > 0
    safe = np.where(filled, stats.count, 1)
    gap = np.where(filled, np.abs(stats.sum_acc - stats.sum_conf) / safe, -np.inf)
    out = gap.max(axis=-1)
    out = np.where(np.isfinite(out), out, np.nan)
    return float(out) if np.ndim(out) == 0 else out


def nll(prob: np.ndarray, target: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class, ``log`` floored at ``EPS = 1e-7``.

    Args:
        prob: probabilities ``[C, *spatial]``.
        target: labels ``[*spatial]``.

    Returns:
        ``-(1/N) sum_i log max(p_{y_i, i}, EPS)`` (nats).
    """
    prob, target = check_prob_target(prob, target)
    p_true = np.take_along_axis(prob, target[None], axis=0)[0].astype(np.float64)
    return float(-np.mean(np.log(np.clip(p_true, EPS, 1.0))))


def brier(prob: np.ndarray, target: np.ndarray) -> float:
    """Brier score (Brier 1950), halved for two classes (see module docstring).

    Args:
        prob: probabilities ``[C, *spatial]``.
        target: labels ``[*spatial]``.

    Returns:
        ``(1/N) sum_i sum_c (p_ci - [y_i = c])^2``, divided by 2 when ``C = 2``.
    """
    prob, target = check_prob_target(prob, target)
    p = prob.astype(np.float64)
    p_true = np.take_along_axis(p, target[None], axis=0)[0]
    per_pixel = np.square(p).sum(axis=0) - 2.0 * p_true + 1.0
    score = float(per_pixel.mean())
    return score / 2.0 if p.shape[0] == 2 else score


def _calibration_dict(nll_v: float, brier_v: float, top: BinStats, cls: BinStats) -> dict:
    return {
        "nll": nll_v,
        "brier": brier_v,
        "ece": ece_from_bins(top),
        "mce": mce_from_bins(top),
        "ece_classwise": float(np.nanmean(ece_from_bins(cls))),
    }


def image_calibration(prob: np.ndarray, target: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """Calibration metrics of one image.

    Args:
        prob: softmax probabilities ``[C, H, W]`` or ``[C, D, H, W]`` (float16 is fine; math is
            float64).
        target: labels ``[H, W]`` / ``[D, H, W]``.
        n_bins: equal-width bins for ECE/MCE (default 15, Guo et al. 2017).

    Returns:
        ``{"nll", "brier", "ece", "mce", "ece_classwise"}``: ``ece``/``mce`` are top-label (Guo
        et al. 2017), ``ece_classwise`` is MONAI's class-wise ECE averaged over all classes
        (background included).

    Raises:
        ValueError: on bad shapes, labels or ``n_bins``.
    """
    prob, target = check_prob_target(prob, target)
    return _calibration_dict(
        nll(prob, target),
        brier(prob, target),
        top_label_bin_stats(prob, target, n_bins),
        classwise_bin_stats(prob, target, n_bins),
    )


def _pairs(
    probs_list: Iterable[np.ndarray], targets_list: Iterable[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    probs_list, targets_list = list(probs_list), list(targets_list)
    if len(probs_list) != len(targets_list):
        raise ValueError(
            f"probs_list and targets_list differ in length: {len(probs_list)} vs {len(targets_list)}"
        )
    if not probs_list:
        raise ValueError("probs_list is empty")
    return list(zip(probs_list, targets_list, strict=True))


def dataset_calibration(
    probs_list: Sequence[np.ndarray], targets_list: Sequence[np.ndarray], n_bins: int = 15
) -> dict[str, float]:
    """Calibration metrics over all pixels of a set of images (pooled, not image-averaged).

    NLL and Brier are pixel-weighted means (equal to the image mean when all images have the
    same size); ECE/MCE come from the summed bins of all images.

    Args:
        probs_list: per-image probabilities ``[C, *spatial]`` (sizes may differ).
        targets_list: per-image labels ``[*spatial]``.
        n_bins: equal-width bins (default 15).

    Returns:
        Same keys as :func:`image_calibration`.
    """
    n_bins = check_n_bins(n_bins)
    top: BinStats | None = None
    cls: BinStats | None = None
    nll_sum = brier_sum = 0.0
    n_total = 0
    for prob, target in _pairs(probs_list, targets_list):
        prob, target = check_prob_target(prob, target)
        n = target.size
        nll_sum += nll(prob, target) * n
        brier_sum += brier(prob, target) * n
        n_total += n
        t, c = top_label_bin_stats(prob, target, n_bins), classwise_bin_stats(prob, target, n_bins)
        if cls is not None and c.count.shape != cls.count.shape:
            raise ValueError("all images must have the same number of classes")
        top = t if top is None else top + t
        cls = c if cls is None else cls + c
    assert top is not None and cls is not None  # _pairs guarantees at least one image
    return _calibration_dict(nll_sum / n_total, brier_sum / n_total, top, cls)


def reliability_bins(
    probs_list: Sequence[np.ndarray], targets_list: Sequence[np.ndarray], n_bins: int = 15
) -> pd.DataFrame:
    """Reliability-diagram data: pooled top-label bins over a set of images (Guo et al. 2017).

    Args:
        probs_list: per-image probabilities ``[C, *spatial]``.
        targets_list: per-image labels ``[*spatial]``.
        n_bins: equal-width bins (default 15).

    Returns:
        DataFrame with ``n_bins`` rows and columns ``bin_lo``, ``bin_hi`` (bin is
        ``(bin_lo, bin_hi]``), ``confidence`` (mean confidence), ``accuracy`` (fraction correct;
        both NaN for an empty bin) and ``count`` (int pixels).
    """
    n_bins = check_n_bins(n_bins)
    total: BinStats | None = None
    for prob, target in _pairs(probs_list, targets_list):
        s = top_label_bin_stats(prob, target, n_bins)
        total = s if total is None else total + s
    assert total is not None
    edges = bin_edges(n_bins)
    filled = total.count > 0
    safe = np.where(filled, total.count, 1)
    return pd.DataFrame(
        {
            "bin_lo": edges[:-1],
            "bin_hi": edges[1:],
            "confidence": np.where(filled, total.sum_conf / safe, np.nan),
            "accuracy": np.where(filled, total.sum_acc / safe, np.nan),
            "count": total.count.astype(np.int64),
        }
    )
