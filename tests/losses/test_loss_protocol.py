"""Issue #15 (paper-faithful protocols), loss part: log-Dice at absent classes, WCE normalisations,
mL1-ACE against Barfoot et al.'s reference, ``surgery_on`` of ``dice_ce_surgery`` and the per-image
Dice reduction of paper 003.

Conventions compared (each test states its own):
* log-Dice: ``-(1/C) sum_{c present} log((2TP_c + s) / (2TP_c + FP_c + FN_c + s))`` with a class
  *present* when it has ground truth in the reduction unit (segmentation_models_pytorch's
  ``DiceLoss(mode="multiclass", log_loss=True)`` rule: ``loss *= y.sum(dims) > 0``, mean over C);
* mL1-ACE: cai4cai/ACE-DLIRIS ``hard_binned_calibration`` (``bucketize`` on
  ``linspace(0, 1 + eps32, M + 1)[1:]``, ``right=False``; ``nanmean`` over bins; mean over batch
  and classes), re-implemented here with explicit loops;
* WCE: paper 003 Table 1 (l. 253), paper 004 Eq. 1 (l. 64), PyTorch ``weight=``.
"""

from __future__ import annotations

import pytest
import torch

from segbench.losses import build_loss
from segbench.losses import functional as Fn

from .conftest import make_inputs

S = 1e-5  # the library's default smooth


def _grad(loss: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    z = logits.clone().requires_grad_(True)
    loss(z, target).backward()
    return z.grad


def _hand_log_dice(
    logits: torch.Tensor, target: torch.Tensor, smooth: float, batch: bool, bg: bool
) -> torch.Tensor:
    """Independent formula: -(1/C') sum over PRESENT classes of -log Dice, per unit, mean."""
    p = torch.softmax(logits, 1)
    c = logits.shape[1]
    y = torch.nn.functional.one_hot(target, c).movedim(-1, 1).to(p.dtype)
    units = [slice(None)] if batch else [slice(b, b + 1) for b in range(p.shape[0])]
    classes = range(c) if bg else range(1, c)
    total = []
    for u in units:
        acc = torch.zeros((), dtype=p.dtype)
        for k in classes:
            pk, yk = p[u, k], y[u, k]
            if yk.sum() == 0:
                continue
            dice = (2 * (pk * yk).sum() + smooth) / (pk.sum() + yk.sum() + smooth)
            acc = acc - torch.log(dice)
        total.append(acc / len(classes))
    return torch.stack(total).mean()


def _absent_class_inputs(
    seed: int = 0, absent_logit: float = 3.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 12x12 images, 3 classes; class 2 is absent from both targets but gets mass
    ``softmax(absent_logit)`` everywhere (3.0: about 0.9 x 288 pixels, so the old
    ``Dice_2 = s / (P + s)`` fell below EPS; -8: P about 0.1, the old literal branch)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 12, 12, generator=g, dtype=torch.float64)
    logits[:, 2] += absent_logit
    target = torch.randint(0, 2, (2, 12, 12), generator=g)
    target[0, 0, 0], target[0, 0, 1] = 0, 1
    return logits, target


# ------------------------------------------------------------------ log-Dice: absent classes


@pytest.mark.parametrize("absent_logit", [3.0, -8.0])
@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("bg", [True, False])
def test_log_dice_absent_class_is_masked_value_and_gradient(absent_logit, batch, bg) -> None:
    logits, target = _absent_class_inputs(absent_logit=absent_logit)
    loss = build_loss("log_dice", batch=batch, include_background=bg)
    z = logits.clone().requires_grad_(True)
    expected = _hand_log_dice(z, target, S, batch, bg)
    (g_ref,) = torch.autograd.grad(expected, z)
    got = loss(logits, target)
    # old code: + (-log EPS) / C' ~ 16.1 / C' (absent_logit 3) or + log((P + s)/s) / C' (-8)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    torch.testing.assert_close(_grad(loss, logits, target), g_ref, rtol=1e-10, atol=1e-13)


def test_log_dice_absent_class_contributes_nothing_of_its_own() -> None:
    # the masked class's own term has zero gradient: moving mass between two absent-class
    # logits leaves the loss unchanged (the old literal branch pushed them apart)
    logits, target = _absent_class_inputs(absent_logit=-8.0)
    logits = torch.cat([logits, logits[:, 2:3] - 1.0], 1)  # 4 classes, 2 and 3 absent
    loss = build_loss("log_dice")
    g = _grad(loss, logits, target)
    p = torch.softmax(logits, 1)
    # with classes 2, 3 both absent the loss depends on (z2, z3) only through p0 + p1 = 1 - p2 - p3,
    # so g2 / p2 == g3 / p3 pixel-wise
    torch.testing.assert_close(g[:, 2] / p[:, 2], g[:, 3] / p[:, 3], rtol=1e-9, atol=1e-12)
    # and the value does not depend on class 3 vs 2 sharing of the mass
    shifted = logits.clone()
    shifted[:, 3] = torch.logsumexp(logits[:, 2:4], 1)
    shifted[:, 2] = -1e4
    assert loss(shifted, target).item() == pytest.approx(loss(logits, target).item(), rel=1e-12)


@pytest.mark.parametrize("bg", [True, False])
def test_log_dice_matches_smp_log_loss_with_an_absent_class(bg: bool) -> None:
    # smp DiceLoss(mode="multiclass", log_loss=True): batch-summed counts (dims (0, 2)), absent
    # classes zeroed, mean over the classes considered; smp clamps the SCORE at eps, which no
    # class of this input reaches, so the conventions coincide. smp 0.6 writes the Dice as the
    # Tversky index (TP + s) / (TP + FP/2 + FN/2 + s): its smooth s is our smooth 2 s.
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    logits, target = _absent_class_inputs(absent_logit=-1.0)
    ref = smp_losses.DiceLoss(
        "multiclass", classes=None if bg else [1, 2], log_loss=True, smooth=S / 2, eps=Fn.EPS
    )
    got = build_loss("log_dice", include_background=bg)(logits, target)
    assert got.item() == pytest.approx(ref(logits, target).item(), rel=1e-10)
    torch.testing.assert_close(
        _grad(build_loss("log_dice", include_background=bg), logits, target),
        _grad(ref, logits, target),
        rtol=1e-9,
        atol=1e-12,
    )


def test_log_dice_present_class_below_eps_is_the_literal_formula() -> None:
    # a present class (one pixel) predicted with p ~ 3e-10 there and mass ~ 136 elsewhere:
    # Dice_1 ~ 1e-5 / 137 < EPS. The old clamp of the ratio gave -log EPS with zero gradient.
    logits = torch.zeros(1, 2, 12, 12, dtype=torch.float64)
    logits[0, 1] = 3.0
    target = torch.zeros(1, 12, 12, dtype=torch.long)
    target[0, 0, 0] = 1
    logits[0, 0, 0, 0] = 25.0  # p_1 there = 1 / (1 + e^22) ~ 2.8e-10
    z = logits.clone().requires_grad_(True)
    expected = _hand_log_dice(z, target, S, True, True)
    (g_ref,) = torch.autograd.grad(expected, z)
    loss = build_loss("log_dice")
    got = loss(logits, target)
    p = torch.softmax(logits, 1)[0, 1]
    assert ((2 * p[0, 0] + S) / (p.sum() + 1 + S)).item() < Fn.EPS  # the regime of the old clamp
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    g = _grad(loss, logits, target)
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-13)
    assert g[0, 1, 0, 0] < 0  # descent raises the true logit of the lone foreground pixel


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("log_dice_ce", {"w_dice": 1.0, "w_ce": 0.0}),
        ("log_dice_focal", {"w_dice": 1.0, "w_focal": 0.0}),
    ],
)
@pytest.mark.parametrize("batch", [True, False])
def test_log_dice_compounds_mask_absent_classes_like_log_dice(name, params, batch) -> None:
    logits, target = _absent_class_inputs(absent_logit=3.0)
    got = build_loss(name, batch=batch, **params)
    ref = build_loss("log_dice", batch=batch)
    assert got(logits, target).item() == pytest.approx(
        _hand_log_dice(logits, target, S, batch, True).item(), rel=1e-12
    )
    torch.testing.assert_close(
        _grad(got, logits, target), _grad(ref, logits, target), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("name", ["log_dice", "log_dice_ce", "log_dice_focal"])
@pytest.mark.parametrize("batch", [True, False])
def test_log_dice_family_gradcheck_with_absent_classes(name: str, batch: bool) -> None:
    logits, target = _absent_class_inputs(absent_logit=-1.0)
    logits, target = logits[:, :, :4, :4].contiguous(), target[:, :4, :4].contiguous()
    target[1] = 0  # image 1: only background (class 1 absent there, present in image 0)
    target[0, 0, 0] = 1
    loss = build_loss(name, batch=batch)
    z = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,), eps=1e-6, atol=1e-7)


def test_log_dice_with_every_class_present_is_unchanged() -> None:
    # default behaviour when no class is absent: -mean_c log Dice_c (as before the fix)
    logits, target = make_inputs(b=2, c=3, spatial=(5, 4))
    p = torch.softmax(logits, 1)
    y = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).double()
    dims = (0, 2, 3)
    dice = (2 * (p * y).sum(dims) + S) / (p.sum(dims) + y.sum(dims) + S)
    got = build_loss("log_dice")(logits, target)
    assert got.item() == pytest.approx(-dice.log().mean().item(), rel=1e-12)


# ------------------------------------------------------------------------------- WCE forms


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -torch.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)


def test_wce_pixels_is_paper004_eq1() -> None:
    # paper 004 Eq. 1: WCE = -(1/N) sum_c sum_i w_c y_i^c log p_i^c, N = all pixels of the batch
    logits, target = make_inputs(b=2, c=3, spatial=(5, 4))
    w = torch.tensor([0.2, 1.0, 0.7], dtype=torch.float64)
    logp = torch.log_softmax(logits, 1)
    y = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).double()
    expected = -(w.view(1, 3, 1, 1) * y * logp).sum() / target.numel()
    loss = build_loss("wce", weights=[0.2, 1.0, 0.7], normalization="pixels")
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-12)
    # differs from the weight-sum form by sum_i w_{y_i} / N
    ws = build_loss("wce", weights=[0.2, 1.0, 0.7])(logits, target)
    ratio = w[target].sum() / target.numel()
    assert loss(logits, target).item() == pytest.approx((ws * ratio).item(), rel=1e-12)


def test_wce_class_sum_is_paper003_table1_per_image() -> None:
    # paper 003 Table 1: CE = -sum_k (1/|Omega_k|) sum_{i in Omega_k} log p_ik for ONE image; the
    # loss is its mean over the mini-batch (l. 325-328). Image 1 lacks class 2 (contributes 0).
    logits, target = make_inputs(b=2, c=3, spatial=(5, 4), seed=3)
    target[1][target[1] == 2] = 0
    ce = _ce(logits, target)
    per_image = []
    for b in range(2):
        acc = 0.0
        for k in range(3):
            m = target[b] == k
            if m.any():
                acc += ce[b][m].mean().item()
        per_image.append(acc)
    expected = sum(per_image) / 2
    loss = build_loss("wce", normalization="class_sum")
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-12)
    z = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,), eps=1e-6, atol=1e-7)


def test_wce_inverse_frequency_forms_relation() -> None:
    # inverse_frequency weights sum to N over the pixels, so weight_sum == pixels ==
    # (1/K) sum_k mean_{Omega_k} CE of the pooled batch; class_sum of a single image is K times it
    logits, target = make_inputs(b=1, c=3, spatial=(6, 5), seed=5)
    ws = build_loss("wce")(logits, target)
    px = build_loss("wce", normalization="pixels")(logits, target)
    cs = build_loss("wce", normalization="class_sum")(logits, target)
    assert px.item() == pytest.approx(ws.item(), rel=1e-12)
    assert cs.item() == pytest.approx(3 * ws.item(), rel=1e-12)


@pytest.mark.parametrize("normalization", ["weight_sum", "pixels"])
def test_wce_forms_gradcheck(normalization: str) -> None:
    logits, target = make_inputs(b=2, c=3, spatial=(3, 3))
    loss = build_loss("wce", weights=[0.5, 2.0, 1.0], normalization=normalization)
    z = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,), eps=1e-6, atol=1e-7)


def test_wce_default_is_weight_sum_and_bad_forms_raise() -> None:
    logits, target = make_inputs(b=2, c=3, spatial=(5, 4))
    w = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    ref = torch.nn.functional.cross_entropy(logits, target, weight=w)
    assert build_loss("wce", weights=[0.2, 1.0, 3.0])(logits, target).item() == pytest.approx(
        ref.item(), rel=1e-12
    )
    with pytest.raises(ValueError, match="normalization='mean'.*'weight_sum'"):
        build_loss("wce", normalization="mean")
    with pytest.raises(ValueError, match="weights=.*normalization='class_sum'"):
        build_loss("wce", weights=[1.0, 2.0, 3.0], normalization="class_sum")


# --------------------------------------------------------------------------------- mL1-ACE


def _barfoot_ace(probs: torch.Tensor, onehot: torch.Tensor, bins: int) -> torch.Tensor:
    """cai4cai/ACE-DLIRIS HardL1ACELoss (reduction mean): per (image, class) nanmean over bins of
    |mean p - mean y|, then the mean over images and classes. Loops, as the reference."""
    edges = torch.linspace(0.0, 1.0 + torch.finfo(torch.float32).eps, bins + 1, dtype=probs.dtype)
    b, c = probs.shape[:2]
    p, y = probs.reshape(b, c, -1), onehot.reshape(b, c, -1)
    out = torch.zeros(b, c, dtype=probs.dtype)
    for i in range(b):
        for k in range(c):
            idx = torch.bucketize(p[i, k], edges[1:], right=False)
            gaps = []
            for m in range(bins):
                sel = idx == m
                if sel.any():
                    gaps.append((p[i, k][sel].mean() - y[i, k][sel].mean()).abs())
            out[i, k] = torch.stack(gaps).mean()
    return out.mean()


@pytest.mark.parametrize("batch", [True, False])
def test_ml1ace_matches_barfoot_reference(batch: bool) -> None:
    logits, target = make_inputs(b=3, c=4, spatial=(6, 5), scale=2.0, seed=7)
    # exact bin edges: zero logits give p = 0.25 = 5/20 on every class of these pixels
    logits[0, :, 0, :] = 0.0
    probs = torch.softmax(logits, 1)
    onehot = Fn.one_hot(target, 4, probs.dtype)
    if batch:  # batch=True pools the batch's pixels: the reference on one concatenated image
        ref = _barfoot_ace(
            probs.movedim(0, 1).reshape(1, 4, -1), onehot.movedim(0, 1).reshape(1, 4, -1), 20
        )
    else:
        ref = _barfoot_ace(probs, onehot, 20)
    got = build_loss("ml1ace_dice", bins=20, w_dice=0.0, batch=batch)(logits, target)
    assert got.item() == pytest.approx(ref.item(), rel=1e-12)


def test_ml1ace_exact_bin_edge_hand() -> None:
    # 4 classes, 2 pixels, bins = 20. Pixel A: equal logits, p = 0.25 = 5/20 exactly, class 0;
    # pixel B: p = (.27, .23, .23, .27), class 3. The reference's bins are (e_k, e_k+1]: A goes to
    # bin 4 with B's .23 entries, B's .27 entries to bin 5 (the former floor rule put A in bin 5).
    # class 0: {4: A .25 | y 1 -> .75}, {5: B .27 | y 0 -> .27}            -> .51
    # class 1, 2: {4: A .25, B .23 | y 0, 0 -> .24}                        -> .24
    # class 3: {4: A .25 | y 0 -> .25}, {5: B .27 | y 1 -> .73}            -> .49
    pb = torch.tensor([0.27, 0.23, 0.23, 0.27], dtype=torch.float64)
    logits = torch.stack([torch.zeros(4, dtype=torch.float64), pb.log()], 1).view(1, 4, 2)
    target = torch.tensor([[0, 3]])
    got = build_loss("ml1ace_dice", bins=20, w_dice=0.0, batch=False)(logits, target)
    assert got.item() == pytest.approx((0.51 + 0.24 + 0.24 + 0.49) / 4, rel=1e-9)


def test_ml1ace_hand_gradient() -> None:
    # paper 002 App. D: "equal weighting with Dice loss and 20 bins"; here bins = 10 for a hand case.
    # 1 image, 4 pixels, p1 = (.05, .07, .55, .93), y = (0, 1, 1, 1).
    # class 1 bins: {0: .05,.07 | y 0,1: mean p .06 < .5}, {5: .55 < 1}, {9: .93 < 1} -> 3 bins,
    # dACE_1/dp1 = -1/(n_bin * 3) = (-1/6, -1/6, -1/3, -1/3).
    # class 0: p0 = (.95, .93, .45, .07), y0 = (1, 0, 0, 0): {9: .94 > .5}, {4: .45 > 0}, {0: .07 > 0}
    # dACE_0/dp0 = (+1/6, +1/6, +1/3, +1/3). Loss = (ACE_0 + ACE_1)/2.
    p1 = torch.tensor([0.05, 0.07, 0.55, 0.93], dtype=torch.float64)
    logits = torch.stack([torch.zeros(4, dtype=torch.float64), torch.log(p1 / (1 - p1))]).view(
        1, 2, 4
    )
    target = torch.tensor([[0, 1, 1, 1]])
    loss = build_loss("ml1ace_dice", bins=10, w_dice=0.0)
    assert loss(logits, target).item() == pytest.approx((0.44 + 0.45 + 0.07) / 3, rel=1e-9)
    g_p = 0.5 * torch.tensor(
        [[1 / 6, 1 / 6, 1 / 3, 1 / 3], [-1 / 6, -1 / 6, -1 / 3, -1 / 3]], dtype=torch.float64
    ).view(1, 2, 4)
    p = torch.softmax(logits, 1)
    g_z = p * (g_p - (p * g_p).sum(1, keepdim=True))  # softmax Jacobian-vector product
    torch.testing.assert_close(_grad(loss, logits, target), g_z, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("batch", [True, False])
def test_ml1ace_dice_gradcheck_away_from_kinks(batch: bool) -> None:
    # piecewise smooth; on this fixed input no probability is within 1e-6 of a bin edge and no
    # bin gap is 0, so finite differences see one smooth piece
    logits, target = make_inputs(b=2, c=3, spatial=(4, 3), seed=11)
    probs = torch.softmax(logits, 1)
    assert ((probs * 20 - (probs * 20).round()).abs() > 1e-4).all()
    loss = build_loss("ml1ace_dice", bins=20, batch=batch)
    z = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,), eps=1e-7, atol=1e-6)


# ------------------------------------------------------------------------ surgery_on


def _binary(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return make_inputs(b=2, c=2, spatial=(4, 3), seed=seed, scale=2.0)


def test_dice_ce_surgery_on_dice_keeps_native_ce_gradient() -> None:
    logits, target = _binary()
    n, wd, wc = 20, 0.5, 0.5
    loss = build_loss("dice_ce_surgery", w_dice=wd, w_ce=wc, n=n, surgery_on="dice")
    value_ref = wd * build_loss("dice", include_background=False)(logits, target) + wc * build_loss(
        "ce"
    )(logits, target)
    assert loss(logits, target).item() == pytest.approx(value_ref.item(), rel=1e-12)
    p = torch.softmax(logits, 1)
    y = Fn.one_hot(target, 2, p.dtype)
    expected = (
        wd * _grad(build_loss("dice_surgery", n=n), logits, target) + wc * (p - y) / target.numel()
    )
    torch.testing.assert_close(_grad(loss, logits, target), expected, rtol=1e-10, atol=1e-14)


def test_dice_ce_surgery_default_all_routes_ce_through_the_field() -> None:
    # w_dice = 0, surgery_on = "all" (default): dCE/dz_fg = w (dCE/dp_fg - dCE/dp_bg) with
    # CE = -(1/N) sum log p_t: y = 1 -> -w / (N p_fg); y = 0 -> +w / (N p_bg);
    # w = 0.25 |y - p_fg| (1 - (1 - p_fg)^n)(1 - p_fg^n) (Listing 1 / Eq. 10)
    logits, target = _binary(seed=2)
    n = 5
    loss = build_loss("dice_ce_surgery", w_dice=0.0, w_ce=1.0, n=n)
    assert loss.surgery_on == "all"
    p = torch.softmax(logits, 1)
    pf, yf, nn_ = p[:, 1], (target == 1).double(), target.numel()
    w = 0.25 * (yf - pf).abs() * (1 - (1 - pf) ** n) * (1 - pf**n)
    g_fg = torch.where(target == 1, -w / (nn_ * pf), w / (nn_ * p[:, 0]))
    g = _grad(loss, logits, target)
    torch.testing.assert_close(g[:, 1], g_fg, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(g[:, 0], -g_fg, rtol=1e-10, atol=1e-14)
    # ... which is not CE's native gradient p - y
    assert not torch.allclose(g[:, 1], (pf - yf) / nn_, rtol=1e-3)


def test_dice_ce_surgery_on_checked() -> None:
    with pytest.raises(ValueError, match="surgery_on='ce'.*'all', 'dice'"):
        build_loss("dice_ce_surgery", surgery_on="ce")


# ------------------------------------------------------- per-image Dice family (paper 003)

PAPER003_DICE_FAMILY = [
    ("dice", {}),
    ("log_dice", {}),
    ("dice_ce", {"w_dice": 0.1, "w_ce": 1.0}),
    ("log_dice_ce", {"w_dice": 0.1, "w_ce": 1.0}),
    ("dice_focal", {"w_dice": 0.1, "w_focal": 1.0, "gamma": 2.0}),
    ("log_dice_focal", {"w_dice": 0.1, "w_focal": 1.0, "gamma": 2.0}),
]


@pytest.mark.parametrize(("name", "params"), PAPER003_DICE_FAMILY)
@pytest.mark.parametrize("bg", [True, False])
def test_batch_false_is_the_minibatch_mean_of_single_image_losses(name, params, bg) -> None:
    # paper 003, l. 325-328: every loss is written "for a single training image" and training
    # uses "the mean values across all the training samples via standard mini-batch optimization".
    # Image 2 lacks class 2, image 1 lacks class 1 (absent classes per image).
    logits, target = make_inputs(b=3, c=3, spatial=(5, 4), seed=4)
    target[1][target[1] == 1] = 0
    target[2][target[2] == 2] = 0
    per_image = build_loss(name, batch=False, include_background=bg, **params)
    single = build_loss(name, batch=True, include_background=bg, **params)
    expected = torch.stack([single(logits[b : b + 1], target[b : b + 1]) for b in range(3)]).mean()
    assert per_image(logits, target).item() == pytest.approx(expected.item(), rel=1e-12)
    z = logits.clone().requires_grad_(True)
    g_ref = torch.autograd.grad(
        torch.stack([single(z[b : b + 1], target[b : b + 1]) for b in range(3)]).mean(), z
    )[0]
    torch.testing.assert_close(_grad(per_image, logits, target), g_ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(("name", "params"), PAPER003_DICE_FAMILY)
def test_dice_family_default_reduction_is_still_batch(name, params) -> None:
    assert build_loss(name, **params).batch is True


def test_per_image_dice_hand() -> None:
    # 1 - mean_b mean_c (2 TP_bc + s) / (P_bc + G_bc + s) with per-image counts
    logits, target = make_inputs(b=2, c=3, spatial=(5, 4), seed=6)
    p = torch.softmax(logits, 1)
    y = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).double()
    dims = (2, 3)
    dice = (2 * (p * y).sum(dims) + S) / (p.sum(dims) + y.sum(dims) + S)
    got = build_loss("dice", batch=False)(logits, target)
    assert got.item() == pytest.approx(1 - dice.mean().item(), rel=1e-12)
