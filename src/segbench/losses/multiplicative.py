"""Paper 000 (Yokoi & Hotta 2025): Multiplicative Loss (ML) and Confidence-Adaptive ML (CAML).

``L_Dice`` is the batch Dice loss of Eq. 3-4 (soft counts summed over all N pixels of the batch,
mean over the C classes including background) and ``L_CE`` the mean cross-entropy of Eq. 2 over
the same N pixels. Hand-written: the products and the exponent need the two terms' exact
reductions, which no library combined loss exposes.

Reading of the erratum (Eq. 13-15). Taken literally, "the average predicted probability across
all pixels and classes" of a softmax is identically ``1/C`` (each pixel's probabilities sum to 1),
which would make ``alpha`` a constant and Eq. 15's gradient zero. We read ``p_bar`` as the batch
mean of the TRUE-CLASS probability, ``p_bar = (1/N) sum_i p_{i, y_i}`` (the quantity Eq. 10 calls
``p``, averaged as the erratum says), under which ``d p_bar / d p_{i,c} = y_{i,c} / N``: Eq. 15's
``1/N`` for the true class and 0 for the others. ``p_bar`` is differentiated (Eq. 14-15); ``D``
(the mean Dice coefficient, ``1 - L_Dice``) is detached, since Eq. 14 has no ``dD/dp`` term.
"""

from __future__ import annotations

from typing import Any

import torch

from . import functional as Fn
from .core import LOSSES, check_choice, check_number
from .region import _REGION_SPEC, RegionLoss


class _DiceAndCE(RegionLoss):
    def parts(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(L_Dice, D, CE per pixel)`` with ``D = mean Dice = 1 - L_Dice``."""
        logp, probs, onehot = Fn.logp_probs_onehot(logits, target)
        tp, fp, fn = Fn.soft_counts(probs, onehot, self.batch)
        dice = self.mean(Fn.dice_index(tp, fp, fn, self.smooth))
        return 1.0 - dice, dice, -Fn.true_class(logp, target)


@LOSSES.register("ml")
class MultiplicativeLoss(_DiceAndCE):
    """Multiplicative loss ``L_ML = L_Dice * L_CE`` (paper 000, Eq. 5; gradient Eq. 6-7).

    Both factors are differentiated (product rule, Eq. 6).

    Args:
        smooth: Dice smoothing (default 1e-5). batch: batch-summed Dice (default True, Eq. 3).
        include_background: class 0 in the Dice mean (default True, Eq. 4).
    Shape:
        logits ``[B, C, *spatial]``, target ``[B, *spatial]`` -> scalar.
    """

    spec = {
        "formula": "L_Dice * L_CE",
        "paper": "000 Eq. 5 (grad Eq. 6-7)",
        **_REGION_SPEC,
        "reduction": "Dice: batch sums (Eq. 3); CE: mean over all pixels",
    }

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dice_loss, _, ce = self.parts(logits, target)
        return dice_loss * ce.mean()


@LOSSES.register("caml")
class ConfidenceAdaptiveMultiplicativeLoss(_DiceAndCE):
    """CAML ``L_Dice * L_CE^alpha``, ``alpha = (1 - p_bar)^D`` (paper 000 erratum, Eq. 13-15).

    ``p_bar = (1/N) sum_i p_{i, y_i}`` is the batch mean of the true-class probability and is
    DIFFERENTIATED (its gradient is Eq. 15 with ``d p_bar / d p_{i,c} = y_{i,c}/N``); ``D`` is the
    mean Dice coefficient ``1 - L_Dice`` and is DETACHED (Eq. 14 has no ``dD/dp`` term). See the
    module docstring for why ``p_bar`` cannot be the mean over classes.

    Args:
        confidence: ``"batch"`` (default; erratum Eq. 13) or ``"pixel"`` (original Eq. 10:
            ``L_Dice * (1/N) sum_i CE_i^{alpha_i}``, ``alpha_i = (1 - p_{i,y_i})^D``, differentiated
            as Eq. 12).
        r: None (default: exponent ``D``) or a constant ``r > 0`` replacing ``D`` (Table 4 ablation,
            r in {1, ..., 5}).
        smooth, batch, include_background: of the Dice term, as :class:`~.region.DiceLoss`.
    Raises:
        ValueError: unknown ``confidence``, ``r <= 0``.
    """

    spec = {
        "formula": "L_Dice * L_CE^alpha, alpha = (1 - p_bar)^D, p_bar = mean_i p_{i,y_i}",
        "paper": "000 erratum Eq. 13-15 (pixel: Eq. 10-12; r: Table 4)",
        **_REGION_SPEC,
        "reduction": "Dice: batch sums (Eq. 3); CE and p_bar: mean over all pixels",
        "notes": "D = 1 - L_Dice detached; p_bar differentiated; 1-p_bar, L_CE clamped at EPS",
    }

    def __init__(self, confidence: str = "batch", r: float | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.confidence = check_choice("confidence", confidence, ["batch", "pixel"])
        self.r = None if r is None else check_number("r", r, low=0.0, low_open=True)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dice_loss, dice, ce = self.parts(logits, target)
        return Fn.caml_combine(dice_loss, ce, dice, self.confidence, self.r)
