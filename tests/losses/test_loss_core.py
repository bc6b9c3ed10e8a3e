"""Priority losses: ce, dice, dice_ce (hand-worked values and MONAI), ml and caml (paper 000).

Conventions compared (see docs/losses.md): Dice sums soft counts over the whole batch (paper 000,
Eq. 3), averages over all classes including background (Eq. 4), smoothing ``s`` in numerator and
denominator (MONAI ``smooth_nr = smooth_dr = s``, ``batch=True``, ``include_background=True``,
``softmax=True``, ``to_onehot_y=True``). CE is the mean over all pixels of the batch (Eq. 2).
"""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceCELoss as MonaiDiceCE
from monai.losses import DiceLoss as MonaiDice

from segbench.losses import build_loss
from segbench.losses import functional as Fn

from .conftest import make_inputs, monai_value


def test_ce_hand_worked() -> None:
    # one image, two pixels, two classes: logits (0, 0) and (log 3, 0) -> p_true = 1/2 and 3/4
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]]).view(1, 2, 2)
    target = torch.tensor([[1, 0]])
    expected = -(math.log(0.5) + math.log(0.75)) / 2
    assert build_loss("ce")(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_dice_hand_worked() -> None:
    # probabilities p1 = (1/2, 3/4) for class 1 on two pixels labelled (1, 0); smooth = 0
    logits = torch.tensor([[[0.0, 0.0], [0.0, math.log(3.0)]]])  # [B=1, C=2, W=2]
    target = torch.tensor([[1, 0]])
    # class 1: TP = 1/2, sum p = 5/4, sum y = 1 -> Dice = 1 / (9/4) = 4/9
    # class 0: p0 = (1/2, 1/4), y0 = (0, 1): TP = 1/4, sum p = 3/4, sum y = 1 -> Dice = (1/2)/(7/4) = 2/7
    expected = 1 - (4 / 9 + 2 / 7) / 2
    got = build_loss("dice", smooth=0.0)(logits, target)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_dice_batch_sum_differs_from_per_image_mean() -> None:
    logits, target = make_inputs(b=3, c=3)
    batch = build_loss("dice", smooth=0.0)(logits, target)
    image = build_loss("dice", smooth=0.0, batch=False)(logits, target)
    probs, onehot = Fn.probs_onehot(logits, target)
    per_image = [
        1 - Fn.dice_coefficient(probs[i : i + 1], onehot[i : i + 1]).mean() for i in range(3)
    ]
    assert image.item() == pytest.approx(torch.stack(per_image).mean().item(), rel=1e-10)
    assert batch.item() != pytest.approx(image.item(), rel=1e-6)


@pytest.mark.parametrize("smooth", [0.0, 1e-5, 1.0])
@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("include_background", [True, False])
def test_dice_matches_monai(smooth: float, batch: bool, include_background: bool) -> None:
    logits, target = make_inputs(b=2, c=4, spatial=(6, 5))
    ours = build_loss("dice", smooth=smooth, batch=batch, include_background=include_background)
    ref = monai_value(
        MonaiDice, logits, target, smooth, include_background=include_background, batch=batch
    )
    assert ours(logits, target).item() == pytest.approx(ref, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("w_dice", "w_ce"), [(1.0, 1.0), (0.7, 0.3), (0.0, 1.0)])
def test_dice_ce_matches_monai(w_dice: float, w_ce: float) -> None:
    logits, target = make_inputs(b=2, c=3, spatial=(4, 3, 5))  # 3D
    ours = build_loss("dice_ce", w_dice=w_dice, w_ce=w_ce, smooth=1e-5)
    ref = monai_value(
        MonaiDiceCE,
        logits,
        target,
        1e-5,
        include_background=True,
        batch=True,
        lambda_dice=w_dice,
        lambda_ce=w_ce,
    )
    assert ours(logits, target).item() == pytest.approx(ref, rel=1e-9)


def test_dice_ce_is_weighted_sum() -> None:
    logits, target = make_inputs()
    total = build_loss("dice_ce", w_dice=0.7, w_ce=0.3)(logits, target)
    parts = 0.7 * build_loss("dice")(logits, target) + 0.3 * build_loss("ce")(logits, target)
    assert total.item() == pytest.approx(parts.item(), rel=1e-12)


# ----------------------------------------------------------------------------- paper 000: ML


def _dice_loss_grad(probs: torch.Tensor, onehot: torch.Tensor, smooth: float) -> torch.Tensor:
    """Closed-form d L_Dice / d p_{i,c} for the batch Dice of Eq. 3-4 with smoothing s.

    Dice_c = (2A + s)/(S + s), A = sum y p, S = sum p + sum y:
    d Dice_c / d p_j = (2 y_j (S + s) - (2A + s)) / (S + s)^2 and L_Dice = 1 - mean_c Dice_c.
    """
    dims = (0, *range(2, probs.ndim))
    shape = (1, -1) + (1,) * (probs.ndim - 2)
    a = (probs * onehot).sum(dims).view(shape)
    s_tot = (probs.sum(dims) + onehot.sum(dims)).view(shape)
    c = probs.shape[1]
    return -(2 * onehot * (s_tot + smooth) - (2 * a + smooth)) / (s_tot + smooth) ** 2 / c


def test_ml_value_is_product() -> None:
    logits, target = make_inputs()
    ml = build_loss("ml")(logits, target)
    assert ml.item() == pytest.approx(
        (build_loss("dice")(logits, target) * build_loss("ce")(logits, target)).item(), rel=1e-12
    )


def test_ml_gradient_eq6_product_rule_wrt_probabilities() -> None:
    """Eq. 6: dL_ML/dp = L_Dice dL_CE/dp + L_CE dL_Dice/dp (closed forms written out here)."""
    logits, target = make_inputs(b=2, c=3, spatial=(4, 3))
    s = 1e-5
    probs = torch.softmax(logits, 1).detach().requires_grad_(True)
    onehot = Fn.one_hot(target, 3, probs.dtype)
    n = target.numel()
    tp, fp, fn = Fn.soft_counts(probs, onehot)
    l_dice = 1 - Fn.dice_index(tp, fp, fn, s).mean()
    l_ce = -(onehot * probs.log()).sum() / n
    (l_dice * l_ce).backward()
    with torch.no_grad():
        d_ce = -onehot / (n * probs)
        expected = l_dice * d_ce + l_ce * _dice_loss_grad(probs, onehot, s)
    torch.testing.assert_close(probs.grad, expected, rtol=1e-10, atol=1e-12)


def test_ml_gradient_eq7_printed_dice_term_exact_where_y_is_zero() -> None:
    """Eq. 7 as printed writes 2(y sum p - sum py)/(sum p + sum y)^2: it omits the y_{ic} sum y
    term, so it is exact (smooth = 0) exactly at the entries with y_{i,c} = 0, which we check."""
    logits, target = make_inputs()
    probs = torch.softmax(logits, 1)
    onehot = Fn.one_hot(target, 3, probs.dtype)
    dims = (0, 2, 3)
    sp = probs.sum(dims).view(1, -1, 1, 1)
    sy = onehot.sum(dims).view(1, -1, 1, 1)
    spy = (probs * onehot).sum(dims).view(1, -1, 1, 1)
    printed = -(1 / 3) * 2 * (onehot * sp - spy) / (sp + sy) ** 2
    exact = _dice_loss_grad(probs, onehot, 0.0)
    zero = onehot == 0
    torch.testing.assert_close(printed[zero], exact[zero])
    assert not torch.allclose(printed[~zero], exact[~zero])


def test_ml_gradient_at_logit_level_eq7_ce_term() -> None:
    """Eq. 7's CE factor (p - y) is the logit gradient of the per-pixel CE: at the logits,
    dL_ML/dz = L_Dice (p - y)/N + L_CE * J_softmax^T dL_Dice/dp."""
    logits, target = make_inputs()
    z = logits.clone().requires_grad_(True)
    build_loss("ml", smooth=1e-5)(z, target).backward()
    with torch.no_grad():
        p = torch.softmax(logits, 1)
        y = Fn.one_hot(target, 3, p.dtype)
        n = target.numel()
        l_dice = build_loss("dice")(logits, target)
        l_ce = build_loss("ce")(logits, target)
        g = _dice_loss_grad(p, y, 1e-5)
        jt_g = p * (g - (p * g).sum(1, keepdim=True))  # softmax Jacobian (symmetric) times g
        expected = l_dice * (p - y) / n + l_ce * jt_g
    torch.testing.assert_close(z.grad, expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------- paper 000: CAML


def _caml_parts(probs: torch.Tensor, onehot: torch.Tensor, smooth: float):
    n = onehot[:, 0].numel()
    tp, fp, fn = Fn.soft_counts(probs, onehot)
    dice = Fn.dice_index(tp, fp, fn, smooth).mean()
    ce_pixel = -(onehot * probs.log()).sum(1)
    return n, 1 - dice, dice, ce_pixel


def test_caml_value_hand_computed() -> None:
    logits, target = make_inputs()
    got = build_loss("caml")(logits, target)
    p_true = torch.softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    l_ce = -p_true.log().mean()
    l_dice = build_loss("dice")(logits, target)
    alpha = (1 - p_true.mean()) ** (1 - l_dice)
    assert got.item() == pytest.approx((l_dice * l_ce**alpha).item(), rel=1e-12)


def test_caml_gradient_matches_eq14_eq15() -> None:
    """Erratum Eq. 14-15 at the probabilities, reading p_bar = (1/N) sum_i p_{i,y_i} (so
    d p_bar / d p_{i,c} = y_{i,c}/N, Eq. 15's 1/N on the true class) and D detached."""
    logits, target = make_inputs(b=2, c=3, spatial=(4, 3), scale=2.0)
    s = 1e-5
    probs = torch.softmax(logits, 1).detach().requires_grad_(True)
    onehot = Fn.one_hot(target, 3, probs.dtype)
    n, l_dice, d, ce_pixel = _caml_parts(probs, onehot, s)
    Fn.caml_combine(l_dice, ce_pixel, d, "batch").backward()
    with torch.no_grad():
        l_ce = ce_pixel.mean()
        p_bar = (probs * onehot).sum(1).mean()
        alpha = (1 - p_bar) ** d
        d_alpha = -d * (1 - p_bar) ** (d - 1) * onehot / n  # Eq. 15 (times y_{i,c})
        d_ce = -onehot / (n * probs)
        d_dice = _dice_loss_grad(probs, onehot, s)
        eq14 = l_ce**alpha * (d_dice + l_dice * (d_alpha * l_ce.log() + alpha / l_ce * d_ce))
    torch.testing.assert_close(probs.grad, eq14, rtol=1e-9, atol=1e-12)


def test_caml_pixel_gradient_matches_eq11_eq12() -> None:
    """Original Eq. 10-12 per pixel: L = L_Dice * mean_i CE_i^{alpha_i}, alpha_i = (1 - p_i)^D."""
    logits, target = make_inputs(b=1, c=3, spatial=(4, 4), scale=2.0)
    probs = torch.softmax(logits, 1).detach().requires_grad_(True)
    onehot = Fn.one_hot(target, 3, probs.dtype)
    n, l_dice, d, ce_pixel = _caml_parts(probs, onehot, 1e-5)
    Fn.caml_combine(l_dice, ce_pixel, d, "pixel").backward()
    with torch.no_grad():
        p = (probs * onehot).sum(1, keepdim=True)
        ce_i = -p.log()
        a = (1 - p) ** d
        term = (ce_i**a).mean()
        d_alpha = -d * (1 - p) ** (d - 1) * onehot  # Eq. 12
        d_ce_i = -onehot / p
        d_term = ce_i**a * (d_alpha * ce_i.log() + a / ce_i * d_ce_i) / n
        expected = term * _dice_loss_grad(probs, onehot, 1e-5) + l_dice * d_term
    torch.testing.assert_close(probs.grad, expected, rtol=1e-9, atol=1e-12)


def test_caml_literal_erratum_reading_is_constant() -> None:
    """Why p_bar is not the mean over pixels AND classes: that mean is exactly 1/C."""
    logits, _ = make_inputs(c=5, scale=3.0)
    assert torch.softmax(logits, 1).mean().item() == pytest.approx(1 / 5, rel=1e-12)


def test_caml_r_ablation_and_detached_d() -> None:
    logits, target = make_inputs()
    p_true = torch.softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    l_ce = -p_true.log().mean()
    l_dice = build_loss("dice")(logits, target)
    got = build_loss("caml", r=3)(logits, target)
    assert got.item() == pytest.approx(
        (l_dice * l_ce ** ((1 - p_true.mean()) ** 3)).item(), rel=1e-12
    )
    # D detached: the gradient equals the one with D replaced by the constant value of D
    z1 = logits.clone().requires_grad_(True)
    build_loss("caml")(z1, target).backward()
    z2 = logits.clone().requires_grad_(True)
    build_loss("caml", r=float(1 - l_dice))(z2, target).backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-10, atol=1e-14)


def test_caml_equals_ml_when_alpha_is_one() -> None:
    # alpha = (1 - p_bar)^r -> 1 as r -> 0+: CAML tends to ML
    logits, target = make_inputs()
    ml = build_loss("ml")(logits, target)
    caml = build_loss("caml", r=1e-9)(logits, target)
    assert caml.item() == pytest.approx(ml.item(), rel=1e-6)
