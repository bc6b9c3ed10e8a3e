"""Compound losses: weighted sums of a region term and a pixel term (papers 002 and 003 baselines).

``dice_ce``, ``log_dice_ce``, ``dice_focal``, ``log_dice_focal`` are ``w_region * R + w_pixel * P``
with R the batch Dice (or log-Dice) loss of :mod:`.region` and P the pixel-mean CE (or focal) of
:mod:`.base`; ``combo`` (Taghanaki et al. 2019), ``unified_focal`` (Yeung et al. 2022) and
``ml1ace_dice`` (Dice + mL1-ACE, Barfoot et al. 2024) are written out below. Hand-written rather
than MONAI's ``DiceCELoss`` / ``DiceFocalLoss`` because MONAI's focal term also averages over the
class axis and it has no log-Dice or combo variant; the tests compare ``dice_ce`` with MONAI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from . import functional as Fn
from .ce import _class_alpha, check_alpha
from .core import LOSSES, check_int, check_number
from .region import _REGION_SPEC, DEFAULT_SMOOTH, LOG_DICE_ABSENT, RegionLoss

_COMPOUND_SPEC = {
    **_REGION_SPEC,
    "reduction": "Dice: counts summed over batch+pixels (batch=True) or per image; pixel term: mean over all pixels",
}


def _log_dice_spec(formula: str, paper: str, notes: str = "") -> dict[str, str]:
    """Spec of a log-Dice compound: its formula and paper, the log-Dice absent-class rule in notes."""
    rule = "log-Dice " + LOG_DICE_ABSENT
    return {
        **_COMPOUND_SPEC,
        "formula": formula,
        "paper": paper,
        "notes": f"{notes}; {rule}" if notes else rule,
    }


class _RegionPlusPixel(RegionLoss):
    """``w_region * (Dice or log-Dice loss) + w_pixel * (CE or focal)``."""

    log_region: bool = False
    focal: bool = False

    def __init__(
        self,
        w_region: float,
        w_pixel: float,
        names: tuple[str, str],
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.w_region = check_number(names[0], w_region, low=0.0)
        self.w_pixel = check_number(names[1], w_pixel, low=0.0)
        if self.focal:
            self.gamma = check_number("gamma", gamma, low=0.0)
            self.alpha = check_alpha(alpha)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp, probs, onehot = Fn.logp_probs_onehot(logits, target)
        tp, fp, fn = Fn.soft_counts(probs, onehot, self.batch)
        if self.log_region:  # absent classes masked, as the log_dice loss
            region = Fn.log_dice_loss(tp, fp, fn, self.smooth, self.include_background)
        else:
            region = self.dice_loss(tp, fp, fn)
        logp_true = Fn.true_class(logp, target)
        if self.focal:
            a = _class_alpha(self.alpha, logits.shape[1], logits)
            pixel = Fn.focal_term(logp_true, self.gamma, None if a is None else a[target]).mean()
        else:
            pixel = -logp_true.mean()
        return self.w_region * region + self.w_pixel * pixel


@LOSSES.register("dice_ce")
class DiceCELoss(_RegionPlusPixel):
    """``w_dice * L_Dice + w_ce * L_CE`` (paper 000 Eq. 1 with w = lambda, 1 - lambda; 003 DiceCE).

    Args:
        w_dice: weight of the Dice loss (default 1.0), >= 0.
        w_ce: weight of the cross-entropy (default 1.0), >= 0.
        smooth, batch, include_background: of the Dice term, as :class:`~.region.DiceLoss`.
    """

    spec = {
        "formula": "w_dice L_Dice + w_ce L_CE",
        "paper": "000 Eq. 1; 003 DiceCE",
        **_COMPOUND_SPEC,
        "notes": "paper 000 tables: w_dice=0.7, w_ce=0.3; paper 003: balancing weight 0.1 (Sec. 4.1)",
    }

    def __init__(self, w_dice: float = 1.0, w_ce: float = 1.0, **options: Any) -> None:
        super().__init__(w_dice, w_ce, ("w_dice", "w_ce"), **options)


@LOSSES.register("log_dice_ce")
class LogDiceCELoss(DiceCELoss):
    """``w_dice * (-(1/C) sum_{c present} log Dice_c) + w_ce * L_CE`` (paper 003 LogDiceCE).

    Wong et al. 2018. The log-Dice term masks absent classes exactly as
    :class:`~.region.LogDiceLoss` (:func:`functional.log_dice_loss`).

    Args: as :class:`DiceCELoss`; ``batch=False`` gives the per-image log-Dice averaged over the
        mini-batch (paper 003, l. 325-328).
    """

    log_region = True
    spec = _log_dice_spec(
        "w_dice (-(1/C) sum_{c present} log Dice_c) + w_ce L_CE",
        "003 LogDiceCE (Eq. 2)",
        "paper 003: balancing weight 0.1 (Sec. 4.1)",
    )


@LOSSES.register("dice_focal")
class DiceFocalLoss(_RegionPlusPixel):
    """``w_dice * L_Dice + w_focal * L_focal`` (paper 003 DiceFL).

    Args:
        w_dice: Dice weight (default 1.0). w_focal: focal weight (default 1.0).
        gamma, alpha: of the focal term, as :class:`~.base.FocalLoss` (default 2, None).
        smooth, batch, include_background: of the Dice term.
    """

    focal = True
    spec = {"formula": "w_dice L_Dice + w_focal L_focal", "paper": "003 DiceFL", **_COMPOUND_SPEC}

    def __init__(
        self,
        w_dice: float = 1.0,
        w_focal: float = 1.0,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(w_dice, w_focal, ("w_dice", "w_focal"), gamma, alpha, **options)


@LOSSES.register("log_dice_focal")
class LogDiceFocalLoss(DiceFocalLoss):
    """``w_dice * (-(1/C) sum_{c present} log Dice_c) + w_focal * L_focal`` (paper 003 LogDiceFL).

    The log-Dice term masks absent classes exactly as :class:`~.region.LogDiceLoss`.

    Args: as :class:`DiceFocalLoss`.
    """

    log_region = True
    spec = _log_dice_spec(
        "w_dice (-(1/C) sum_{c present} log Dice_c) + w_focal L_focal", "003 LogDiceFL"
    )


@LOSSES.register("combo")
class ComboLoss(RegionLoss):
    """Combo loss ``alpha * L_mBCE - (1 - alpha) * mean_c Dice_c`` (Taghanaki et al. 2019).

    ``L_mBCE = -(1/(N C)) sum_c sum_i [beta y log p + (1 - beta)(1 - y) log(1 - p)]`` on the
    softmax probabilities (one-vs-rest per class; the binary original applied to every class),
    ``log(1 - p)`` clamped at ``log EPS``. The value can be negative (the Dice term is subtracted,
    as in the original).

    Args:
        alpha: weight of the modified CE (default 0.5, paper 004). beta: weight of the positive
            (false-negative) term inside the CE (default 0.5). Both in [0, 1].
        smooth, batch, include_background: of the Dice term.
    """

    spec = {
        "formula": "alpha mBCE - (1-alpha) mean_c Dice_c; mBCE = -mean[beta y log p + (1-beta)(1-y) log(1-p)]",
        "paper": "Taghanaki et al. 2019 (002, 004 baseline)",
        **_COMPOUND_SPEC,
        "notes": "mBCE one-vs-rest on softmax, mean over pixels and classes",
    }

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, **options: Any) -> None:
        super().__init__(**options)
        self.alpha = check_number("alpha", alpha, 0.0, 1.0)
        self.beta = check_number("beta", beta, 0.0, 1.0)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp, probs, onehot = Fn.logp_probs_onehot(logits, target)
        tp, fp, fn = Fn.soft_counts(probs, onehot, self.batch)
        dice = self.mean(Fn.dice_index(tp, fp, fn, self.smooth))
        # sum_i sum_c y log p = sum_i log p_{i,y_i}; sum (1 - y) log(1 - p) = all - true class
        log1m = Fn.log_one_minus(probs)
        pos = Fn.true_class(logp, target).sum()
        neg = log1m.sum() - Fn.true_class(log1m, target).sum()
        mbce = -(self.beta * pos + (1.0 - self.beta) * neg) / probs.numel()
        return self.alpha * mbce - (1.0 - self.alpha) * dice


@LOSSES.register("unified_focal")
class AsymmetricUnifiedFocalLoss(RegionLoss):
    """Asymmetric unified focal loss ``lam * L_maF + (1 - lam) * L_maFT`` (Yeung et al. 2022).

    * ``L_maF = (1/N) sum_i [y_i = 0] (1 - delta) (1 - p_{i,0})^gamma (-log p_{i,0})
      + [y_i = r] delta (-log p_{i,r})``: focal suppression of the background only.
    * ``L_maFT = mean_c m_c`` with ``m_0 = 1 - mTI_0`` and ``m_r = (1 - mTI_r)^(1 - gamma)``,
      ``mTI_c = (TP + s) / (TP + delta FN + (1 - delta) FP + s)``: focal enhancement of the rare class.

    Multi-class extension: class 0 is "background", every class ``r >= 1`` is treated as a rare
    class (the original is binary).

    Args:
        lam: weight of the focal component (default 0.5). delta: FN / rare-class weight (0.6).
        gamma: focal parameter in [0, 1) (default 0.5).
        smooth, batch: of the Tversky term (batch=True sums over the batch; the authors' code
            averages per image, use batch=False for that).
    """

    spec = {
        "formula": "lam L_maF + (1-lam) L_maFT (asymmetric)",
        "paper": "Yeung et al. 2022 (004 baseline)",
        **_COMPOUND_SPEC,
        "background": "class 0 = suppressed background; classes >= 1 rare (multi-class extension)",
    }

    def __init__(
        self,
        lam: float = 0.5,
        delta: float = 0.6,
        gamma: float = 0.5,
        smooth: float = DEFAULT_SMOOTH,
        batch: bool = True,
    ) -> None:
        super().__init__(smooth=smooth, batch=batch, include_background=True)
        self.lam = check_number("lam", lam, 0.0, 1.0)
        self.delta = check_number("delta", delta, 0.0, 1.0)
        self.gamma = check_number("gamma", gamma, 0.0, 1.0, high_open=True)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp, probs, onehot = Fn.logp_probs_onehot(logits, target)
        ce = -Fn.true_class(logp, target)
        bg = target == 0
        p0 = probs[:, 0]
        focal_w = (1.0 - self.delta) * (1.0 - p0).clamp_min(0.0).pow(self.gamma)
        l_maf = torch.where(bg, focal_w * ce, self.delta * ce).mean()
        tp, fp, fn = Fn.soft_counts(probs, onehot, self.batch)
        mti = Fn.tversky_index(tp, fp, fn, 1.0 - self.delta, self.delta, self.smooth)
        miss = (1.0 - mti).clamp_min(Fn.EPS)
        terms = torch.cat([miss[..., :1], miss[..., 1:].pow(1.0 - self.gamma)], dim=-1)
        return self.lam * l_maf + (1.0 - self.lam) * terms.mean()


@LOSSES.register("ml1ace_dice")
class DiceMarginalL1ACELoss(RegionLoss):
    """``w_dice * L_Dice + w_ace * mL1-ACE`` (paper 002 baseline "Dice + mL1-ACE"; Barfoot et al. 2024).

    mL1-ACE: per class, probabilities binned into ``bins`` equal-width bins (assignment detached),
    mean over non-empty bins of ``|mean p - mean y|``, mean over classes.

    Args:
        bins: number of bins (default 20, paper 002 App. D), >= 1.
        w_dice, w_ace: weights (default 1.0 each, "equal weighting", paper 002 App. D).
        smooth, batch, include_background: of both terms (batch=False: per image, then mean).
    """

    spec = {
        "formula": "w_dice L_Dice + w_ace mean_c mean_{bins nonempty} |mean p - mean y|",
        "paper": "002 App. D (Barfoot et al. 2024)",
        **_COMPOUND_SPEC,
        "reduction": "Dice counts and ACE bins over the whole batch (batch=True) or per image",
        "notes": "bin assignment detached; piecewise smooth",
    }

    def __init__(
        self, bins: int = 20, w_dice: float = 1.0, w_ace: float = 1.0, **options: Any
    ) -> None:
        super().__init__(**options)
        self.bins = check_int("bins", bins, low=1)
        self.w_dice = check_number("w_dice", w_dice, low=0.0)
        self.w_ace = check_number("w_ace", w_ace, low=0.0)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs, onehot = Fn.probs_onehot(logits, target)
        tp, fp, fn = Fn.soft_counts(probs, onehot, self.batch)
        dice_loss = self.dice_loss(tp, fp, fn)
        ace = self.mean(Fn.binned_calibration_error(probs, onehot, self.bins, self.batch))
        return self.w_dice * dice_loss + self.w_ace * ace
