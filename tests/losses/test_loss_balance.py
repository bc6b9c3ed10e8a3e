"""Paper 004: TopK (Eq. 2-3), Inter-CBL (Eq. 11), Intra-CBL (Eq. 12), Balance (Eq. 13 + switch)."""

from __future__ import annotations

import math

import pytest
import torch

from segbench.losses import build_loss

from .conftest import make_inputs


def _ce(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return -torch.log_softmax(x, 1).gather(1, t.unsqueeze(1)).squeeze(1)


def _binary_from_p(p_fg: list[list[float]]) -> torch.Tensor:
    """Logits [B, 2, N] whose softmax foreground probability is p_fg."""
    p = torch.tensor(p_fg, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], 1)


def test_topk_hand() -> None:
    x, t = make_inputs(b=2, c=3, spatial=(5, 4))  # N = 40
    ce = _ce(x, t).reshape(-1)
    expected = ce.sort(descending=True).values[:10].sum() / 40  # 25 % -> 10 pixels, Eq. 3's 1/N
    assert build_loss("topk", k=25)(x, t).item() == pytest.approx(expected.item(), rel=1e-12)
    assert build_loss("topk", k=100)(x, t).item() == pytest.approx(
        build_loss("ce")(x, t).item(), rel=1e-12
    )


def test_topk_thr_hand() -> None:
    x, t = make_inputs()
    ce = _ce(x, t)
    keep = torch.exp(-ce) < 0.5
    expected = ce[keep].mean()
    assert build_loss("topk_thr", t=0.5)(x, t).item() == pytest.approx(expected.item(), rel=1e-12)
    # nothing below the threshold: 0, with a zero gradient
    right = 40.0 * torch.nn.functional.one_hot(t, 3).movedim(-1, 1).double()
    assert build_loss("topk_thr", t=0.5)(right, t).item() == 0.0


def test_intra_cbl_hand() -> None:
    x, t = make_inputs(b=2, c=3, spatial=(5, 4), scale=2.0)
    logp = -_ce(x, t)
    p = logp.exp()
    total = 0.0
    for c in range(3):
        for m in ((t == c) & (p <= 0.6), (t == c) & (p > 0.6)):
            if m.any():
                total = total + logp[m].mean()
    assert build_loss("intra_cbl", t=0.6)(x, t).item() == pytest.approx(-float(total), rel=1e-12)


def test_intra_cbl_t0_is_inverse_frequency_wce() -> None:
    """Eq. 12 with t = 0 (all pixels easy): sum_c (1/n_c) sum_{y=c} CE, the paper's remark."""
    x, t = make_inputs(c=3)
    ce = _ce(x, t)
    expected = sum(ce[t == c].sum() / (t == c).sum() for c in range(3))
    assert build_loss("intra_cbl", t=0.0)(x, t).item() == pytest.approx(float(expected), rel=1e-12)


def test_intra_cbl_per_image_option() -> None:
    x, t = make_inputs(b=2, c=3)
    per = [build_loss("intra_cbl")(x[i : i + 1], t[i : i + 1]) for i in range(2)]
    got = build_loss("intra_cbl", batch=False)(x, t)
    assert got.item() == pytest.approx(float(sum(per)) / 2, rel=1e-12)


def test_inter_cbl_hand() -> None:
    # one image, N = 6, f = 2 foreground pixels; background p = (.1, .5, .3, .8): the f = 2 worst
    # background pixels (largest -log(1 - p)) are p = .8 and .5
    logits = _binary_from_p([[0.7, 0.4, 0.1, 0.5, 0.3, 0.8]])
    target = torch.tensor([[1, 1, 0, 0, 0, 0]])
    fg = -math.log(0.7) - math.log(0.4)
    worst = -math.log(0.2) - math.log(0.5)
    rest = -math.log(0.9) - math.log(0.7)
    expected = (fg + worst) / 2 + rest / 6
    got = build_loss("inter_cbl")(logits, target)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_inter_cbl_balanced_is_twice_ce_and_empty_foreground_is_background_ce() -> None:
    logits = _binary_from_p([[0.7, 0.4, 0.1, 0.5], [0.2, 0.3, 0.6, 0.1]])
    target = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])
    ce = _ce(logits, target)
    expected = (2 * ce[0].mean() + ce[1].mean()) / 2
    assert build_loss("inter_cbl")(logits, target).item() == pytest.approx(
        expected.item(), rel=1e-12
    )


def test_inter_cbl_gradient_weights() -> None:
    """d/dz of Eq. 11 = weight * dCE_i/dz with weight 1/f (fg and bg_wf) or 1/N (other bg)."""
    logits = _binary_from_p([[0.7, 0.4, 0.1, 0.5, 0.3, 0.8]])
    target = torch.tensor([[1, 1, 0, 0, 0, 0]])
    z = logits.clone().requires_grad_(True)
    build_loss("inter_cbl")(z, target).backward()
    z2 = logits.clone().requires_grad_(True)
    w = torch.tensor([[1 / 2, 1 / 2, 1 / 6, 1 / 2, 1 / 6, 1 / 2]], dtype=torch.float64)
    (w * _ce(z2, target)).sum().backward()
    torch.testing.assert_close(z.grad, z2.grad)


def _confident(target: torch.Tensor, margin: float) -> torch.Tensor:
    return margin * (2 * torch.nn.functional.one_hot(target, 2).movedim(-1, 1).double() - 1)


def test_balance_two_stage_switch() -> None:
    x, t = make_inputs(b=3, c=2, spatial=(4, 4), scale=0.1)
    loss = build_loss("balance")
    assert int(loss.stage) == 1
    # uncertain predictions: stays in stage 1, value = Intra-CBL
    v = loss(x, t)
    assert int(loss.stage) == 1
    assert v.item() == pytest.approx(build_loss("intra_cbl", t=0.9)(x, t).item(), rel=1e-12)
    # confident in 2 of 3 images (> half): switch, value = Eq. 13 on this batch
    mixed = _confident(t, 5.0)
    mixed[2] = 0.0
    loss.eval()
    loss(mixed, t)
    assert int(loss.stage) == 1, "eval mode never switches"
    loss.train()
    v = loss(mixed, t)
    assert int(loss.stage) == 2
    expected = 0.5 * build_loss("intra_cbl", t=0.9)(mixed, t) + 0.5 * build_loss("inter_cbl")(
        mixed, t
    )
    assert v.item() == pytest.approx(expected.item(), rel=1e-12)
    # sticky, and saved in the state dict
    loss(x, t)
    assert int(loss.stage) == 2
    assert int(loss.state_dict()["stage"]) == 2
    fresh = build_loss("balance")
    fresh.load_state_dict(loss.state_dict())
    assert int(fresh.stage) == 2
    fresh.reset_stage()
    assert int(fresh.stage) == 1


def test_balance_switch_needs_more_than_half() -> None:
    x, t = make_inputs(b=4, c=2, spatial=(4, 4))
    logits = _confident(t, 5.0)
    logits[2:] = 0.0  # exactly half confident: no switch
    loss = build_loss("balance")
    loss(logits, t)
    assert int(loss.stage) == 1


def test_balance_switch_uses_fth_best_background_probability() -> None:
    # foreground all at p = .95; background: f = 2, best two background probs 0.99 and 0.85 -> the
    # f-th best (0.85) is below t = 0.9: no switch; raise it to 0.95 -> switch
    target = torch.tensor([[1, 1, 0, 0, 0, 0]])
    low = _binary_from_p([[0.95, 0.95, 0.01, 0.15, 0.5, 0.6]])
    loss = build_loss("balance", t=0.9)
    loss(low, target)
    assert int(loss.stage) == 1
    high = _binary_from_p([[0.95, 0.95, 0.01, 0.05, 0.5, 0.6]])
    loss(high, target)
    assert int(loss.stage) == 2


def test_balance_never_and_always() -> None:
    x, t = make_inputs(b=2, c=2)
    conf = _confident(t, 5.0)
    never = build_loss("balance", switch="never")
    never(conf, t)
    assert int(never.stage) == 1
    always = build_loss("balance", switch="always", alpha=0.3)
    expected = 0.3 * build_loss("intra_cbl")(x, t) + 0.7 * build_loss("inter_cbl")(x, t)
    assert always(x, t).item() == pytest.approx(expected.item(), rel=1e-12)


# C != 2 and bad parameter values: test_loss_generic (test_binary_only_losses_reject_multiclass,
# test_bad_parameter_value).
