"""HD95 / NSD: hand-made shapes with known distances, scipy distance transforms, MONAI.

Independent reference: surfaces from ``scipy.ndimage.binary_erosion`` (mask XOR eroded, the
same surface definition as MONAI's ``get_mask_edges``) and distances from
``scipy.ndimage.distance_transform_edt`` with ``sampling=spacing``; pooled HD95 is
``np.percentile`` of both directions concatenated (medpy's ``hd95``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from segbench.metrics import (
    hd_percentile,
    image_diagonal,
    nsd_from_distances,
    surface_distances,
    surface_metrics_binary,
)


def _scipy_directed(a: np.ndarray, b: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    ea = a ^ ndimage.binary_erosion(a)
    eb = b ^ ndimage.binary_erosion(b)
    dt_b = ndimage.distance_transform_edt(~eb, sampling=spacing)
    dt_a = ndimage.distance_transform_edt(~ea, sampling=spacing)
    return dt_b[ea], dt_a[eb]


def _blobs(shape, seed, n=3):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    mask = np.zeros(shape, bool)
    for _ in range(n):
        centre = [rng.uniform(0.2 * s, 0.8 * s) for s in shape]
        radius = rng.uniform(0.08, 0.2) * min(shape)
        mask |= sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2
    return mask


def test_parallel_lines_known_distance():
    gt = np.zeros((32, 32), bool)
    pred = np.zeros((32, 32), bool)
    gt[10, 5:25] = True
    pred[13, 5:25] = True  # every surface pixel is exactly 3 px from the other line
    d_pg, d_gp = surface_distances(pred, gt)
    np.testing.assert_allclose(d_pg, 3.0)
    np.testing.assert_allclose(d_gp, 3.0)
    m = surface_metrics_binary(pred, gt, nsd_tolerance=2.0)
    assert m["hd95"] == pytest.approx(3.0)
    assert m["nsd"] == 0.0
    assert surface_metrics_binary(pred, gt, nsd_tolerance=3.0)["nsd"] == 1.0


def test_single_pixels_with_anisotropic_spacing():
    gt = np.zeros((20, 20), bool)
    pred = np.zeros((20, 20), bool)
    gt[2, 2] = True
    pred[5, 6] = True  # offset (3, 4)
    assert surface_metrics_binary(pred, gt)["hd95"] == pytest.approx(5.0)
    spacing = (2.0, 0.5)  # -> sqrt(6^2 + 2^2)
    m = surface_metrics_binary(pred, gt, spacing=spacing, nsd_tolerance=6.3)
    assert m["hd95"] == pytest.approx(np.sqrt(40.0), rel=1e-6)
    assert m["nsd"] == 0.0
    assert surface_metrics_binary(pred, gt, spacing=spacing, nsd_tolerance=6.33)["nsd"] == 1.0


def test_shifted_square_matches_scipy():
    gt = np.zeros((64, 64), bool)
    gt[10:40, 12:42] = True
    pred = np.roll(gt, 3, axis=1)
    pred[20:25, 42:50] = True  # a spike
    for spacing in (None, (1.0, 1.0), (0.7, 1.3)):
        sp = (1.0, 1.0) if spacing is None else spacing
        ref_pg, ref_gp = _scipy_directed(pred, gt, sp)
        d_pg, d_gp = surface_distances(pred, gt, spacing)
        np.testing.assert_allclose(np.sort(d_pg), np.sort(ref_pg), rtol=1e-6)
        np.testing.assert_allclose(np.sort(d_gp), np.sort(ref_gp), rtol=1e-6)
        pooled = np.percentile(np.concatenate([ref_pg, ref_gp]), 95)
        for tol in (0.5, 1.0, 2.5):
            m = surface_metrics_binary(pred, gt, spacing=spacing, nsd_tolerance=tol)
            assert m["hd95"] == pytest.approx(pooled, rel=1e-6)
            expected_nsd = (np.sum(ref_pg <= tol) + np.sum(ref_gp <= tol)) / (
                ref_pg.size + ref_gp.size
            )
            assert m["nsd"] == pytest.approx(expected_nsd)


def test_3d_blobs_match_scipy():
    gt = _blobs((24, 28, 20), seed=1)
    pred = _blobs((24, 28, 20), seed=2)
    spacing = (2.0, 1.0, 1.5)
    ref_pg, ref_gp = _scipy_directed(pred, gt, spacing)
    m = surface_metrics_binary(pred, gt, spacing=spacing, nsd_tolerance=2.0)
    assert m["hd95"] == pytest.approx(np.percentile(np.concatenate([ref_pg, ref_gp]), 95), rel=1e-6)
    assert m["nsd"] == pytest.approx(
        (np.sum(ref_pg <= 2.0) + np.sum(ref_gp <= 2.0)) / (ref_pg.size + ref_gp.size)
    )


def test_pooled_vs_monai_directed_max():
    """Project HD95 is pooled; MONAI's HausdorffDistanceMetric is the per-direction max."""
    from monai.metrics import compute_hausdorff_distance

    gt = np.zeros((48, 48), bool)
    gt[10:30, 10:30] = True
    pred = gt.copy()
    pred[18:21, 30:44] = True  # spike: large distances in one direction only
    d_pg, d_gp = surface_distances(pred, gt)
    pooled = hd_percentile(d_pg, d_gp, 95, "pooled")
    directed = hd_percentile(d_pg, d_gp, 95, "directed_max")
    monai_hd95 = compute_hausdorff_distance(
        torch.from_numpy(pred)[None, None].float(),
        torch.from_numpy(gt)[None, None].float(),
        include_background=True,
        percentile=95,
    ).item()
    assert directed == pytest.approx(monai_hd95, rel=1e-5)
    assert pooled < directed
    assert surface_metrics_binary(pred, gt)["hd95"] == pytest.approx(pooled)
    # 100th percentile: both conventions give the classic Hausdorff distance
    assert hd_percentile(d_pg, d_gp, 100, "pooled") == hd_percentile(
        d_pg, d_gp, 100, "directed_max"
    )


@pytest.mark.parametrize("tol", [1.0, 2.0])
def test_nsd_matches_monai(tol):
    from monai.metrics import compute_surface_dice

    gt = _blobs((64, 64), seed=3)
    pred = _blobs((64, 64), seed=4) | gt & _blobs((64, 64), seed=5)
    spacing = (1.0, 1.0)
    monai_nsd = compute_surface_dice(
        torch.from_numpy(pred)[None, None].float(),
        torch.from_numpy(gt)[None, None].float(),
        class_thresholds=[tol],
        include_background=True,
        spacing=spacing,
    ).item()
    assert surface_metrics_binary(pred, gt, spacing=spacing, nsd_tolerance=tol)["nsd"] == (
        pytest.approx(monai_nsd, rel=1e-6)
    )


def test_empty_policy_and_diagonal():
    empty = np.zeros((256, 256), bool)
    full = empty.copy()
    full[100:110, 100:110] = True
    assert surface_metrics_binary(empty, empty) == {"hd95": 0.0, "hd": 0.0, "nsd": 1.0}
    diag = image_diagonal((256, 256))
    assert diag == pytest.approx(256 * np.sqrt(2))
    worst = {"hd95": pytest.approx(diag), "hd": pytest.approx(diag), "nsd": 0.0}
    assert surface_metrics_binary(empty, full) == worst
    assert surface_metrics_binary(full, empty) == worst
    with_spacing = surface_metrics_binary(full, empty, spacing=(0.5, 2.0))
    assert with_spacing["hd95"] == pytest.approx(np.hypot(128.0, 512.0))
    assert with_spacing["hd"] == pytest.approx(np.hypot(128.0, 512.0))
    with pytest.raises(ValueError, match="non-empty"):
        surface_distances(empty, full)


def test_bad_arguments():
    a = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="mode"):
        hd_percentile(np.ones(3), np.ones(3), 95, "mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="percentile"):
        hd_percentile(np.ones(3), np.ones(3), 101)
    with pytest.raises(ValueError, match="tolerance"):
        nsd_from_distances(np.ones(3), np.ones(3), -1.0)
    with pytest.raises(ValueError, match="spacing"):
        surface_metrics_binary(a, a, spacing=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="spacing"):
        surface_metrics_binary(a, a, spacing=(1.0, 0.0))


def test_crop_equals_monai_full_pipeline_at_image_border():
    """Our bounding-box crop + MONAI edges == MONAI's own crop=True, also for border masks."""
    from monai.metrics.utils import get_mask_edges, get_surface_distance

    gt = _blobs((40, 50), seed=6)
    gt[0:6, 10:20] = True  # touches the top border
    pred = _blobs((40, 50), seed=7)
    pred[30:40, 45:50] = True  # touches the bottom-right corner
    e_p, e_g = get_mask_edges(pred, gt, crop=True)
    ref_pg = get_surface_distance(e_p, e_g, "euclidean", (1.5, 1.0))
    ref_gp = get_surface_distance(e_g, e_p, "euclidean", (1.5, 1.0))
    d_pg, d_gp = surface_distances(pred, gt, (1.5, 1.0))
    np.testing.assert_allclose(np.sort(d_pg), np.sort(ref_pg), rtol=1e-6)
    np.testing.assert_allclose(np.sort(d_gp), np.sort(ref_gp), rtol=1e-6)
    ref_sc = _scipy_directed(pred, gt, (1.5, 1.0))
    np.testing.assert_allclose(np.sort(d_pg), np.sort(ref_sc[0]), rtol=1e-6)


# ----------------------------------------------------------------- issue #15: anisotropic NSD
# Independent reference with EXACT arithmetic: spacing (1.5, 1.0, 0.8) = (15, 10, 8) / 10 and
# tau = 1.7 = 17 / 10, so "d <= tau" is the integer test
# (15 dz)^2 + (10 dy)^2 + (8 dx)^2 <= 17^2 between surface voxels (surfaces = mask XOR
# scipy binary_erosion, the cross-shaped element, as MONAI's get_mask_edges). Brute force over
# all surface pairs, no floating point.
_ANISO_SPACING = (1.5, 1.0, 0.8)
_ANISO_INT = np.array([15, 10, 8], dtype=np.int64)
_TAU, _TAU_INT = 1.7, 17


def _exact_nsd_and_hd(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    pa = np.argwhere(a ^ ndimage.binary_erosion(a)).astype(np.int64)
    pb = np.argwhere(b ^ ndimage.binary_erosion(b)).astype(np.int64)
    sq = (((pa[:, None, :] - pb[None, :, :]) * _ANISO_INT) ** 2).sum(-1)  # [|Sa|, |Sb|]
    d_ab, d_ba = sq.min(axis=1), sq.min(axis=0)
    within = np.count_nonzero(d_ab <= _TAU_INT**2) + np.count_nonzero(d_ba <= _TAU_INT**2)
    hd = np.sqrt(max(d_ab.max(), d_ba.max())) / 10.0
    return within / (d_ab.size + d_ba.size), float(hd)


def test_nsd_exact_tie_on_anisotropic_grid():
    """Offset (1, 0, 1) at spacing (1.5, 1.0, 0.8) is exactly 1.7 = tau: within (was 0 with
    MONAI's float32 distances, 1.70000005 > 1.7)."""
    a = np.zeros((6, 6, 6), bool)
    b = np.zeros((6, 6, 6), bool)
    a[2, 3, 2] = True
    b[3, 3, 3] = True
    m = surface_metrics_binary(a, b, spacing=_ANISO_SPACING, nsd_tolerance=_TAU)
    assert m["nsd"] == 1.0
    assert m["hd"] == pytest.approx(1.7, rel=1e-12)
    d_pg, d_gp = surface_distances(a, b, _ANISO_SPACING)
    assert d_pg.dtype == np.float64 and d_gp.dtype == np.float64


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_nsd_random_anisotropic_3d_matches_exact_reference(seed):
    """Random 20x18x16 cases (issue #15's setting): NSD and HD equal the exact integer
    reference; the issue's case gave 0.974 against 0.982 before the fix."""
    rng = np.random.default_rng(seed)
    a = ndimage.binary_opening(rng.random((20, 18, 16)) < 0.55)
    b = ndimage.binary_opening(rng.random((20, 18, 16)) < 0.55)
    ref_nsd, ref_hd = _exact_nsd_and_hd(a, b)
    m = surface_metrics_binary(a, b, spacing=_ANISO_SPACING, nsd_tolerance=_TAU)
    assert m["nsd"] == pytest.approx(ref_nsd, abs=1e-12)
    assert m["hd"] == pytest.approx(ref_hd, rel=1e-12)
    # blobs too (large smooth surfaces, as in the 3D studies)
    ga = _blobs((20, 18, 16), seed=10 + seed)
    gb = _blobs((20, 18, 16), seed=20 + seed)
    ref_nsd, ref_hd = _exact_nsd_and_hd(ga, gb)
    m = surface_metrics_binary(ga, gb, spacing=_ANISO_SPACING, nsd_tolerance=_TAU)
    assert m["nsd"] == pytest.approx(ref_nsd, abs=1e-12)
    assert m["hd"] == pytest.approx(ref_hd, rel=1e-12)


def test_hd_is_max_of_both_directions_and_matches_monai():
    """``hd`` = classic Hausdorff distance = MONAI compute_hausdorff_distance(percentile=None)."""
    from monai.metrics import compute_hausdorff_distance

    gt = np.zeros((48, 48), bool)
    gt[10:30, 10:30] = True
    pred = gt.copy()
    pred[18:21, 30:44] = True  # spike of 14 px: HD = 14, HD95 much smaller
    m = surface_metrics_binary(pred, gt)
    assert m["hd"] == pytest.approx(14.0)
    assert m["hd95"] < m["hd"]
    for spacing in ((1.0, 1.0), (0.7, 1.3)):
        monai_hd = compute_hausdorff_distance(
            torch.from_numpy(pred)[None, None].float(),
            torch.from_numpy(gt)[None, None].float(),
            include_background=True,
            spacing=spacing,
        ).item()
        got = surface_metrics_binary(pred, gt, spacing=spacing)["hd"]
        assert got == pytest.approx(monai_hd, rel=1e-6)
        ref_pg, ref_gp = _scipy_directed(pred, gt, spacing)
        assert got == pytest.approx(max(ref_pg.max(), ref_gp.max()), rel=1e-12)
