"""Region (overlap) losses: Dice, log-Dice, generalised Dice, Tversky, focal Tversky, Dice++.

All of them are thin calls into one soft TP / FP / FN core (:func:`functional.soft_counts`) and
the Tversky ratio (:func:`functional.tversky_index` / :func:`functional.dice_index`). Hand-written rather than taken from MONAI or
segmentation_models_pytorch because the studies fix reductions the libraries do not default to
(paper 000 sums over the whole batch, Eq. 3; smp always does, MONAI only with ``batch=True``;
Dice++ raises each pixel's FP / FN to a power, which neither library offers). The tests compare
with MONAI where MONAI has a matching option set.

Shared options (same names everywhere):
    smooth: added to numerator and denominator of each class ratio (default 1e-5; 0 is the
        papers' exact formula, the denominator is then clamped at ``EPS``).
    batch: True (default) sums the counts over the batch and all pixels (paper 000, Eq. 3);
        False computes one ratio per image and class, then averages.
    include_background: True (default; docs/CONVENTIONS.md) averages over all C classes.

They are keyword-only parameters of :class:`RegionLoss`, written once; a member's constructor
takes its own parameters and forwards ``**options`` (its signature lists them, see
:func:`.core.constructor_signature`).
"""

from __future__ import annotations

from typing import Any

import torch

from . import functional as Fn
from .core import LOSSES, SegLoss, check_bool, check_number

DEFAULT_SMOOTH = 1e-5

_REGION_SPEC = {
    "reduction": "counts summed over batch+pixels (batch=True) or per image (batch=False)",
    "background": "included unless include_background=False",
    "smoothing": "smooth in numerator and denominator (default 1e-5)",
}


class RegionLoss(SegLoss):
    """Common configuration of the overlap losses (``smooth``, ``batch``, ``include_background``)."""

    def __init__(
        self, *, smooth: float = DEFAULT_SMOOTH, batch: bool = True, include_background: bool = True
    ) -> None:
        super().__init__()
        self.smooth = check_number("smooth", smooth, low=0.0)
        self.batch = check_bool("batch", batch)
        self.include_background = check_bool("include_background", include_background)

    def counts(
        self, logits: torch.Tensor, target: torch.Tensor, power: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        probs, onehot = Fn.probs_onehot(logits, target)
        return Fn.soft_counts(probs, onehot, self.batch, power)

    def mean(self, per_class: torch.Tensor) -> torch.Tensor:
        return Fn.class_mean(per_class, self.include_background)

    def dice_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        """``1 - mean_c Dice_c`` of the soft counts (paper 000, Eq. 3-4), this loss's options."""
        return 1.0 - self.mean(Fn.dice_index(tp, fp, fn, self.smooth))

    def tversky_loss(
        self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, alpha: float, beta: float
    ) -> torch.Tensor:
        """``1 - mean_c TI_c`` of the soft counts (Salehi et al. 2017), this loss's options."""
        return 1.0 - self.mean(Fn.tversky_index(tp, fp, fn, alpha, beta, self.smooth))


def check_tversky_weights(alpha: float, beta: float) -> tuple[float, float]:
    """The FP / FN weights of a Tversky index, each >= 0 and not both 0.

    Raises:
        ValueError: a negative or non-numeric weight, or ``alpha = beta = 0`` (the index is then
            identically 1: a constant loss with no gradient).
    """
    a, b = check_number("alpha", alpha, low=0.0), check_number("beta", beta, low=0.0)
    if a == 0.0 and b == 0.0:
        raise ValueError(
            "parameters alpha=0, beta=0 are not allowed: at least one Tversky weight must be > 0"
        )
    return a, b


@LOSSES.register("dice")
class DiceLoss(RegionLoss):
    """Soft Dice loss ``1 - (1/C) sum_c (2 TP_c + s) / (2 TP_c + FP_c + FN_c + s)`` (paper 000, Eq. 3-4).

    Args:
        smooth: smoothing ``s`` >= 0 (default 1e-5).
        batch: sum the soft counts over the whole batch (default True, paper 000 Eq. 3).
        include_background: average over all classes including class 0 (default True, Eq. 4).
    Shape:
        logits ``[B, C, *spatial]``, target ``[B, *spatial]`` -> scalar.
    Raises:
        ValueError: smooth < 0 or a non-bool flag.
    """

    spec = {
        "formula": "1 - mean_c (2TP_c+s)/(2TP_c+FP_c+FN_c+s)",
        "paper": "000 Eq. 3-4",
        **_REGION_SPEC,
    }

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_loss(*self.counts(logits, target))


LOG_DICE_ABSENT = "absent classes masked: a class without ground truth in the unit (batch, or image with batch=False) contributes 0 (smp rule); / C"


@LOSSES.register("log_dice")
class LogDiceLoss(RegionLoss):
    """Logarithmic Dice ``-(1/C) sum_{c present} log Dice_c`` (paper 003, Eq. 2; Wong et al. 2018, gamma=1).

    Absent classes are MASKED (:func:`functional.log_dice_loss`): a class with no ground-truth
    pixel in the reduction unit (the batch with ``batch=True``, each image with ``batch=False``)
    contributes 0 to the value and no gradient of its own; the sum is divided by the number of
    classes averaged (C, or C - 1 without background). Eq. 2 is undefined for ``|Omega_k| = 0``;
    this is segmentation_models_pytorch's ``DiceLoss(log_loss=True)`` rule. ``-log Dice_c`` is
    computed as ``log(2TP + FP + FN + s) - log(2TP + s)`` (no clamp of the ratio).

    Args: as :class:`DiceLoss`; ``batch=False`` is paper 003's per-image loss averaged over the
        mini-batch (Sec. 3, l. 325-328).
    """

    spec = {
        "formula": "-(1/C) sum_{c present} log Dice_c",
        "paper": "003 Eq. 2",
        **_REGION_SPEC,
        "notes": LOG_DICE_ABSENT,
    }

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tp, fp, fn = self.counts(logits, target)
        return Fn.log_dice_loss(tp, fp, fn, self.smooth, self.include_background)


@LOSSES.register("generalized_dice")
class GeneralizedDiceLoss(RegionLoss):
    """Generalised Dice ``1 - (2 sum_c w_c TP_c + s) / (sum_c w_c (2TP_c + FP_c + FN_c) + s)``.

    Sudre et al. 2017 with ``w_c = 1 / (sum y_c)^2``; the weight of a class absent from the
    target (infinite) is replaced by the largest finite weight (MONAI's rule). Weights come from
    the target only (no gradient).

    Args: as :class:`DiceLoss`; with ``batch=False`` one ratio per image, then the mean.
    """

    spec = {
        "formula": "1 - (2 sum_c w_c TP_c + s)/(sum_c w_c(2TP_c+FP_c+FN_c) + s), w_c = 1/n_c^2",
        "paper": "Sudre et al. 2017 (baseline)",
        **_REGION_SPEC,
        "notes": "absent class: weight = max finite weight (MONAI)",
    }

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tp, fp, fn = self.counts(logits, target)
        if not self.include_background:
            tp, fp, fn = tp[..., 1:], fp[..., 1:], fn[..., 1:]
        n = (tp + fn).detach()
        w = 1.0 / (n * n)
        inf = torch.isinf(w)
        finite = torch.where(inf, torch.zeros_like(w), w)
        w = torch.where(inf, finite.amax(dim=-1, keepdim=True), w)
        num = 2.0 * (w * tp).sum(-1) + self.smooth
        den = (w * (2.0 * tp + fp + fn)).sum(-1) + self.smooth
        return (1.0 - num / den.clamp_min(Fn.EPS)).mean()


@LOSSES.register("tversky")
class TverskyLoss(RegionLoss):
    """Tversky loss ``1 - (1/C) sum_c (TP_c + s) / (TP_c + alpha FP_c + beta FN_c + s)`` (Salehi 2017).

    Args:
        alpha: weight of false positives (default 0.3), >= 0.
        beta: weight of false negatives (default 0.7), >= 0. alpha = beta = 0.5 is Dice.
        smooth, batch, include_background: as :class:`DiceLoss`.
    Raises:
        ValueError: negative alpha / beta, or alpha = beta = 0.
    """

    spec = {
        "formula": "1 - mean_c (TP+s)/(TP+alpha FP+beta FN+s)",
        "paper": "Salehi et al. 2017; 002 baseline",
        **_REGION_SPEC,
    }

    def __init__(self, alpha: float = 0.3, beta: float = 0.7, **options: Any) -> None:
        super().__init__(**options)
        self.alpha, self.beta = check_tversky_weights(alpha, beta)

    def index(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tp, fp, fn = self.counts(logits, target)
        return Fn.tversky_index(tp, fp, fn, self.alpha, self.beta, self.smooth)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.tversky_loss(*self.counts(logits, target), self.alpha, self.beta)


@LOSSES.register("focal_tversky")
class FocalTverskyLoss(TverskyLoss):
    """Focal Tversky ``(1/C) sum_c (1 - TI_c)^gamma`` (Abraham & Khan 2019, with gamma = 1/their gamma).

    Args:
        alpha: FP weight (default 0.3). beta: FN weight (default 0.7).
        gamma: exponent on ``1 - TI`` (default 0.75 = 1 / (4/3), Abraham & Khan's setting), > 0.
        smooth, batch, include_background: as :class:`DiceLoss`.
    """

    spec = {
        "formula": "mean_c (1 - TI_c)^gamma",
        "paper": "Abraham & Khan 2019 (baseline)",
        **_REGION_SPEC,
    }

    def __init__(
        self, alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75, **options: Any
    ) -> None:
        super().__init__(alpha, beta, **options)
        self.gamma = check_number("gamma", gamma, low=0.0, low_open=True)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # clamp: (1 - TI)^gamma with gamma < 1 has an infinite slope at TI = 1
        return self.mean((1.0 - self.index(logits, target)).clamp_min(Fn.EPS).pow(self.gamma))


@LOSSES.register("dice_pp")
class DicePlusPlusLoss(RegionLoss):
    """Dice++ ``1 - (2TP + s) / (2TP + sum (p(1-y))^gamma + sum ((1-p)y)^gamma + s)`` (paper 002, App. E).

    Yeung et al. 2023; mean over classes of the per-class ratio.

    Args:
        gamma: focus on FP / FN, >= 1 (default 2, paper 002 App. D); gamma = 1 is Dice.
        smooth, batch, include_background: as :class:`DiceLoss`.
    Raises:
        ValueError: gamma < 1 (the per-pixel power then has an infinite slope at 0).
    """

    spec = {
        "formula": "1 - mean_c (2TP+s)/(2TP+sum(p(1-y))^g+sum((1-p)y)^g+s)",
        "paper": "002 App. E (Yeung et al. 2023)",
        **_REGION_SPEC,
    }

    def __init__(self, gamma: float = 2.0, **options: Any) -> None:
        super().__init__(**options)
        self.gamma = check_number("gamma", gamma, low=1.0)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_loss(*self.counts(logits, target, power=self.gamma))
