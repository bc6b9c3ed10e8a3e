"""Baselines against MONAI (where an option set matches) and hand-worked values.

Conventions compared:
* focal: ours is the mean over pixels; MONAI ``FocalLoss(use_softmax=True, to_onehot_y=True)``
  with ``reduction="mean"`` also averages over the class axis, so ours = MONAI * C. Scalar alpha:
  (1 - alpha) for class 0, alpha for the others in both.
* tversky: MONAI's ``alpha`` weights FP and ``beta`` FN, as ours; smoothing ``smooth_nr = smooth_dr``.
* generalized_dice: MONAI ``w_type="square"``, same infinite-weight rule.
"""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import FocalLoss as MonaiFocal
from monai.losses import GeneralizedDiceLoss as MonaiGDL
from monai.losses import TverskyLoss as MonaiTversky

from segbench.losses import build_loss
from segbench.losses import functional as Fn

from .conftest import make_inputs, monai_value


def _probs(logits: torch.Tensor, target: torch.Tensor):
    p = torch.softmax(logits, 1)
    return p, Fn.one_hot(target, logits.shape[1], p.dtype)


# --------------------------------------------------------------------------------- wce, focal


def test_wce_explicit_weights_hand() -> None:
    logits, target = make_inputs(c=3)
    w = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    ce = -torch.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    expected = (w[target] * ce).sum() / w[target].sum()
    got = build_loss("wce", weights=[0.2, 1.0, 3.0])(logits, target)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


def test_wce_inverse_frequency_hand() -> None:
    # 8 pixels: 6 of class 0, 2 of class 1, class 2 absent -> w = (8/(2*6), 8/(2*2), 0)
    target = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1]]).view(1, 8)
    logits, _ = make_inputs(b=1, c=3, spatial=(8,))
    w = torch.tensor([8 / 12, 8 / 4, 0.0], dtype=torch.float64)
    assert torch.allclose(Fn.inverse_frequency_weights(target, 3), w)
    ce = -torch.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    expected = (w[target] * ce).sum() / w[target].sum()
    got = build_loss("wce")(logits, target)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    # equal class weight on average: each present class gets half of the total weight
    assert (w[target][target == 0]).sum().item() == pytest.approx(
        (w[target][target == 1]).sum().item()
    )


def test_focal_hand_and_gamma_zero_is_ce() -> None:
    logits = torch.tensor([[[0.0], [math.log(3.0)]]], dtype=torch.float64)  # p = (1/4, 3/4)
    target = torch.tensor([[0]])
    got = build_loss("focal", gamma=2.0)(logits, target)
    assert got.item() == pytest.approx(-((3 / 4) ** 2) * math.log(1 / 4), rel=1e-12)
    x, t = make_inputs()
    assert build_loss("focal", gamma=0.0)(x, t).item() == pytest.approx(
        build_loss("ce")(x, t).item(), rel=1e-12
    )


@pytest.mark.parametrize("alpha", [None, 0.25, [0.1, 0.5, 0.9]])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_matches_monai_times_c(alpha, gamma: float) -> None:
    logits, target = make_inputs(b=2, c=3, spatial=(4, 5))
    ours = build_loss("focal", gamma=gamma, alpha=alpha)(logits, target)
    ref = MonaiFocal(
        include_background=True, to_onehot_y=True, gamma=gamma, alpha=alpha, use_softmax=True
    )(logits, target.unsqueeze(1))
    assert ours.item() == pytest.approx(3 * ref.item(), rel=1e-6)  # MONAI computes in float32


# ---------------------------------------------------------------------------- region family


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.7), (0.5, 0.5), (0.8, 0.1)])
def test_tversky_matches_monai(batch: bool, alpha: float, beta: float) -> None:
    logits, target = make_inputs(b=2, c=3, spatial=(5, 4))
    ours = build_loss("tversky", alpha=alpha, beta=beta, smooth=1e-5, batch=batch)(logits, target)
    ref = monai_value(
        MonaiTversky,
        logits,
        target,
        1e-5,
        include_background=True,
        alpha=alpha,
        beta=beta,
        batch=batch,
    )
    assert ours.item() == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("batch", [True, False])
def test_generalized_dice_matches_monai(batch: bool) -> None:
    logits, target = make_inputs(b=2, c=4, spatial=(5, 4))
    target[0][target[0] == 3] = 0  # class 3 absent from image 0 (infinite weight rule per image)
    ours = build_loss("generalized_dice", batch=batch)(logits, target)
    ref = MonaiGDL(
        include_background=True, to_onehot_y=True, softmax=True, w_type="square", batch=batch
    )(logits, target.unsqueeze(1))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-9)


def test_tversky_half_half_is_dice_and_focal_tversky_hand() -> None:
    logits, target = make_inputs()
    assert build_loss("tversky", alpha=0.5, beta=0.5, smooth=0.0)(
        logits, target
    ).item() == pytest.approx(build_loss("dice", smooth=0.0)(logits, target).item(), rel=1e-12)
    p, y = _probs(logits, target)
    dims = (0, 2, 3)
    tp = (p * y).sum(dims)
    fp = (p * (1 - y)).sum(dims)
    fn = ((1 - p) * y).sum(dims)
    ti = tp / (tp + 0.3 * fp + 0.7 * fn)
    expected = ((1 - ti) ** 0.75).mean()
    got = build_loss("focal_tversky", smooth=0.0)(logits, target)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


def test_log_dice_hand() -> None:
    logits, target = make_inputs()
    p, y = _probs(logits, target)
    dims = (0, 2, 3)
    dice = 2 * (p * y).sum(dims) / (p.sum(dims) + y.sum(dims))
    got = build_loss("log_dice", smooth=0.0)(logits, target)
    assert got.item() == pytest.approx(-dice.log().mean().item(), rel=1e-12)


def test_dice_pp_hand_and_gamma_one_is_dice() -> None:
    logits, target = make_inputs()
    assert build_loss("dice_pp", gamma=1.0)(logits, target).item() == pytest.approx(
        build_loss("dice")(logits, target).item(), rel=1e-12
    )
    p, y = _probs(logits, target)
    dims = (0, 2, 3)
    i = (p * y).sum(dims)
    fp = ((p * (1 - y)) ** 2).sum(dims)
    fn = (((1 - p) * y) ** 2).sum(dims)
    expected = 1 - ((2 * i + 1e-5) / (2 * i + fp + fn + 1e-5)).mean()
    assert build_loss("dice_pp")(logits, target).item() == pytest.approx(expected.item(), rel=1e-12)


def test_dice_pp_gradient_paper_002_app_e_binary() -> None:
    """App. E, single-region Dice++ (smooth 0), FP^gamma / FN^gamma = sums of per-pixel powers:
    foreground pixel: dL/dp_i = -2[gamma (1-p_i)^(gamma-1) I + FP^gamma + FN^gamma] / den^2
    (as printed); background pixel: dL/dp_i = gamma p_i^(gamma-1) 2I / den^2. The printed
    background formula carries one more factor 2 (2 gamma p^(gamma-1) 2I), inconsistent with its
    own foreground formula; autograd agrees with the version without it."""
    gamma = 2.0
    g = torch.Generator().manual_seed(3)
    p = torch.rand(12, generator=g, dtype=torch.float64).requires_grad_(True)
    y = (torch.rand(12, generator=g) > 0.6).double()
    i = (p * y).sum()
    fp = ((p * (1 - y)) ** gamma).sum()
    fn = (((1 - p) * y) ** gamma).sum()
    loss = 1 - 2 * i / (2 * i + fp + fn)
    loss.backward()
    with torch.no_grad():
        den = 2 * i + fp + fn
        bg, fg = y == 0, y == 1
        expected_fg = -2 * (gamma * (1 - p[fg]) ** (gamma - 1) * i + fp + fn) / den**2
        expected_bg = gamma * p[bg] ** (gamma - 1) * 2 * i / den**2
    torch.testing.assert_close(p.grad[fg], expected_fg)
    torch.testing.assert_close(p.grad[bg], expected_bg)
    # and the library's dice_pp (binary, foreground only, batch sums) has the same gradient
    logits = torch.stack([torch.zeros(12, dtype=torch.float64), torch.logit(p.detach())]).view(
        1, 2, 12
    )
    probs = torch.softmax(logits, 1).detach().requires_grad_(True)
    onehot = Fn.one_hot(y.long().view(1, 12), 2, probs.dtype)
    tp, fpp, fnn = Fn.soft_counts(probs, onehot, power=gamma)
    (1 - Fn.dice_index(tp, fpp, fnn)[1]).backward()
    torch.testing.assert_close(probs.grad[0, 1], p.grad)


# -------------------------------------------------------------------------------- compound


def test_compound_sums() -> None:
    x, t = make_inputs()
    b = build_loss
    cases = [
        ("log_dice_ce", {"w_dice": 0.1, "w_ce": 1.0}, 0.1 * b("log_dice")(x, t) + b("ce")(x, t)),
        (
            "dice_focal",
            {"w_dice": 0.5, "w_focal": 2.0},
            0.5 * b("dice")(x, t) + 2 * b("focal")(x, t),
        ),
        (
            "log_dice_focal",
            {"gamma": 1.0, "alpha": 0.25},
            b("log_dice")(x, t) + b("focal", gamma=1.0, alpha=0.25)(x, t),
        ),
    ]
    for name, params, expected in cases:
        assert b(name, **params)(x, t).item() == pytest.approx(expected.item(), rel=1e-12), name


def test_combo_hand() -> None:
    x, t = make_inputs()
    p, y = _probs(x, t)
    dims = (0, 2, 3)
    dice = ((2 * (p * y).sum(dims) + 1e-5) / (p.sum(dims) + y.sum(dims) + 1e-5)).mean()
    mbce = -(0.7 * y * p.log() + 0.3 * (1 - y) * (1 - p).log()).mean()
    expected = 0.4 * mbce - 0.6 * dice
    got = build_loss("combo", alpha=0.4, beta=0.7)(x, t)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


def test_unified_focal_hand_binary() -> None:
    """Against a transcription of Yeung et al.'s reference (binary): per pixel
    background (1-delta)(1-p0)^gamma CE, foreground delta CE; Tversky terms 1-mTI_0 and
    (1-mTI_1)^(1-gamma), mTI = TP/(TP + delta FN + (1-delta) FP)."""
    x, t = make_inputs(c=2)
    lam, delta, gamma = 0.5, 0.6, 0.5
    p, y = _probs(x, t)
    ce = -(y * p.log())
    back = (1 - delta) * (1 - p[:, 0]) ** gamma * ce[:, 0]
    fore = delta * ce[:, 1]
    l_maf = (back + fore).mean()
    dims = (0, 2, 3)
    tp = (p * y).sum(dims)
    fn = (y * (1 - p)).sum(dims)
    fp = ((1 - y) * p).sum(dims)
    mti = tp / (tp + delta * fn + (1 - delta) * fp)
    l_maft = ((1 - mti[0]) + (1 - mti[1]) ** (1 - gamma)) / 2
    expected = lam * l_maf + (1 - lam) * l_maft
    got = build_loss("unified_focal", smooth=0.0)(x, t)
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


def test_ml1ace_hand() -> None:
    # one image, 1 x 4 pixels, binary; logits chosen so p1 = (0.05, 0.07, 0.55, 0.93)
    p1 = torch.tensor([0.05, 0.07, 0.55, 0.93], dtype=torch.float64)
    logits = torch.stack([torch.zeros(4, dtype=torch.float64), torch.log(p1 / (1 - p1))]).view(
        1, 2, 4
    )
    target = torch.tensor([[0, 1, 1, 1]])
    # bins = 10. class 1: bins {0: p .05,.07 y 0,1 -> |.06-.5| = .44}, {5: .55 vs 1 -> .45},
    # {9: .93 vs 1 -> .07}; ACE_1 = (.44+.45+.07)/3. class 0: p0 = (.95,.93,.45,.07), y0 = (1,0,0,0):
    # bin 9: |.94 - .5| = .44; bin 4: .45; bin 0: .07 -> same value.
    ace = (0.44 + 0.45 + 0.07) / 3
    loss = build_loss("ml1ace_dice", bins=10, w_dice=0.0)(logits, target)
    assert loss.item() == pytest.approx(ace, rel=1e-9)
    full = build_loss("ml1ace_dice", bins=10)(logits, target)
    assert full.item() == pytest.approx(ace + build_loss("dice")(logits, target).item(), rel=1e-9)
