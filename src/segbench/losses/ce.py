"""Pixel-wise baselines: cross-entropy, weighted cross-entropy, focal loss.

Hand-written rather than taken from segmentation_models_pytorch / MONAI because the studies'
reductions differ from the libraries' defaults (MONAI's softmax focal loss averages over the class
axis as well; smp's multiclass focal loss is one-vs-rest sigmoid). Here every pixel-wise loss is the
mean over all ``N = B * prod(spatial)`` pixels of the batch (paper 000, Eq. 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import functional as Fn
from .core import LOSSES, SegLoss, check_choice, check_number, check_vector


@LOSSES.register("ce")
class CrossEntropyLoss(SegLoss):
    """Cross-entropy ``-(1/N) sum_i log p_{i, y_i}`` (paper 000, Eq. 2).

    Shape:
        logits ``[B, C, *spatial]``, target ``[B, *spatial]`` -> scalar.
    Returns:
        the mean over all pixels of the batch.
    """

    spec = {
        "formula": "-(1/N) sum_i log p_{i,y_i}",
        "paper": "000 Eq. 2",
        "reduction": "mean over all B*H*W pixels",
        "background": "included (ordinary class)",
        "smoothing": "none (log_softmax)",
    }

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return Fn.pixel_ce(logits, target).mean()


WCE_NORMALIZATIONS = ("weight_sum", "pixels", "class_sum")


@LOSSES.register("wce")
class WeightedCrossEntropyLoss(SegLoss):
    """Class-weighted cross-entropy in one of three normalisations (``normalization``).

    * ``"weight_sum"`` (default): ``sum_i w_{y_i} CE_i / sum_i w_{y_i}`` over all pixels of the
      batch, PyTorch's ``cross_entropy(weight=w)``; paper 003's authors' code
      (``F.cross_entropy(inputs, labels, weight=self.weight)``, by-liu/SegLossBias). Scaling all
      weights by a constant does not change the loss.
    * ``"pixels"``: ``(1/N) sum_i w_{y_i} CE_i`` (paper 004, Eq. 1: ``-(1/N) sum_c sum_i w_c y_i^c
      log p_i^c``), ``N`` = all pixels of the batch.
    * ``"class_sum"``: per image ``sum_{k present} (1/|Omega_k|) sum_{i in Omega_k} CE_i`` (paper 003,
      Table 1, l. 253: the weights ARE ``1/|Omega_k|`` of the image, unnormalised), then the mean
      over the images of the batch (paper 003, l. 325-328). Needs ``weights="inverse_frequency"``.

    With ``weights="inverse_frequency"`` (``w_c = N / (K n_c)``, so ``sum_i w_{y_i} = N``)
    ``"weight_sum"`` and ``"pixels"`` coincide and equal ``(1/K) sum_k mean_{Omega_k} CE`` over the
    batch, i.e. ``"class_sum"`` pooled over the batch divided by the number K of present classes.

    Args:
        weights: a list with one weight per class, or ``"inverse_frequency"`` (default):
            ``w_c = N / (K n_c)`` from the pixel counts ``n_c`` of the current batch (K classes
            present). Computed from the target, so no gradient flows through it.
        normalization: ``"weight_sum"`` (default), ``"pixels"`` or ``"class_sum"`` (see above).
    Raises:
        ValueError: a negative / non-numeric weight, a string other than "inverse_frequency", an
            unknown normalization, ``"class_sum"`` with a weight list; at forward time, a weight
            list whose length is not C.
    """

    spec = {
        "formula": "weight_sum: sum_i w_{y_i} CE_i / sum_i w_{y_i}; pixels: (1/N) sum_i w_{y_i} CE_i; "
        "class_sum: sum_k mean_{i in Omega_k} CE_i per image",
        "paper": "003 baseline WCE (authors' code: weight_sum; Table 1: class_sum); 004 Eq. 1 (pixels)",
        "reduction": "weight_sum / pixels: over all batch pixels; class_sum: per image, mean over images",
        "background": "included; its weight as given / from the batch frequency",
        "smoothing": "none",
        "notes": "inverse_frequency: w_c = N/(K n_c) per batch, absent classes 0",
    }

    def __init__(
        self,
        weights: Sequence[float] | str = "inverse_frequency",
        normalization: str = "weight_sum",
    ) -> None:
        super().__init__()
        if isinstance(weights, str):
            check_choice("weights", weights, ["inverse_frequency"])
            self.weights: tuple[float, ...] | None = None
        else:
            self.weights = check_vector("weights", weights, low=0.0)
        self.normalization = check_choice("normalization", normalization, WCE_NORMALIZATIONS)
        if self.normalization == "class_sum" and self.weights is not None:
            raise ValueError(
                f"parameter weights={weights!r} is not allowed with normalization='class_sum' "
                "(its weights are 1/|Omega_k| of each image, paper 003 Table 1); "
                "allowed: weights='inverse_frequency'"
            )

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = logits.shape[1]
        if self.normalization == "class_sum":
            return Fn.class_sum_ce(logits, target)
        if self.weights is None:
            w = Fn.inverse_frequency_weights(target, c).to(logits.dtype)
        else:
            w = Fn.as_class_vector(self.weights, c, "weights", logits)
        if self.normalization == "pixels":
            return Fn.pixel_ce(logits, target, weight=w).mean()
        return torch.nn.functional.cross_entropy(logits, target, weight=w)


def _class_alpha(
    alpha: float | Sequence[float] | None, c: int, like: torch.Tensor
) -> torch.Tensor | None:
    """Per-class focal alpha: scalar a -> (1 - a) for class 0, a for classes >= 1 (MONAI softmax)."""
    if alpha is None:
        return None
    if isinstance(alpha, float):
        out = torch.full((c,), alpha, dtype=like.dtype, device=like.device)
        out[0] = 1.0 - alpha
        return out
    return Fn.as_class_vector(alpha, c, "alpha", like)


def check_alpha(alpha: object) -> float | tuple[float, ...] | None:
    """Validate a focal ``alpha``: None, a number in [0, 1] or a list of non-negative weights."""
    if alpha is None:
        return None
    if isinstance(alpha, int | float) and not isinstance(alpha, bool):
        return check_number("alpha", alpha, 0.0, 1.0)
    return check_vector("alpha", alpha, low=0.0)


@LOSSES.register("focal")
class FocalLoss(SegLoss):
    """Softmax focal loss ``-(1/N) sum_i a_{y_i} (1 - p_{i,y_i})^gamma log p_{i,y_i}`` (Lin et al. 2017).

    Args:
        gamma: focusing parameter, >= 0 (default 2; gamma = 0 is CE).
        alpha: None (default, no class weighting), a number ``a`` in [0, 1] (weight ``a`` for every
            foreground class and ``1 - a`` for background, as MONAI's softmax focal loss), or a
            list of per-class weights.
    Returns:
        the mean over all pixels (not over classes: MONAI's value times C).
    Raises:
        ValueError: gamma < 0, alpha outside [0, 1] or a list of the wrong length (at forward).
    """

    spec = {
        "formula": "-(1/N) sum_i a_{y_i} (1-p_{i,y_i})^gamma log p_{i,y_i}",
        "paper": "Lin et al. 2017; 003 baseline FL",
        "reduction": "mean over all pixels",
        "background": "included; alpha scalar gives it 1-alpha",
        "smoothing": "none",
    }

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None) -> None:
        super().__init__()
        self.gamma = check_number("gamma", gamma, low=0.0)
        self.alpha = check_alpha(alpha)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = _class_alpha(self.alpha, logits.shape[1], logits)
        return Fn.pixel_focal(logits, target, self.gamma, a).mean()
