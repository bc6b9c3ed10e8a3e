"""Paper 003: RCE / RFL / DBCE (Eq. 7, Eq. 2's DB term, App. C temperature). Hand-computed with
per-image proportions (the paper writes every loss for one image and averages over the batch)."""

from __future__ import annotations

import math

import pytest
import torch

from segbench.losses import build_loss

from .conftest import make_inputs


def _props(logits: torch.Tensor, target: torch.Tensor, tau: float):
    c = logits.shape[1]
    p_hat = torch.softmax(tau * logits, 1).mean((2, 3))
    y_hat = torch.stack([(target == k).double().mean((1, 2)) for k in range(c)], 1)
    return p_hat, y_hat


@pytest.mark.parametrize("tau", [1.0, 10.0])
def test_rce_l1_hand(tau: float) -> None:
    x, t = make_inputs(c=3)
    p_hat, y_hat = _props(x, t, tau)
    expected = build_loss("ce")(x, t) + 1.0 * (y_hat - p_hat).abs().sum(1).mean()
    assert build_loss("rce", tau=tau)(x, t).item() == pytest.approx(expected.item(), rel=1e-12)


def test_rce_kl_hand_with_absent_class_and_default_lam() -> None:
    x, t = make_inputs(c=3)
    t[0][t[0] == 2] = 0  # class 2 absent from image 0: its KL term is 0
    p_hat, y_hat = _props(x, t, 10.0)
    terms = torch.where(y_hat > 0, y_hat * (y_hat / p_hat).log(), torch.zeros_like(y_hat))
    expected = build_loss("ce")(x, t) + 0.1 * terms.sum(1).mean()
    loss = build_loss("rce", penalty="kl")
    assert loss.lam == 0.1
    assert loss(x, t).item() == pytest.approx(expected.item(), rel=1e-12)


def test_rfl_is_focal_plus_penalty() -> None:
    x, t = make_inputs(c=3)
    p_hat, y_hat = _props(x, t, 10.0)
    expected = build_loss("focal", gamma=2.0)(x, t) + 0.5 * (y_hat - p_hat).abs().sum(1).mean()
    assert build_loss("rfl", lam=0.5)(x, t).item() == pytest.approx(expected.item(), rel=1e-12)


def test_dbce_hand() -> None:
    x, t = make_inputs(c=3)
    p_hat, y_hat = _props(x, t, 1.0)
    expected = build_loss("ce")(x, t) + 0.05 * (p_hat + y_hat).log().sum(1).mean()
    assert build_loss("dbce", lam=0.05)(x, t).item() == pytest.approx(expected.item(), rel=1e-12)


def test_temperature_sharpens_the_proportion_estimate() -> None:
    """App. C: large tau pushes p_hat towards the hard (argmax) proportions."""
    x, t = make_inputs(c=3, scale=2.0)
    hard = torch.stack([(x.argmax(1) == k).double().mean((1, 2)) for k in range(3)], 1)
    err = [(_props(x, t, tau)[0] - hard).abs().sum().item() for tau in (1.0, 10.0, 100.0)]
    assert err[0] > err[1] > err[2]


def test_batch_proportions_option() -> None:
    x, t = make_inputs(c=3)
    p_hat = torch.softmax(10 * x, 1).mean((0, 2, 3))
    y_hat = torch.stack([(t == k).double().mean() for k in range(3)])
    expected = build_loss("ce")(x, t) + (y_hat - p_hat).abs().sum()
    assert build_loss("rce", batch=True)(x, t).item() == pytest.approx(expected.item(), rel=1e-12)


def test_rce_penalty_zero_when_proportions_match() -> None:
    # confident, correct logits: p_hat = y_hat, so RCE = CE
    x, t = make_inputs(c=3)
    logits = 30.0 * torch.nn.functional.one_hot(t, 3).movedim(-1, 1).double()
    assert build_loss("rce")(logits, t).item() == pytest.approx(
        build_loss("ce")(logits, t).item(), abs=1e-10
    )


def test_bad_penalty() -> None:
    with pytest.raises(ValueError, match="penalty='l2'.*'l1', 'kl'"):
        build_loss("rce", penalty="l2")
    with pytest.raises(ValueError, match="tau=0"):
        build_loss("rfl", tau=0)


# ------------------------------------------------- binary, foreground-only DBCE (App. B, Eq. B.3)


def _binary_logits(p_fg: list[float]) -> torch.Tensor:
    """Logits ``[1, 2, N]`` whose softmax foreground probabilities are ``p_fg``."""
    p = torch.tensor(p_fg, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))]).unsqueeze(0)


def test_dbce_foreground_only_hand() -> None:
    # 4 pixels, p_fg = 1/2, 3/4, 1/4, 1/2 and only the first is foreground:
    # p_hat_1 = 2/4 = 0.5, y_hat_1 = 0.25 -> DB1 = log 0.75 (Eq. B.3); p_hat_0 + y_hat_0 = 1.25
    x = _binary_logits([0.5, 0.75, 0.25, 0.5])
    t = torch.tensor([[1, 0, 0, 0]])
    ce = -(math.log(0.5) + math.log(0.25) + math.log(0.75) + math.log(0.5)) / 4
    fg = build_loss("dbce", lam=0.1, include_background=False)(x, t)
    assert fg.item() == pytest.approx(ce + 0.1 * math.log(0.75), rel=1e-12)
    both = build_loss("dbce", lam=0.1)(x, t)  # Eq. 2: both classes
    assert both.item() == pytest.approx(ce + 0.1 * (math.log(0.75) + math.log(1.25)), rel=1e-12)


def test_dbce_foreground_only_is_the_k1_term_of_the_multi_class_form() -> None:
    # Eq. 2 with K = 2 is DB0 + DB1; dropping the background term leaves Eq. B.3's DB1
    x, t = make_inputs(b=3, c=2, spatial=(5, 4))
    for tau, batch in [(1.0, False), (10.0, False), (10.0, True)]:
        p_hat, y_hat = _props(x, t, tau) if not batch else _batch_props(x, t, tau)
        both = build_loss("dbce", lam=0.3, tau=tau, batch=batch)(x, t)
        fg = build_loss("dbce", lam=0.3, tau=tau, batch=batch, include_background=False)(x, t)
        db0 = (p_hat[:, 0] + y_hat[:, 0]).log().mean()
        db1 = (p_hat[:, 1] + y_hat[:, 1]).log().mean()
        assert (both - fg).item() == pytest.approx(0.3 * db0.item(), rel=1e-12)
        ce = build_loss("ce")(x, t)
        assert fg.item() == pytest.approx((ce + 0.3 * db1).item(), rel=1e-12)


def _batch_props(logits: torch.Tensor, target: torch.Tensor, tau: float):
    p_hat = torch.softmax(tau * logits, 1).mean((0, 2, 3)).unsqueeze(0)
    y_hat = torch.stack([(target == k).double().mean() for k in range(logits.shape[1])]).unsqueeze(
        0
    )
    return p_hat, y_hat


def test_dbce_db1_is_the_region_term_of_the_foreground_log_dice() -> None:
    # App. B, Eq. B.1: -log Dice1 = DF1 + DB1 + const, DF1 = -log(mean_{i in Omega_1} p_i1),
    # const = log(|Omega| / (2 |Omega_1|)) (smooth = 0, tau = 1, one image)
    x, t = make_inputs(b=1, c=2, spatial=(6, 5), seed=3)
    fg = t == 1
    n, n1 = t.numel(), int(fg.sum())
    db1 = build_loss("dbce", lam=1.0, include_background=False)(x, t) - build_loss("ce")(x, t)
    log_dice1 = build_loss("log_dice", smooth=0.0, include_background=False)(x, t)
    df1 = -torch.softmax(x, 1)[:, 1][fg].mean().log()
    assert log_dice1.item() == pytest.approx((df1 + db1).item() + math.log(n / (2 * n1)), rel=1e-12)


def test_dbce_foreground_only_gradient_closed_form() -> None:
    # d DB1 / d z_{i,fg} = p_i (1 - p_i) / (N (p_hat_1 + y_hat_1)) = -d DB1 / d z_{i,bg} (tau = 1)
    x, t = make_inputs(b=2, c=2, spatial=(4, 3), seed=1)
    z = x.clone().requires_grad_(True)
    build_loss("dbce", lam=1.0, include_background=False)(z, t).backward()
    zc = x.clone().requires_grad_(True)
    build_loss("ce")(zc, t).backward()
    p = torch.softmax(x, 1)[:, 1]
    p_hat, y_hat = _props(x, t, 1.0)
    n = p[0].numel()
    g = p * (1 - p) / (n * (p_hat[:, 1] + y_hat[:, 1])).view(-1, 1, 1) / 2  # mean over 2 images
    torch.testing.assert_close(z.grad[:, 1] - zc.grad[:, 1], g, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(z.grad[:, 0] - zc.grad[:, 0], -g, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("c", "tau", "batch"), [(2, 1.0, False), (2, 10.0, True), (3, 10.0, False)]
)
def test_dbce_foreground_only_gradcheck(c: int, tau: float, batch: bool) -> None:
    x, t = make_inputs(b=2, c=c, spatial=(3, 4))
    loss = build_loss("dbce", lam=0.5, tau=tau, batch=batch, include_background=False)
    assert torch.autograd.gradcheck(lambda z: loss(z, t), (x.clone().requires_grad_(True),))


def test_dbce_include_background_checked() -> None:
    with pytest.raises(ValueError, match="include_background='no'.*True, False"):
        build_loss("dbce", include_background="no")
