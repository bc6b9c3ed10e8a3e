"""Paper 002: gradient vector field surgery. The forward value is the base loss; the logit
gradient is Listing 1's field, i.e. ``scale`` (0.25) times Eq. 10 (Eq. 9 when n is None).

Eq. 2 of the paper is printed as the derivative of the Dice COEFFICIENT; the loss derivative
``G(i) = dL/dp_i`` is its negative, which is what we compare with (so that the field points
towards the ground truth, as the paper states)."""

from __future__ import annotations

import pytest
import torch

from segbench.losses import build_loss
from segbench.losses import functional as Fn

from .conftest import make_inputs


def _binary(seed: int = 0, scale: float = 2.0):
    return make_inputs(b=2, c=2, spatial=(4, 3), seed=seed, scale=scale)


def _logit_grad(name: str, logits: torch.Tensor, target: torch.Tensor, **params) -> torch.Tensor:
    z = logits.clone().requires_grad_(True)
    build_loss(name, **params)(z, target).backward()
    return z.grad


@pytest.mark.parametrize("n", [None, 1, 5, 20])
@pytest.mark.parametrize("smooth", [0.0, 1e-5, 1.0])
def test_dice_surgery_logit_gradient_is_eq10(n, smooth: float) -> None:
    logits, target = _binary()
    grad = _logit_grad("dice_surgery", logits, target, n=n, smooth=smooth)
    with torch.no_grad():
        p = torch.softmax(logits, 1)[:, 1]
        y = (target == 1).double()
        big_p, big_y, inter = p.sum(), y.sum(), (p * y).sum()
        s = big_p + big_y + smooth
        g = -(2 * y * s - (2 * inter + smooth)) / s**2  # G(i) = dL/dp_i, minus Eq. 2
        field = p * (1 - p) / (y * p + (1 - y) * (1 - p)) * g  # Eq. 9
        if n is not None:
            field = (1 - (1 - p) ** n) * (1 - p**n) * field  # Eq. 10
    torch.testing.assert_close(grad[:, 1], 0.25 * field, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(grad[:, 0], -0.25 * field, rtol=1e-10, atol=1e-14)
    # the field points towards the ground truth: descent raises z_fg on foreground pixels
    assert (grad[:, 1][target == 1] <= 0).all() and (grad[:, 1][target == 0] >= 0).all()


def test_eq9_scale_factor_is_abs_error() -> None:
    p = torch.linspace(0.01, 0.99, 21, dtype=torch.float64)
    for y in (0.0, 1.0):
        torch.testing.assert_close(p * (1 - p) / (y * p + (1 - y) * (1 - p)), (y - p).abs())


@pytest.mark.parametrize(
    ("name", "base", "params"),
    [
        ("dice_surgery", "dice", {"include_background": True}),
        ("tversky_surgery", "tversky", {"alpha": 0.2, "beta": 0.8}),
        ("dice_ce_surgery", "dice_ce", {"w_dice": 0.5, "w_ce": 0.5}),
    ],
)
def test_surgery_value_is_base_and_gradient_replaces_softmax_backward(name, base, params) -> None:
    logits, target = _binary(seed=1)
    base_params = {k: v for k, v in params.items()}
    if "include_background" not in base_params:
        base_params["include_background"] = False
    if base == "dice_ce":
        # the surgery CE is computed from probabilities; compare with dice_ce on a non-saturated input
        base_params.pop("include_background")
        value_ref = 0.5 * build_loss("dice", include_background=False)(
            logits, target
        ) + 0.5 * build_loss("ce")(logits, target)
    else:
        value_ref = build_loss(base, **base_params)(logits, target)
    loss = build_loss(name, n=20, **params)
    assert loss(logits, target).item() == pytest.approx(value_ref.item(), rel=1e-10)
    # gradient: grad_z_fg = w (g_fg - g_bg), g = dL/dp from autograd of the same base value
    probs = torch.softmax(logits, 1).detach().requires_grad_(True)
    onehot = Fn.one_hot(target, 2, probs.dtype)
    loss.base_value(probs, onehot, target).backward()
    with torch.no_grad():
        p = probs[:, 1]
        e = (onehot[:, 1] - p).abs()
        w = 0.25 * e * (1 - e**20) * (1 - (1 - e) ** 20)  # Listing 1, lines 7-11
        g_fg = w * (probs.grad[:, 1] - probs.grad[:, 0])
    grad = _logit_grad(name, logits, target, n=20, **params)
    torch.testing.assert_close(grad[:, 1], g_fg, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(grad[:, 0], -g_fg, rtol=1e-10, atol=1e-14)


# C != 2 and bad parameter values: test_loss_generic (test_binary_only_losses_reject_multiclass,
# test_bad_parameter_value).
