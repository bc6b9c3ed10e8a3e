"""Properties every registered loss must have (parametrised over the whole registry).

gradcheck in float64 (the losses are smooth in the logits except where noted in NOT_SMOOTH),
a class absent from the batch, all-background targets, extreme logits (no NaN / inf in value or
gradient), 2D and 3D, low-precision input computed in float32, and ValueError on bad input.
"""

from __future__ import annotations

import pytest
import torch

from segbench.losses import LOSSES, build_loss, list_losses

from .conftest import make_inputs, num_classes_for

# piecewise or not differentiable everywhere: top-k selection and calibration-error binning
# (piecewise smooth; gradcheck could straddle a kink), surgery (custom backward is not the
# derivative of the forward, by design)
NOT_SMOOTH = {
    "topk",
    "topk_thr",
    "ml1ace_dice",
    "dice_surgery",
    "tversky_surgery",
    "dice_ce_surgery",
    "intra_cbl",
    "balance",
}

ALL = list_losses()

# losses with a detached factor: gradcheck compares with finite differences, which see the
# detached factor move; fix it to a constant (the detach itself is tested in the paper tests)
GRADCHECK_PARAMS: dict[str, dict] = {"caml": {"r": 0.8}}


def _build(name: str) -> torch.nn.Module:
    loss = build_loss(name)
    if hasattr(loss, "set_epoch"):
        loss.set_epoch(0, 10)
    return loss


def _finite_value_and_grad(name: str, logits: torch.Tensor, target: torch.Tensor) -> None:
    z = logits.clone().requires_grad_(True)
    value = _build(name)(z, target)
    assert value.ndim == 0
    assert torch.isfinite(value), f"{name}: value {value}"
    value.backward()
    assert torch.isfinite(z.grad).all(), f"{name}: non-finite gradient"


def test_registry_lists_the_issue_losses() -> None:
    priority = {"ce", "dice", "dice_ce", "ml", "caml"}
    assert priority <= set(ALL)
    assert len(LOSSES) == len(ALL)


@pytest.mark.parametrize("name", sorted(set(ALL) - NOT_SMOOTH))
def test_gradcheck_float64(name: str) -> None:
    c = num_classes_for(name)
    logits, target = make_inputs(b=2, c=c, spatial=(3, 2), seed=1)
    loss = build_loss(name, **GRADCHECK_PARAMS.get(name, {}))
    if hasattr(loss, "set_epoch"):
        loss.set_epoch(0, 10)
    z = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_class_absent_from_batch(name: str) -> None:
    c = num_classes_for(name)
    logits, _ = make_inputs(c=c, seed=2)
    target = torch.zeros(logits.shape[0], *logits.shape[2:], dtype=torch.long)
    target[:, 0, 0] = 1  # class 2 (when C > 2) absent; class 1 in one pixel per image
    _finite_value_and_grad(name, logits, target)


@pytest.mark.parametrize("name", ALL)
def test_all_background(name: str) -> None:
    c = num_classes_for(name)
    logits, _ = make_inputs(c=c, seed=3)
    target = torch.zeros(logits.shape[0], *logits.shape[2:], dtype=torch.long)
    _finite_value_and_grad(name, logits, target)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("scale", [50.0, 1e4])
def test_extreme_logits(name: str, scale: float) -> None:
    c = num_classes_for(name)
    logits, target = make_inputs(c=c, seed=4, dtype=torch.float32, scale=scale)
    _finite_value_and_grad(name, logits, target)
    # confidently right everywhere
    right = torch.nn.functional.one_hot(target, c).movedim(-1, 1).float() * scale
    _finite_value_and_grad(name, right, target)


@pytest.mark.parametrize("name", ALL)
def test_3d_and_half_precision(name: str) -> None:
    c = num_classes_for(name)
    logits, target = make_inputs(b=2, c=c, spatial=(3, 4, 5), dtype=torch.float16, seed=5)
    value = _build(name)(logits, target)
    assert value.dtype == torch.float32
    ref = _build(name)(logits.float(), target)
    assert value.item() == pytest.approx(ref.item(), rel=1e-6, abs=1e-7)


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match="unknown loss .dicee.; known loss.*Did you mean 'dice'"):
        build_loss("dicee")


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_is_named(name: str) -> None:
    with pytest.raises(
        ValueError, match=r"got unknown parameter\(s\) 'bogus' \(value 1\); allowed: "
    ):
        build_loss(name, bogus=1)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("dice", {"smooth": -1.0}, "smooth=-1.0"),
        ("dice", {"batch": "yes"}, "batch='yes'.*True, False"),
        ("wce", {"weights": "median"}, "weights='median'.*'inverse_frequency'"),
        ("wce", {"weights": [1.0, -2.0]}, r"weights\[1\]=-2.0"),
        ("focal", {"gamma": -0.5}, "gamma=-0.5"),
        ("focal", {"alpha": 1.5}, "alpha=1.5"),
        ("tversky", {"alpha": "x"}, "alpha='x'"),
        ("caml", {"confidence": "image"}, "confidence='image'.*'batch', 'pixel'"),
        ("caml", {"r": 0}, "r=0"),
        ("dice_pp", {"gamma": 0.5}, "gamma=0.5"),
        ("topk", {"k": 0}, "k=0"),
        ("topk_thr", {"t": 1.5}, "t=1.5"),
        ("balance", {"switch": "epoch"}, "switch='epoch'"),
        ("dice_surgery", {"n": 0}, "n=0"),
        ("dice_surgery", {"scale": -1}, "scale=-1"),
        ("tversky", {"alpha": 0.0, "beta": 0.0}, "alpha=0, beta=0"),
        ("tversky_surgery", {"alpha": 0.0, "beta": 0.0}, "alpha=0, beta=0"),
        ("focal_tversky", {"smooth": -1.0}, "smooth=-1.0"),
        ("dice_ce_surgery", {"include_background": 1}, "include_background=1"),
    ],
)
def test_bad_parameter_value(name: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_loss(name, **params)


@pytest.mark.parametrize(
    ("logits", "target", "match"),
    [
        (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), "B, C, \\*spatial"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long), "does not match"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4), "int64"),
    ],
)
def test_bad_inputs(logits: torch.Tensor, target: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_loss("dice")(logits, target)


BINARY_ONLY = [n for n in ALL if LOSSES.get(n).max_classes == 2]  # type: ignore[attr-defined]


def test_binary_only_losses_are_the_documented_ones() -> None:
    # docs/losses.md "Binary-only losses": the papers give no multi-class form
    expected = ["balance", "dice_ce_surgery", "dice_surgery", "inter_cbl", "tversky_surgery"]
    assert expected == BINARY_ONLY


@pytest.mark.parametrize("name", BINARY_ONLY)
def test_binary_only_losses_reject_multiclass(name: str) -> None:
    logits, target = make_inputs(c=3)
    with pytest.raises(ValueError, match="C=3 is not supported; allowed C: 2"):
        build_loss(name)(logits, target)


def test_weight_list_length_checked_at_forward() -> None:
    logits, target = make_inputs(c=3)
    with pytest.raises(ValueError, match="weights has 2 entries.*3 classes"):
        build_loss("wce", weights=[1.0, 2.0])(logits, target)


@pytest.mark.parametrize("name", ALL)
def test_registration_sets_name_and_repr_lists_signature(name: str) -> None:
    # One registration style: LOSSES.register sets ``name``; ``repr`` shows every constructor
    # parameter in signature order (recorded by SegLoss, not written out per class).
    from segbench.losses import LOSSES

    loss = build_loss(name)
    assert type(loss).name == name
    params = LOSSES.params(name)
    assert list(getattr(loss, "_params", {})) == params
    for p in params:
        assert f"{p}=" in repr(loss)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("dice", ["smooth", "batch", "include_background"]),
        ("focal_tversky", ["alpha", "beta", "gamma", "smooth", "batch", "include_background"]),
        (
            "dice_focal",
            ["w_dice", "w_focal", "gamma", "alpha", "smooth", "batch", "include_background"],
        ),
        ("log_dice_ce", ["w_dice", "w_ce", "smooth", "batch", "include_background"]),
        ("unified_focal", ["lam", "delta", "gamma", "smooth", "batch"]),
        (
            "dice_ce_surgery",
            ["w_dice", "w_ce", "n", "scale", "smooth", "batch", "include_background", "surgery_on"],
        ),
    ],
)
def test_forwarded_family_options_are_in_the_signature(name: str, params: list[str]) -> None:
    # The overlap options are declared once (RegionLoss, _SurgeryLoss) and forwarded as
    # ``**options``; the signature the registry reads lists them in place, with their defaults,
    # and passing one by name reaches the family constructor.
    import inspect

    sig = inspect.signature(LOSSES.get(name))
    assert list(sig.parameters) == params
    assert sig.parameters["smooth"].default == 1e-5
    loss = build_loss(name, smooth=0.5, batch=False)
    assert (loss.smooth, loss.batch) == (0.5, False)
    assert "smooth=0.5, batch=False" in repr(loss)
    # an instance is inspected as a callable (forward), not as its constructor
    assert "smooth" not in inspect.signature(loss).parameters
