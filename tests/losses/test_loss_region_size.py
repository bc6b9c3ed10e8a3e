"""Paper 003: RCE / RFL / DBCE (Eq. 7, Eq. 2's DB term, App. C temperature). Hand-computed with
per-image proportions (the paper writes every loss for one image and averages over the batch)."""

from __future__ import annotations

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
