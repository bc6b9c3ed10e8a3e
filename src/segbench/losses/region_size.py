"""Paper 003 (Liu et al. 2024, "Do we really need Dice?"): explicit region-size penalties.

* ``rce``  = CE + lam * R(y_hat, p_hat)          (Eq. 7)
* ``rfl``  = focal + lam * R(y_hat, p_hat)       (Eq. 7 with FL in place of CE, Table 2 "RFL")
* ``dbce`` = CE + lam * DB, DB = sum_k log(p_hat_k + y_hat_k)   (the Dice bias term of Eq. 2);
  ``include_background=False`` sums over the foreground classes only: for two classes this is
  App. B's binary form ``DB1 = log(p_hat_1 + y_hat_1)`` (Eq. B.3), the region-size term of the
  foreground-only Dice ("Dice1") that Table 3 uses on Retinal Lesions (l. 760-763)

with ``R = L1 = sum_k |y_hat_k - p_hat_k|`` or ``R = KL(y_hat || p_hat) = sum_k y_hat_k
log(y_hat_k / p_hat_k)`` (Table 1). ``p_hat_k`` is the mean over the image of the TEMPERATURE
softmax ``softmax(tau * z)`` (App. C, Eq. C.1; tau = 10 in all the paper's experiments); the CE /
focal term uses the ordinary softmax. All K classes (background included) enter the penalty.

Reduction: the paper writes every loss "for a single training image" and averages over the
mini-batch, so proportions are per image and the penalty is averaged over images (``batch=False``,
default); ``batch=True`` computes one proportion vector over the whole batch. The CE / focal term
is the mean over all pixels of the batch. Hand-written: no library has these penalties.
"""

from __future__ import annotations

from typing import Any

import torch

from . import functional as Fn
from .core import LOSSES, SegLoss, check_bool, check_choice, check_number

_SIZE_SPEC = {
    "reduction": "CE/FL: mean over pixels; proportions per image (batch=False), penalty mean over images",
    "background": "included (all K classes in the proportions)",
    "smoothing": "p_hat clamped at EPS inside logs; no smoothing",
}

DEFAULT_LAM = {"l1": 1.0, "kl": 0.1}


def penalty(p_hat: torch.Tensor, y_hat: torch.Tensor, kind: str) -> torch.Tensor:
    """Region-size penalty per row: L1 or KL(y_hat || p_hat) (paper 003, Table 1), ``[B]``."""
    if kind == "l1":
        return (y_hat - p_hat).abs().sum(-1)
    ratio = y_hat.clamp_min(Fn.EPS) / p_hat.clamp_min(Fn.EPS)
    return torch.where(y_hat > 0, y_hat * ratio.log(), torch.zeros_like(y_hat)).sum(-1)


class _RegionSize(SegLoss):
    """``lam``, ``tau`` and the family option ``batch`` (keyword-only, forwarded as ``**options``)."""

    def __init__(self, lam: float, tau: float, *, batch: bool = False) -> None:
        super().__init__()
        self.lam = check_number("lam", lam, low=0.0)
        self.tau = check_number("tau", tau, low=0.0, low_open=True)
        self.batch = check_bool("batch", batch)

    def proportions(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        onehot = Fn.one_hot(target, logits.shape[1], logits.dtype)
        return Fn.region_proportions(logits, onehot, self.tau, self.batch)


@LOSSES.register("rce")
class RegionCrossEntropyLoss(_RegionSize):
    """RCE ``= CE + lam * R(y_hat, p_hat)`` (paper 003, Eq. 7).

    Args:
        penalty: ``"l1"`` (default; the paper's "RCE") or ``"kl"`` (RCE(DKL)).
        lam: penalty weight >= 0; default None = the paper's best (1.0 for L1, 0.1 for KL, Sec. 4.1).
        tau: temperature of the softmax used for ``p_hat`` (default 10, App. C), > 0.
        batch: proportions over the whole batch instead of per image (default False).
    Raises:
        ValueError: unknown penalty, lam < 0, tau <= 0.
    """

    spec = {
        "formula": "CE + lam R(y_hat, p_hat), R = L1 | KL",
        "paper": "003 Eq. 7, App. C",
        **_SIZE_SPEC,
    }
    focal = False

    def __init__(
        self, penalty: str = "l1", lam: float | None = None, tau: float = 10.0, **options: Any
    ) -> None:
        kind = check_choice("penalty", penalty, ["l1", "kl"])
        super().__init__(DEFAULT_LAM[kind] if lam is None else lam, tau, **options)
        self.penalty = kind

    def pixel_term(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return Fn.pixel_ce(logits, target).mean()

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p_hat, y_hat = self.proportions(logits, target)
        return (
            self.pixel_term(logits, target) + self.lam * penalty(p_hat, y_hat, self.penalty).mean()
        )


@LOSSES.register("rfl")
class RegionFocalLoss(RegionCrossEntropyLoss):
    """RFL ``= FL + lam * R(y_hat, p_hat)`` (paper 003, Eq. 7 with the focal loss, gamma = 2).

    Args: as :class:`RegionCrossEntropyLoss`, plus ``gamma`` of the focal term (default 2, Sec. 4.1).
    """

    spec = {
        "formula": "FL_gamma + lam R(y_hat, p_hat), R = L1 | KL",
        "paper": "003 Eq. 7, App. C (RFL)",
        **_SIZE_SPEC,
    }

    def __init__(
        self,
        penalty: str = "l1",
        lam: float | None = None,
        tau: float = 10.0,
        *,
        gamma: float = 2.0,
        **options: Any,
    ) -> None:
        super().__init__(penalty, lam, tau, **options)
        self.gamma = check_number("gamma", gamma, low=0.0)

    def pixel_term(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return Fn.pixel_focal(logits, target, self.gamma).mean()


def dice_bias(
    p_hat: torch.Tensor, y_hat: torch.Tensor, include_background: bool = True
) -> torch.Tensor:
    """Region-size bias of the log-Dice per row, ``[B]`` (paper 003, Eq. 2 and App. B, Eq. B.3).

    ``DB = sum_k log(p_hat_k + y_hat_k)`` over all K classes (Eq. 2, the multi-region Dice), or
    over the foreground classes ``k >= 1`` without background: for two classes
    ``DB1 = log(p_hat_1 + y_hat_1)`` (Eq. B.3), the term of the foreground-only binary Dice with
    ``-log Dice1 = DF1 + DB1`` up to an additive constant (Eq. B.1). Arguments clamped at ``EPS``.
    """
    if not include_background:
        p_hat, y_hat = p_hat[..., 1:], y_hat[..., 1:]
    return (p_hat + y_hat).clamp_min(Fn.EPS).log().sum(-1)


@LOSSES.register("dbce")
class DiceBiasCrossEntropyLoss(_RegionSize):
    """DBCE ``= CE + lam * DB`` (paper 003: CE + the Dice bias term DB of Eq. 2, Sec. 4.2.3).

    ``DB = sum_k log(p_hat_k + y_hat_k)`` over all classes, or over the foreground classes with
    ``include_background=False``. The latter, for two classes, is App. B's binary form
    ``DB1 = log(p_hat_1 + y_hat_1)`` (Eq. B.3), which Table 3 uses on Retinal Lesions: "Dice1 is
    implemented for all the Dice related losses for the binary setting on this dataset, and
    DiceBias here refers to region-size bias for the binary Dice (details can be found in
    Appendix B)" (l. 760-763). With C > 2 it is the region-size term of the foreground-only
    multi-region log-Dice ``-sum_{k>=1} log Dice_k`` (Eq. 2 restricted to ``k >= 1``).

    Args:
        lam: weight of DB (default 0.01; the paper reports a sharp drop for lam >= 0.1, Sec. 4.2.3).
        tau: temperature of the softmax for ``p_hat`` (default 1: DB as it appears inside the
            log-Dice of Eq. 2; set 10 to use App. C's estimate).
        batch: proportions over the whole batch instead of per image (default False).
        include_background: class 0 in DB (default True, Eq. 2); False: foreground classes only
            (Eq. B.3 for C = 2).
    Raises:
        ValueError: lam < 0, tau <= 0, a non-bool flag.
    """

    spec = {
        "formula": "CE + lam sum_k log(p_hat_k + y_hat_k); C=2, no background: CE + lam log(p_hat_1 + y_hat_1)",
        "paper": "003 Eq. 2 (DB) + CE; App. B Eq. B.3 (binary DB1, Table 3)",
        **_SIZE_SPEC,
        "background": "included unless include_background=False (DB over k >= 1; CE over all classes)",
    }

    def __init__(
        self,
        lam: float = 0.01,
        tau: float = 1.0,
        *,
        include_background: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(lam, tau, **options)
        self.include_background = check_bool("include_background", include_background)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p_hat, y_hat = self.proportions(logits, target)
        db = dice_bias(p_hat, y_hat, self.include_background)
        return Fn.pixel_ce(logits, target).mean() + self.lam * db.mean()
