"""Sliding-window inference (segbench.inference, MONAI sliding_window_inference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segbench.inference import crop_to_shape, sliding_window_logits, sliding_window_probs
from segbench.models import build_model


def _res_unet_3d() -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model("res_unet_3d", in_channels=1, classes=3, channels=[4, 8, 16], strides=[2, 2],
                      num_res_units=1)  # fmt: skip
    return net.eval().double()


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
def test_one_window_covering_the_volume_equals_whole_volume(mode: str) -> None:
    net = _res_unet_3d()
    x = torch.randn(2, 1, 16, 12, 8, dtype=torch.float64)
    whole = net(x)
    sw = sliding_window_logits(net, x, (16, 12, 8), overlap=0.5, mode=mode)
    torch.testing.assert_close(sw, whole, rtol=1e-10, atol=1e-10)


def test_window_larger_than_volume_pointwise_model() -> None:
    # a pointwise (1x1x1) model does not see the zero padding: result = whole-volume output
    torch.manual_seed(1)
    net = torch.nn.Conv3d(1, 2, kernel_size=1).double()
    x = torch.randn(1, 1, 5, 7, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(sliding_window_logits(net, x, 8), net(x), rtol=1e-10, atol=1e-10)


class _WindowMean(torch.nn.Module):
    """Toy model: every voxel of a window gets the window's mean intensity (2 classes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(2, 3, 4), keepdim=True).expand_as(x)
        return torch.cat([m, -m], dim=1)


def test_constant_mode_equals_hand_computed_overlap_average() -> None:
    # volume 8 x 4 x 4, window 4 x 4 x 4, overlap 0.5: stride int(4 * 0.5) = 2, windows at
    # z = 0, 2, 4 (MONAI's scan: ceil((8 - 4) / 2) + 1 = 3 positions). A voxel at z gets the mean
    # of the window means of the windows covering it.
    x = torch.arange(8 * 4 * 4, dtype=torch.float64).reshape(1, 1, 8, 4, 4) ** 1.5
    w = [x[0, 0, s : s + 4].mean().item() for s in (0, 2, 4)]
    covering = {0: [0], 1: [0], 2: [0, 1], 3: [0, 1], 4: [1, 2], 5: [1, 2], 6: [2], 7: [2]}
    want = torch.tensor(
        [np.mean([w[i] for i in covering[z]]) for z in range(8)], dtype=torch.float64
    )
    out = sliding_window_logits(_WindowMean(), x, (4, 4, 4), overlap=0.5, mode="constant")
    torch.testing.assert_close(out[0, 0, :, 0, 0], want, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(out[0, 1], -out[0, 0])
    assert out.shape == (1, 2, 8, 4, 4)
    # gaussian mode, by hand: window weight at in-window position p (side n) is the separable
    # exp(-(p - (n - 1) / 2)^2 / (2 (n / 8)^2)), peak 1 (nnU-Net / MONAI, sigma_scale 1/8). On
    # the line (z, 1, 1) the y / x factors are equal for every window and cancel; no weight
    # there is below MONAI's 1e-3 floor.
    g = sliding_window_logits(_WindowMean(), x, (4, 4, 4), overlap=0.5, mode="gaussian")

    def gz(pos: int) -> float:
        return float(np.exp(-((pos - 1.5) ** 2) / (2 * 0.5**2)))

    starts = (0, 2, 4)
    for z in range(8):
        ws = [(gz(z - starts[i]), w[i]) for i in covering[z]]
        hand = sum(a * b for a, b in ws) / sum(a for a, _ in ws)
        assert abs(g[0, 0, z, 1, 1].item() - hand) < 1e-6 * abs(hand), (z, g[0, 0, z, 1, 1], hand)
    assert abs(g[0, 0, 2, 1, 1].item() - want[2].item()) > 1.0  # not the plain mean


def test_gaussian_blend_of_a_constant_model_is_that_constant() -> None:
    def model(t: torch.Tensor) -> torch.Tensor:
        return torch.full((t.shape[0], 2, *t.shape[2:]), 3.25, dtype=t.dtype)

    out = sliding_window_logits(model, torch.zeros(1, 1, 13, 9, 11), (6, 4, 5))
    torch.testing.assert_close(out, torch.full_like(out, 3.25))
    probs = sliding_window_probs(model, torch.zeros(1, 1, 7, 7, 7), 4)
    torch.testing.assert_close(probs, torch.full_like(probs, 0.5))


def test_crop_to_shape_and_errors() -> None:
    a = np.arange(2 * 5 * 6 * 7).reshape(2, 5, 6, 7)
    np.testing.assert_array_equal(crop_to_shape(a, (3, 6, 2)), a[:, :3, :6, :2])
    with pytest.raises(ValueError, match=r"larger than the array's last axes \[5, 6, 7\]"):
        crop_to_shape(a, (6, 6, 7))
    x = torch.zeros(1, 1, 4, 4, 4)
    with pytest.raises(ValueError, match="mode must be one of"):
        sliding_window_logits(torch.nn.Identity(), x, 4, mode="mean")
    with pytest.raises(ValueError, match="overlap must be in"):
        sliding_window_logits(torch.nn.Identity(), x, 4, overlap=1.0)
    with pytest.raises(ValueError, match="roi_size must be 3 positive ints"):
        sliding_window_logits(torch.nn.Identity(), x, (4, 4))
