"""Paper 004 (Xu et al., AAAI 2025): TopK baselines, Inter-/Intra-class Balance losses, Balance loss.

* ``topk``     Eq. 3: ``-(1/N) sum_{i in K} log p_{i,y_i}``, K = the worst ``k`` % of the N pixels of
  the batch. Normalised by N as printed (nnU-Net's TopKLoss divides by |K| instead: a constant
  factor 100/k).
* ``topk_thr`` Eq. 2: mean of ``-log p_{i,y_i}`` over the pixels with ``p_{i,y_i} < t`` (0 if none).
* ``intra_cbl`` Eq. 12: ``-sum_c [mean_{hard_c} log p + mean_{easy_c} log p]``, hard = ``p <= t``,
  easy = ``p > t`` among the pixels of class c; an empty set contributes 0.
* ``inter_cbl`` Eq. 11 (binary): per image with f foreground pixels and N pixels,
  ``(1/f) sum_fg -log p + (1/f) sum_{bg_wf} -log(1 - p) + (1/N) sum_{bg \\ bg_wf} -log(1 - p)``,
  ``bg_wf`` = the f background pixels with the largest loss (all of them if f > b). An image
  without foreground contributes the plain background CE ``(1/N) sum_bg -log(1 - p)``.
* ``balance`` Eq. 13 with the two-stage rule of the paper: Intra-CBL alone until, on a training
  batch, more than half of the images (among those with foreground) have their f-th best
  foreground probability AND their f-th best background probability (rank ``min(f, b)``) both
  ``> t``; from that
  batch on (sticky) ``alpha * Intra-CBL + (1 - alpha) * Inter-CBL``.

Selections (top-k, thresholds, which set a pixel is in) are made on detached values; the loss is
differentiated through the selected pixels' log-probabilities. ``inter_cbl`` and ``balance`` are
binary only (C = 2, as the paper, whose conclusion leaves multi-class to future work); C != 2
raises ValueError. ``topk``, ``topk_thr`` and ``intra_cbl`` are multi-class as written.
Hand-written: no library implements Eq. 11-13; nnU-Net's TopK normalises differently.
"""

from __future__ import annotations

import math

import torch

from . import functional as Fn
from .core import LOSSES, SegLoss, check_bool, check_choice, check_number

_HARD_SPEC = {
    "background": "included (ordinary class)",
    "smoothing": "none (log_softmax); empty sets contribute 0",
}


@LOSSES.register("topk")
class TopKLoss(SegLoss):
    """TopK loss (paper 004, Eq. 3): CE summed over the worst ``k`` % pixels of the batch, divided by N.

    Args:
        k: percentage of pixels kept, in (0, 100] (default 10, Table 6). At least one pixel is kept.
    """

    spec = {
        "formula": "-(1/N) sum_{i in worst k%} log p_{i,y_i}",
        "paper": "004 Eq. 3",
        "reduction": "worst k% of all batch pixels, sum / N",
        **_HARD_SPEC,
    }

    def __init__(self, k: float = 10.0) -> None:
        super().__init__()
        self.k = check_number("k", k, 0.0, 100.0, low_open=True)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = Fn.pixel_ce(logits, target).reshape(-1)
        n = ce.numel()
        kept = min(n, max(1, math.ceil(n * self.k / 100.0)))
        return ce.topk(kept, sorted=False).values.sum() / n


@LOSSES.register("topk_thr")
class TopKThresholdLoss(SegLoss):
    """Threshold TopK (paper 004, Eq. 2): mean CE over pixels with ``p_{i,y_i} < t`` (0 when none).

    Args:
        t: probability threshold in (0, 1] (default 0.9, Table 6).
    """

    spec = {
        "formula": "sum_i [p_{i,y_i}<t] CE_i / sum_i [p_{i,y_i}<t]",
        "paper": "004 Eq. 2",
        "reduction": "mean over the batch pixels below t",
        **_HARD_SPEC,
    }

    def __init__(self, t: float = 0.9) -> None:
        super().__init__()
        self.t = check_number("t", t, 0.0, 1.0, low_open=True)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = Fn.pixel_ce(logits, target)
        hard = (torch.exp(-ce.detach()) < self.t).to(ce.dtype)
        return (hard * ce).sum() / hard.sum().clamp_min(1.0)


def intra_cbl(logits: torch.Tensor, target: torch.Tensor, t: float, batch: bool) -> torch.Tensor:
    """Intra-class Balance loss (paper 004, Eq. 12); mean over images when ``batch`` is False."""
    b, c = logits.shape[:2]
    logp = -Fn.pixel_ce(logits, target).reshape(b, -1)
    easy = (logp.detach().exp() > t).long()
    key = target.reshape(b, -1) * 2 + easy
    groups = 1 if batch else b
    if not batch:
        key = key + torch.arange(b, device=key.device).view(b, 1) * (2 * c)
    n = groups * 2 * c
    sums = torch.zeros(n, dtype=logp.dtype, device=logp.device).index_add(
        0, key.reshape(-1), logp.reshape(-1)
    )
    cnt = torch.zeros(n, dtype=logp.dtype, device=logp.device).index_add(
        0, key.reshape(-1), torch.ones_like(logp).reshape(-1)
    )
    per = -(sums / cnt.clamp_min(1.0)).view(groups, 2 * c).sum(-1)
    return per.mean()


def inter_cbl(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Inter-class Balance loss (paper 004, Eq. 11), binary, per image, mean over images."""
    b = logits.shape[0]
    logp = torch.log_softmax(logits, dim=1).reshape(b, 2, -1)
    y = target.reshape(b, -1)
    fg = y == 1
    n = y.shape[1]
    f = fg.sum(1)
    k = torch.minimum(f, n - f)  # |bg_wf|
    l_fg = torch.where(fg, -logp[:, 1], torch.zeros_like(logp[:, 1])).sum(1)
    l_bg = torch.where(fg, torch.zeros_like(logp[:, 0]), -logp[:, 0])
    kmax = int(k.max().item()) if b > 0 else 0
    if kmax > 0:
        masked = torch.where(fg, torch.full_like(l_bg, -1.0), l_bg)
        top = masked.detach().topk(kmax, dim=1).indices
        ranks = torch.arange(kmax, device=logits.device).view(1, -1)
        worst = (l_bg.gather(1, top) * (ranks < k.view(-1, 1))).sum(1)
    else:
        worst = torch.zeros_like(l_fg)
    inv_f = 1.0 / f.clamp_min(1).to(l_fg.dtype)
    per_image = inv_f * (l_fg + worst) + (l_bg.sum(1) - worst) / n
    return per_image.mean()


def switch_criterion(logits: torch.Tensor, target: torch.Tensor, t: float) -> bool:
    """Paper 004's stage switch: more than half of the images with foreground have their f-th best
    foreground probability and f-th best background probability both ``> t``.

    The f-th best of the f foreground pixels is their smallest foreground probability; the
    background rank is ``min(f, b)`` (as ``bg_wf`` of Eq. 11), and an image without background
    passes the background part. Images without foreground are not counted.
    """
    with torch.no_grad():
        b = logits.shape[0]
        p = torch.softmax(logits, dim=1).reshape(b, 2, -1)
        fg = target.reshape(b, -1) == 1
        f = fg.sum(1)
        k = torch.minimum(f, fg.shape[1] - f)
        has = f > 0
        if not bool(has.any()):
            return False
        fg_min = torch.where(fg, p[:, 1], torch.full_like(p[:, 1], 2.0)).amin(1)
        bg_ok = k == 0
        kmax = int(k.max().item())
        if kmax > 0:
            bg_p = torch.where(fg, torch.full_like(p[:, 0], -1.0), p[:, 0])
            top = bg_p.topk(kmax, dim=1).values  # descending
            kth = top.gather(1, (k.clamp(1, kmax) - 1).view(-1, 1)).squeeze(1)
            bg_ok = bg_ok | (kth > t)
        ok = has & (fg_min > t) & bg_ok
        return bool(ok.sum() * 2 > has.sum())


@LOSSES.register("intra_cbl")
class IntraClassBalanceLoss(SegLoss):
    """Intra-class Balance loss (paper 004, Eq. 12).

    Args:
        t: hard / easy threshold on the true-class probability, in [0, 1] (default 0.9).
        batch: pool the pixels of the whole batch (default True, Eq. 12's i = 1..N); False
            computes Eq. 12 per image and averages.
    """

    spec = {
        "formula": "-sum_c [mean_{y=c,p<=t} log p + mean_{y=c,p>t} log p]",
        "paper": "004 Eq. 12",
        "reduction": "pixels of the whole batch pooled (batch=True)",
        **_HARD_SPEC,
    }

    def __init__(self, t: float = 0.9, batch: bool = True) -> None:
        super().__init__()
        self.t = check_number("t", t, 0.0, 1.0)
        self.batch = check_bool("batch", batch)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return intra_cbl(logits, target, self.t, self.batch)


@LOSSES.register("inter_cbl")
class InterClassBalanceLoss(SegLoss):
    """Inter-class Balance loss (paper 004, Eq. 11). Binary only (C = 2); per image, mean over images."""

    min_classes = 2
    max_classes = 2
    spec = {
        "formula": "(1/f)[sum_fg -log p + sum_{bg_wf} -log(1-p)] + (1/N) sum_{bg\\bg_wf} -log(1-p)",
        "paper": "004 Eq. 11",
        "reduction": "per image (f, N of the image), mean over images",
        "background": "binary only (C=2); class 1 = foreground",
        "smoothing": "none (log_softmax)",
    }

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return inter_cbl(logits, target)


@LOSSES.register("balance")
class BalanceLoss(SegLoss):
    """Balance loss ``alpha * Intra-CBL + (1 - alpha) * Inter-CBL`` with the two-stage switch (Eq. 13).

    Stage 1: Intra-CBL alone. On every forward in training mode (``self.training``) during stage 1
    the switch rule of the paper is evaluated on the batch (see the module docstring); once it
    holds, the loss switches to stage 2 (Eq. 13) for that batch and all later ones. The stage is a
    persistent buffer (``stage``: 1 or 2), saved in ``state_dict``; ``reset_stage()`` returns to 1.
    In eval mode the stage is never changed. Binary only (C = 2).

    Args:
        alpha: weight of Intra-CBL in stage 2, in [0, 1] (default 0.5).
        t: threshold of Intra-CBL and of the switch rule, in [0, 1] (default 0.9).
        switch: ``"criterion"`` (default, the paper's rule), ``"never"`` (Intra-CBL only) or
            ``"always"`` (Eq. 13 from the first batch).
    """

    min_classes = 2
    max_classes = 2
    spec = {
        "formula": "stage 1: Intra-CBL; stage 2: alpha Intra-CBL + (1-alpha) Inter-CBL",
        "paper": "004 Eq. 13 + two-stage rule",
        "reduction": "as intra_cbl (batch) and inter_cbl (per image)",
        "background": "binary only (C=2)",
        "smoothing": "none",
        "notes": "switch when >half of images: f-th best fg and bg prob > t (sticky buffer `stage`)",
    }

    def __init__(self, alpha: float = 0.5, t: float = 0.9, switch: str = "criterion") -> None:
        super().__init__()
        self.alpha = check_number("alpha", alpha, 0.0, 1.0)
        self.t = check_number("t", t, 0.0, 1.0)
        self.switch = check_choice("switch", switch, ["criterion", "never", "always"])
        self.register_buffer("stage", torch.tensor(2 if switch == "always" else 1))

    def reset_stage(self) -> None:
        """Go back to stage 1 (unless ``switch="always"``)."""
        self.stage.fill_(2 if self.switch == "always" else 1)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if (
            self.switch == "criterion"
            and self.training
            and int(self.stage) == 1
            and switch_criterion(logits, target, self.t)
        ):
            self.stage.fill_(2)
        intra = intra_cbl(logits, target, self.t, True)
        if int(self.stage) == 1:
            return intra
        return self.alpha * intra + (1.0 - self.alpha) * inter_cbl(logits, target)
