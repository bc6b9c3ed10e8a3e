"""Paper 002 ("Beyond scalar losses"): gradient vector field surgery for Dice, Tversky, CE + Dice.

The forward VALUE is the ordinary base loss. Only the backward pass of the softmax is replaced
(paper 002, App. C, Listing 1 ``GradSurgeSoftmax``): for a binary softmax the true logit gradient
is ``dL/dz_fg = p (1 - p) (dL/dp_fg - dL/dp_bg) = -dL/dz_bg``; surgery replaces ``p (1 - p)`` by

    ``w = scale * |y - p| * (1 - (1 - p)^n) * (1 - p^n)``      (Eq. 10; Eq. 9 without the decline
                                                               terms when ``n`` is None)

with ``p, y`` the foreground probability and label. ``|y - p| = p (1 - p) / (y p + (1 - y)(1 - p))``
exactly as written in Eq. 9, and the decline product is symmetric in ``p <-> 1 - p``, so Listing 1's
``(1 - e^n)(1 - (1 - e)^n)`` with ``e = |y - p|`` is the same factor. ``scale = 0.25`` is Listing 1's
constant (the equations omit it); the tests check the logit gradient equals ``scale`` times Eq. 10.

Binary only (C = 2), as the paper and Listing 1 ("Assuming binary segmentation"); C != 2 raises
ValueError: the paper gives no multi-class field and the non-conservative construction has no
unique extension. The base Dice follows Eq. 1 (foreground channel only, ``include_background=False``
by default; ``smooth`` is the epsilon of Eq. 1, added to numerator and denominator).
"""

from __future__ import annotations

from typing import Any

import torch

from . import functional as Fn
from .core import LOSSES, check_choice, check_int, check_number
from .region import DEFAULT_SMOOTH, RegionLoss, check_tversky_weights


def surgery_weight(
    p_fg: torch.Tensor, y_fg: torch.Tensor, n: int | None, scale: float
) -> torch.Tensor:
    """``scale * |y - p| * (1 - (1 - p)^n) (1 - p^n)`` (paper 002, Eq. 9-10; Listing 1 lines 7-13)."""
    w = (y_fg - p_fg).abs()
    if n is not None:
        w = w * (1.0 - (1.0 - p_fg).pow(n)) * (1.0 - p_fg.pow(n))
    return scale * w


class SurgerySoftmax(torch.autograd.Function):
    """Softmax over 2 channels whose backward is the surgery field (paper 002, Listing 1)."""

    @staticmethod
    def forward(
        ctx: Any, logits: torch.Tensor, onehot: torch.Tensor, n: int | None, scale: float
    ) -> torch.Tensor:
        probs = torch.softmax(logits, dim=1)
        ctx.save_for_backward(surgery_weight(probs[:, 1:2], onehot[:, 1:2], n, scale))
        return probs

    @staticmethod
    def backward(ctx: Any, grad_probs: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (weight,) = ctx.saved_tensors
        coupling = grad_probs[:, 1:2] - grad_probs[:, 0:1]
        g_fg = weight * coupling
        return torch.cat([-g_fg, g_fg], dim=1), None, None, None


class _SurgeryLoss(RegionLoss):
    """Base loss on ``SurgerySoftmax`` probabilities; subclasses define ``base_value``."""

    min_classes = 2
    max_classes = 2

    def __init__(
        self,
        *,
        n: int | None = 20,
        scale: float = 0.25,
        smooth: float = DEFAULT_SMOOTH,
        batch: bool = True,
        include_background: bool = False,
    ) -> None:
        super().__init__(smooth=smooth, batch=batch, include_background=include_background)
        self.n = None if n is None else check_int("n", n, low=1)
        self.scale = check_number("scale", scale, low=0.0, low_open=True)

    def surgery_probs(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(SurgerySoftmax probabilities, one-hot target)`` of a binary batch."""
        onehot = Fn.one_hot(target, 2, logits.dtype)
        return SurgerySoftmax.apply(logits, onehot, self.n, self.scale), onehot

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.base_value(*self.surgery_probs(logits, target), target)

    def base_value(
        self, probs: torch.Tensor, onehot: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError


_SURGERY_SPEC = {
    "reduction": "counts summed over batch+pixels (batch=True) or per image",
    "background": "binary only (C=2); Dice over foreground only by default (Eq. 1)",
    "smoothing": "smooth = epsilon of Eq. 1 (default 1e-5)",
}


@LOSSES.register("dice_surgery")
class DiceSurgeryLoss(_SurgeryLoss):
    """Dice loss value with the surgery backward (paper 002, Eq. 1 and Eq. 9-10, Listing 1).

    Args:
        n: steepness of the decline terms (default 20, Sec. 4.2 / Table 3); None = Eq. 9 (no decline).
        scale: constant of Listing 1 (default 0.25), > 0.
        smooth: epsilon of Eq. 1 (default 1e-5). batch: batch-summed counts (default True).
        include_background: also average the background channel's Dice (default False, Eq. 1).
    Raises:
        ValueError: n < 1, scale <= 0; at forward, C != 2.
    """

    spec = {
        "formula": "value: 1 - Dice_fg; backward: dL/dz_fg = scale|y-p|(1-(1-p)^n)(1-p^n) G",
        "paper": "002 Eq. 1, 9-10, Listing 1",
        **_SURGERY_SPEC,
    }

    def base_value(
        self, probs: torch.Tensor, onehot: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        return self.dice_loss(*Fn.soft_counts(probs, onehot, self.batch))


@LOSSES.register("tversky_surgery")
class TverskySurgeryLoss(_SurgeryLoss):
    """Tversky loss value with the surgery backward (paper 002, Sec. 4, Tables 1-2).

    Args:
        alpha: FP weight (default 0.3). beta: FN weight (default 0.7; the paper tunes alpha with
            beta = 1 - alpha, App. D). n, scale, smooth, batch, include_background: as
            :class:`DiceSurgeryLoss`.
    """

    spec = {
        "formula": "value: 1 - TI_fg; backward as dice_surgery",
        "paper": "002 Eq. 10, Listing 1, App. D",
        **_SURGERY_SPEC,
    }

    def __init__(self, alpha: float = 0.3, beta: float = 0.7, **options: Any) -> None:
        super().__init__(**options)
        self.alpha, self.beta = check_tversky_weights(alpha, beta)

    def base_value(
        self, probs: torch.Tensor, onehot: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        return self.tversky_loss(*Fn.soft_counts(probs, onehot, self.batch), self.alpha, self.beta)


@LOSSES.register("dice_ce_surgery")
class DiceCESurgeryLoss(DiceSurgeryLoss):
    """``w_dice * Dice + w_ce * CE`` value with the surgery backward (paper 002 "CE + Dice - Surgery").

    ``surgery_on`` says which terms go through the replaced softmax backward:

    * ``"all"`` (default): the CE is computed from the surgery probabilities,
      ``-(1/N) sum_i log max(p_{i,y_i}, EPS)``, so its gradient also passes through Listing 1's
      field: ``dCE/dz_fg = scale |y-p| (1-(1-p)^n)(1-p^n) (dCE/dp_fg - dCE/dp_bg)``, i.e.
      ``-scale (1-p_t)/p_t`` times the decline terms on a pixel of true-class probability
      ``p_t`` (not CE's own ``p - y``). This is what one softmax module replaced "for the
      losses" does when the CE is fed the probabilities.
    * ``"dice"``: only the Dice term is computed from the surgery softmax; the CE is the
      ordinary ``log_softmax`` CE with its native logit gradient ``(p - y)/N``. Paper 002, App. C
      (l. 256): "we implement our custom (gradient) vector field for the different REGION-BASED
      losses by overwriting the backward pass of the softmax"; CE's native binary field
      ``dCE/dz_fg = p - y`` already has the magnitude ``|y - p|`` that Eq. 9 gives the region
      losses, so the surgery is needed for the Dice term only.

    The value is the same for both (up to the ``EPS`` clamp of ``p_{i,y_i}`` in ``"all"``).
    Combo weighting 0.5 / 0.5 in App. D is ``w_dice = w_ce``.

    Args:
        w_dice, w_ce: weights (default 1.0 each).
        surgery_on: ``"all"`` (default) or ``"dice"``.
        n, scale, smooth, batch, include_background: as :class:`DiceSurgeryLoss`.
    Raises:
        ValueError: an unknown ``surgery_on``, negative weights; as :class:`DiceSurgeryLoss`.
    """

    spec = {
        "formula": "value: w_dice(1 - Dice_fg) + w_ce CE; backward as dice_surgery",
        "paper": "002 Tables 1-2, Listing 1, App. C",
        **_SURGERY_SPEC,
        "notes": "surgery_on='all': CE from surgery probs too; 'dice': CE with its native gradient",
    }

    def __init__(
        self, w_dice: float = 1.0, w_ce: float = 1.0, *, surgery_on: str = "all", **options: Any
    ) -> None:
        super().__init__(**options)
        self.w_dice = check_number("w_dice", w_dice, low=0.0)
        self.w_ce = check_number("w_ce", w_ce, low=0.0)
        self.surgery_on = check_choice("surgery_on", surgery_on, ["all", "dice"])

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.surgery_on == "all":
            return super().compute(logits, target)
        probs, onehot = self.surgery_probs(logits, target)
        ce = Fn.pixel_ce(logits, target).mean()
        return self.w_dice * super().base_value(probs, onehot, target) + self.w_ce * ce

    def base_value(
        self, probs: torch.Tensor, onehot: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        p_true = (probs * onehot).sum(1)
        ce = -p_true.clamp_min(Fn.EPS).log().mean()
        return self.w_dice * super().base_value(probs, onehot, target) + self.w_ce * ce
