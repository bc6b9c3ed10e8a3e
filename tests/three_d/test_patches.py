"""Patch sampling with foreground oversampling (segbench.train.patches)."""

from __future__ import annotations

import numpy as np
import pytest

from segbench.train.patches import PATCH_PROTOCOLS, PatchSampler, patch_protocol


def _volume() -> tuple[np.ndarray, np.ndarray]:
    """32^3 volume with a 3^3 foreground cube in the middle (0.08 % of the voxels): a random
    patch centre almost never falls on it without oversampling."""
    lab = np.zeros((32, 32, 32), dtype=np.uint8)
    lab[15:18, 15:18, 15:18] = 1
    img = np.random.default_rng(0).normal(size=(1, 32, 32, 32)).astype(np.float32)
    return img, lab


@pytest.mark.parametrize("rate", [0.33, 0.45, 0.0])
def test_measured_foreground_rate(rate: float) -> None:
    img, lab = _volume()
    size = (8, 8, 8)
    sampler = PatchSampler(size, rate, num_samples=50, seed=1)
    centre = tuple(s // 2 for s in size)  # MONAI crops [c - s // 2, c - s // 2 + s)
    hits, n = 0, 0
    for _ in range(40):
        for pimg, plab in sampler(img, lab):
            assert pimg.shape == (1, *size) and plab.shape == size
            hits += int(plab[centre] > 0)
            n += 1
    share = hits / n
    sigma = np.sqrt(max(rate * (1 - rate), 1e-12) / n)
    # binomial: within 4 standard deviations (n = 2000: 0.33 +- 0.042, 0.45 +- 0.044); rate 0:
    # background centres only, never on the cube
    assert abs(share - rate) <= 4 * sigma + 1e-12, (share, rate, n)


def test_small_volume_is_padded_and_seed_reproduces() -> None:
    lab = np.zeros((5, 6, 4), dtype=np.uint8)
    lab[2, 3, 1] = 1
    img = np.ones((1, 5, 6, 4), dtype=np.float32)
    a = PatchSampler((8, 8, 8), 0.5, num_samples=4, seed=3)(img, lab)
    b = PatchSampler((8, 8, 8), 0.5, num_samples=4, seed=3)(img, lab)
    for (ia, la), (ib, lb) in zip(a, b, strict=True):
        assert ia.shape == (1, 8, 8, 8) and la.shape == (8, 8, 8)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
        assert ia.sum() == 5 * 6 * 4 and la.sum() == 1  # whole volume inside, zero padding


def test_state_dict_resumes_the_draws() -> None:
    img, lab = _volume()
    s = PatchSampler((8, 8, 8), 0.33, num_samples=3, seed=0)
    s(img, lab)
    state = s.state_dict()
    nxt = s(img, lab)
    r = PatchSampler((8, 8, 8), 0.33, num_samples=3, seed=99)
    r.load_state_dict(state)
    for (ia, la), (ib, lb) in zip(nxt, r(img, lab), strict=True):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)


def test_paper_protocols_and_errors() -> None:
    assert patch_protocol("brats_mets").patch_size == (80, 96, 80)
    assert patch_protocol("brats_mets").fg_rate == 0.33
    k = patch_protocol("kits23")
    assert (k.patch_size, k.fg_rate, k.samples_per_volume) == ((96, 96, 80), 0.45, 8)
    assert set(PATCH_PROTOCOLS) == {"brats_mets", "kits23", "msd_pancreas", "msd_liver", "amos22"}
    assert PatchSampler.for_dataset("kits23").num_samples == 8
    with pytest.raises(KeyError, match="known: "):
        patch_protocol("kits19")
    with pytest.raises(ValueError, match=r"fg_rate must be a number in \[0, 1\]"):
        PatchSampler((8, 8, 8), 1.5)
    with pytest.raises(ValueError, match="patch_size must be 2 or 3 positive ints"):
        PatchSampler((8, 0, 8), 0.3)
    with pytest.raises(ValueError, match="spatial axes"):
        PatchSampler((8, 8, 8), 0.3)(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)))


def test_same_seed_same_patches_on_a_volume_larger_than_the_patch() -> None:
    """The seed reaches the centre draws (MONAI's Compose reseeded them from its own unseeded
    state, so two samplers of one seed drew different patches; the test above could not see it:
    its volume is smaller than the patch, so every patch is the whole volume)."""
    img, lab = _volume()

    def draws(seed: int) -> list[np.ndarray]:
        s = PatchSampler((8, 8, 8), 0.5, num_samples=4, seed=seed)
        return [p for _ in range(3) for p, _ in s(img, lab)]

    a, b, c = draws(5), draws(5), draws(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
