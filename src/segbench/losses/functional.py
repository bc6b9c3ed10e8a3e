"""Pure tensor functions for the loss library (no configuration, no modules).

Every formula of the four studies is built from the few functions here, so that smoothing,
float32 casting and ``EPS`` are handled exactly once:

* :func:`to_float` / :func:`probs_onehot` / :func:`logp_probs_onehot` -- cast to float32 (float64
  is kept, for ``gradcheck``), (log-)softmax over the class dimension, one-hot target in the same
  layout ``[B, C, *spatial]``.
* :func:`soft_counts` -- the single soft TP / FP / FN core used by Dice, log-Dice, Tversky,
  focal Tversky, generalised Dice, Dice++ and every compound loss containing them.
* :func:`tversky_index` -- ``(TP + s) / (TP + a FP + b FN + s)``; :func:`dice_index` --
  ``(2TP + s) / (2TP + FP + FN + s)`` (the Tversky index with ``a = b = 1/2`` when ``s = 0``).
* :func:`pixel_ce` / :func:`pixel_focal` / :func:`focal_term` -- per-pixel CE and focal terms.
* :func:`caml_combine`, :func:`region_proportions`, :func:`binned_calibration_error` -- the
  pieces specific to papers 000, 003 and the mL1-ACE baseline.

Conventions (written once, used everywhere; see docs/losses.md):

* Reduction "batch" means the soft counts are summed over the batch and all spatial positions
  (paper 000, Eq. 3: ``i`` runs over all N pixels of the batch) before the ratio is taken;
  "image" means one ratio per image, then the mean over images.
* ``smooth`` is added to the numerator and the denominator of every overlap ratio (MONAI's
  ``smooth_nr = smooth_dr``); the denominator is additionally clamped to ``EPS`` so that
  ``smooth = 0`` (the papers' exact formulas) never divides by zero.
* Background (class 0) is included in class means unless ``include_background=False``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

EPS: float = 1e-7
"""The one small constant of the package: clamps denominators, logs and powers away from 0."""


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Cast to float32, keeping float64 (used by ``gradcheck``) as it is."""
    return x if x.dtype == torch.float64 else x.float()


def reduce_dims(ndim: int, batch: bool) -> tuple[int, ...]:
    """Dimensions of a ``[B, C, *spatial]`` tensor summed by a soft count.

    Args:
        ndim: number of dimensions of the tensor (>= 3).
        batch: True sums over the batch too (one count per class); False keeps ``B``.
    """
    spatial = tuple(range(2, ndim))
    return (0, *spatial) if batch else spatial


def one_hot(target: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot ``[B, *spatial]`` class indices to ``[B, C, *spatial]`` of ``dtype``.

    Written with one ``scatter_`` into a zero tensor of the final layout and dtype (``F.one_hot``
    builds int64 channels-last and needs two more copies).

    Raises:
        RuntimeError: from ``scatter_`` when a class index is outside ``[0, num_classes)``.
    """
    shape = (target.shape[0], num_classes, *target.shape[1:])
    out = torch.zeros(shape, dtype=dtype, device=target.device)
    return out.scatter_(1, target.unsqueeze(1), 1.0)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` over the class axis in float32 (float64 kept)."""
    return torch.log_softmax(to_float(logits), dim=1)


def probs_onehot(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and the one-hot target, both float32 (or float64), ``[B, C, *sp]``."""
    x = to_float(logits)
    return torch.softmax(x, dim=1), one_hot(target, x.shape[1], x.dtype)


def logp_probs_onehot(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(log p, p, one-hot)`` from ONE ``log_softmax``, for losses with a pixel and a region term."""
    logp = log_softmax(logits)
    return logp, logp.exp(), one_hot(target, logp.shape[1], logp.dtype)


def soft_counts(
    probs: torch.Tensor, onehot: torch.Tensor, batch: bool = True, power: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft true positives, false positives and false negatives per class.

    ``TP_c = sum p y``, ``FP_c = sum (p (1 - y))^power``, ``FN_c = sum ((1 - p) y)^power``
    (``power = 1`` is the ordinary soft count; ``power = gamma`` gives Dice++, paper 002 App. E).

    Args:
        probs: ``[B, C, *spatial]`` probabilities.
        onehot: ``[B, C, *spatial]`` one-hot target.
        batch: sum over the batch as well (shape ``[C]``) or per image (shape ``[B, C]``).
        power: exponent applied to each pixel's FP / FN contribution before summing.

    Returns:
        ``(tp, fp, fn)``, each ``[C]`` (batch) or ``[B, C]`` (per image).
    """
    dims = reduce_dims(probs.ndim, batch)
    inter = probs * onehot
    tp = inter.sum(dims)
    if power == 1.0:
        fp = probs.sum(dims) - tp
        fn = onehot.sum(dims) - tp
    else:
        # p (1 - y) = p - p y and (1 - p) y = y - p y are exactly >= 0 for a one-hot y
        fp = (probs - inter).pow(power).sum(dims)
        fn = (onehot - inter).pow(power).sum(dims)
    return tp, fp, fn


def tversky_index(
    tp: torch.Tensor,
    fp: torch.Tensor,
    fn: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 0.0,
) -> torch.Tensor:
    """Tversky index ``(TP + s) / (TP + alpha FP + beta FN + s)``, denominator clamped to ``EPS``."""
    den = tp + alpha * fp + beta * fn + smooth
    return (tp + smooth) / den.clamp_min(EPS)


def dice_index(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, smooth: float = 0.0
) -> torch.Tensor:
    """Dice ``(2 TP + s) / (2 TP + FP + FN + s)`` (paper 000, Eq. 3, plus smoothing).

    Equal to the Tversky index with ``alpha = beta = 1/2`` when ``s = 0``; the smoothing is
    written on the ``2 TP`` scale so that it equals MONAI's ``smooth_nr = smooth_dr = s``.
    """
    den = 2.0 * tp + fp + fn + smooth
    return (2.0 * tp + smooth) / den.clamp_min(EPS)


def dice_coefficient(
    probs: torch.Tensor, onehot: torch.Tensor, smooth: float = 0.0, batch: bool = True
) -> torch.Tensor:
    """Soft Dice per class (paper 000, Eq. 3): ``[C]`` (batch) or ``[B, C]`` (per image)."""
    tp, fp, fn = soft_counts(probs, onehot, batch)
    return dice_index(tp, fp, fn, smooth)


def class_mean(per_class: torch.Tensor, include_background: bool = True) -> torch.Tensor:
    """Mean over the class axis (last) and then over everything else, optionally without class 0."""
    if not include_background:
        per_class = per_class[..., 1:]
    return per_class.mean()


def neg_log_dice(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, smooth: float = 0.0
) -> torch.Tensor:
    """Per-class ``-log Dice_c = log(2TP + FP + FN + s) - log(2TP + s)`` (paper 003, Eq. 2).

    The logarithm of the numerator and of the denominator are taken separately, each argument
    clamped at ``EPS``; with ``s >= EPS`` (the default ``1e-5``) neither clamp can act, so the
    value and gradient are the literal formula. (The former clamp of the RATIO at ``EPS`` gave
    a constant ``-log EPS ~ 16.1`` with zero gradient whenever ``Dice_c < EPS``.)
    """
    num = (2.0 * tp + smooth).clamp_min(EPS)
    den = (2.0 * tp + fp + fn + smooth).clamp_min(EPS)
    return den.log() - num.log()


def log_dice_loss(
    tp: torch.Tensor,
    fp: torch.Tensor,
    fn: torch.Tensor,
    smooth: float = 0.0,
    include_background: bool = True,
) -> torch.Tensor:
    """Log-Dice loss with absent classes MASKED (paper 003, Eq. 2; smp ``DiceLoss(log_loss=True)``).

    ``L = (1/C') sum_{c present} -log Dice_c`` per reduction unit (the batch for ``[C]`` counts,
    each image for ``[B, C]`` counts, then the mean over images), where a class is *present* when
    it has ground-truth pixels in the unit (``TP_c + FN_c > 0``) and ``C'`` is the number of
    classes averaged (C, or C - 1 without background), present or not.

    Reading: Eq. 2 (and Table 1's ``Dice_k``) is only defined for ``|Omega_k| > 0`` (its DF term
    has ``1/|Omega_k|``; ``Dice_k = 0`` for every prediction when ``Omega_k`` is empty), so an
    absent class contributes 0 to the value and its own term contributes no gradient (its
    predicted mass is still penalised through the TP of the present classes). Dividing by the
    fixed ``C'`` rather than by the number of present classes keeps Eq. 2's "up to a
    multiplicative constant" a constant, and is segmentation_models_pytorch's rule (the library
    of paper 003's networks): ``loss *= (y.sum(dims) > 0)``, then the mean over classes. When
    every class is present this is ``-mean_c log Dice_c`` exactly.
    """
    terms = neg_log_dice(tp, fp, fn, smooth)
    present = (tp + fn).detach() > 0
    terms = torch.where(present, terms, torch.zeros_like(terms))
    return class_mean(terms, include_background)


def pixel_ce(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pixel cross-entropy ``-w_y log p_y`` of float logits, shape ``[B, *spatial]``."""
    return F.cross_entropy(to_float(logits), target, weight=weight, reduction="none")


def true_class(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``x[b, y_b(s), s]``: the true-class entry of a ``[B, C, *spatial]`` tensor, ``[B, *spatial]``."""
    return x.gather(1, target.unsqueeze(1)).squeeze(1)


def focal_term(
    logp_true: torch.Tensor, gamma: float, alpha_true: torch.Tensor | None = None
) -> torch.Tensor:
    """Focal term ``-a (1 - p)^gamma log p`` from the true-class log-probability (Lin et al. 2017).

    ``1 - p`` is clamped at 0 so that ``gamma < 1`` has a finite value.
    """
    loss = -logp_true
    if gamma != 0:
        loss = loss * (1.0 - logp_true.exp()).clamp_min(0.0).pow(gamma)
    if alpha_true is not None:
        loss = loss * alpha_true
    return loss


def pixel_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float,
    class_alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-pixel focal loss ``-a_y (1 - p_y)^gamma log p_y``, ``[B, *spatial]``."""
    logp = true_class(log_softmax(logits), target)
    alpha = None if class_alpha is None else class_alpha.to(logp.dtype)[target]
    return focal_term(logp, gamma, alpha)


def inverse_frequency_weights(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class weights ``w_c = N / (K n_c)`` from the counts ``n_c`` of the batch (0 for absent classes).

    ``N`` is the number of pixels and ``K`` the number of classes present, so that the pixel-average
    weight is 1. Computed from the target only, so it carries no gradient.
    """
    flat = target.reshape(-1)
    counts = torch.zeros(num_classes, dtype=torch.float64, device=target.device).index_add(
        0, flat, torch.ones(flat.shape, dtype=torch.float64, device=target.device)
    )  # index_add: deterministic on CUDA (bincount is not)
    present = counts > 0
    k = present.sum().clamp_min(1)
    w = torch.where(present, counts.sum() / (k * counts.clamp_min(1)), torch.zeros_like(counts))
    return w


def class_sum_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Paper 003 Table 1 weighted CE: per image ``sum_{k present} mean_{i in Omega_k} CE_i``, mean over images.

    A class absent from an image (``|Omega_k| = 0``) contributes 0 to that image.
    """
    ce = pixel_ce(logits, target)  # [B, *spatial]
    onehot = one_hot(target, logits.shape[1], ce.dtype)
    dims = reduce_dims(onehot.ndim, batch=False)
    per_class = (onehot * ce.unsqueeze(1)).sum(dims)  # [B, C]
    n = onehot.sum(dims)
    return (per_class / n.clamp_min(1.0)).sum(-1).mean()


def as_class_vector(
    values: Sequence[float] | torch.Tensor, num_classes: int, name: str, like: torch.Tensor
) -> torch.Tensor:
    """A per-class parameter as a tensor on ``like``'s device/dtype, with a length check.

    Raises:
        ValueError: when the length differs from the number of classes of the logits.
    """
    t = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    if t.numel() != num_classes:
        raise ValueError(
            f"{name} has {t.numel()} entries but the logits have {num_classes} classes; "
            f"give one value per class"
        )
    return t


def caml_combine(
    dice_loss: torch.Tensor,
    ce_pixel: torch.Tensor,
    dice_coef: torch.Tensor,
    confidence: str = "batch",
    r: float | None = None,
) -> torch.Tensor:
    """Confidence-adaptive multiplicative loss from its parts (paper 000, Eq. 10 and Eq. 13).

    ``p`` is the true-class probability ``p_i = exp(-CE_i)``.

    * ``confidence="batch"`` (erratum, Eq. 13): ``L = L_Dice * L_CE^alpha``,
      ``alpha = (1 - p_bar)^D``, ``p_bar = (1/N) sum_i p_i`` (differentiated: gradient Eq. 15, with
      ``d p_bar / d p_{i,c} = y_{i,c} / N``), ``L_CE = (1/N) sum_i CE_i``.
    * ``confidence="pixel"`` (original Eq. 10): ``L = L_Dice * (1/N) sum_i CE_i^alpha_i``,
      ``alpha_i = (1 - p_i)^D`` (differentiated: Eq. 12).

    ``D`` is the mean Dice coefficient ``1 - L_Dice``, DETACHED (Eq. 11 / 14 contain no
    ``dD/dp`` term), or the constant ``r`` (Table 4 ablation) when given. ``1 - p`` and ``L_CE``
    are clamped at ``EPS`` so that ``0^0`` and ``log 0`` never occur.

    Args:
        dice_loss: scalar ``L_Dice`` (Eq. 4).
        ce_pixel: ``[B, *spatial]`` per-pixel ``-log p_{i, y_i}``.
        dice_coef: scalar ``D`` (detached here).
        confidence: ``"batch"`` or ``"pixel"``.
        r: constant exponent replacing ``D``, or None.
    """
    d = dice_coef.detach() if r is None else r
    p_true = torch.exp(-ce_pixel)
    if confidence == "batch":
        alpha = (1.0 - p_true.mean()).clamp_min(EPS).pow(d)
        return dice_loss * ce_pixel.mean().clamp_min(EPS).pow(alpha)
    alpha_i = (1.0 - p_true).clamp_min(EPS).pow(d)
    return dice_loss * ce_pixel.clamp_min(EPS).pow(alpha_i).mean()


def log_one_minus(probs: torch.Tensor) -> torch.Tensor:
    """``log(1 - p)`` with ``1 - p`` clamped at ``EPS`` (finite for saturated probabilities)."""
    return torch.log((1.0 - probs).clamp_min(EPS))


def region_proportions(
    logits: torch.Tensor, onehot: torch.Tensor, tau: float = 1.0, batch: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and ground-truth region proportions ``(p_hat_k, y_hat_k)`` (paper 003, Table 1).

    ``p_hat_k = (1/|Omega|) sum_i s(tau z_i)_k`` with the temperature softmax of paper 003 App. C
    (Eq. C.1; ``tau = 1`` is the ordinary softmax), ``y_hat_k = |Omega_k| / |Omega|``.

    Returns:
        two tensors ``[B, C]`` (per image, ``batch=False``) or ``[1, C]`` (whole batch).
    """
    p = torch.softmax(tau * logits, dim=1)
    dims = reduce_dims(p.ndim, batch)
    p_hat = p.mean(dims)
    y_hat = onehot.mean(dims)
    if batch:
        p_hat, y_hat = p_hat.unsqueeze(0), y_hat.unsqueeze(0)
    return p_hat, y_hat


def calibration_bin(p: torch.Tensor, bins: int) -> torch.Tensor:
    """Index of the equal-width bin of each probability, as Barfoot et al.'s reference code.

    ``cai4cai/ACE-DLIRIS``, ``hard_binned_calibration``: ``torch.bucketize(p, e[1:], right=False)``
    with ``e = linspace(0, 1 + eps32, bins + 1)``, i.e. bin ``k`` is ``(e_k, e_{k+1}]`` (closed on
    the RIGHT; ``p = 0`` goes to bin 0, ``p = 1`` to the last). So ``p = k / bins`` exactly
    (e.g. the ``p = 0.5`` of equal binary logits) falls in bin ``k - 1``.
    """
    edges = torch.linspace(
        0.0, 1.0 + torch.finfo(torch.float32).eps, bins + 1, dtype=p.dtype, device=p.device
    )
    return torch.bucketize(p.contiguous(), edges[1:], right=False).clamp_(0, bins - 1)


def binned_calibration_error(
    probs: torch.Tensor, onehot: torch.Tensor, bins: int, batch: bool = True
) -> torch.Tensor:
    """Marginal L1 average calibration error (mL1-ACE, Barfoot et al. 2024, Eq. 1-2).

    For each class the probabilities ``p_{i,c}`` are put into ``bins`` equal-width bins on
    [0, 1] (:func:`calibration_bin`, assignment detached); ACE_c is the mean over NON-EMPTY bins
    of ``|mean p - mean y|`` in the bin; the result is the mean over classes (and images).
    ``batch=False`` is the reference code's reduction (one ACE per image and class, then the
    mean: ``nanmean`` over bins, ``mean`` over batch and channels); ``batch=True`` pools the
    pixels of the whole batch into the bins. Differentiable through the bin means of ``p``:
    ``d ACE_c / d p_i = sign(mean p - mean y) / (n_bin * n_nonempty)`` for the pixel's bin.

    Returns:
        ``[C]`` (batch) or ``[B, C]`` (per image) ACE values.
    """
    b, c = probs.shape[:2]
    p = probs.reshape(b, c, -1)
    y = onehot.reshape(b, c, -1)
    idx = calibration_bin(p.detach(), bins)
    groups = c if batch else b * c
    base = torch.arange(c, device=p.device).view(1, c, 1) * bins
    if not batch:
        base = base + torch.arange(b, device=p.device).view(b, 1, 1) * (c * bins)
    key = (base + idx).reshape(-1)
    n = groups * bins
    sum_p = torch.zeros(n, dtype=p.dtype, device=p.device).index_add(0, key, p.reshape(-1))
    # index_add rather than bincount: deterministic on CUDA under use_deterministic_algorithms
    sum_y = torch.zeros(n, dtype=p.dtype, device=p.device).index_add(0, key, y.reshape(-1))
    cnt = torch.zeros(n, dtype=p.dtype, device=p.device).index_add(
        0, key, torch.ones(key.shape, dtype=p.dtype, device=p.device)
    )
    gap = (sum_p - sum_y).abs() / cnt.clamp_min(1.0)
    gap, cnt = gap.view(groups, bins), cnt.view(groups, bins)
    ace = gap.sum(-1) / (cnt > 0).sum(-1).clamp_min(1)
    return ace if batch else ace.view(b, c)
