"""Per-volume metrics in mm on a prepared 3D dataset, against scipy's Euclidean distance
transform with ``sampling=spacing`` (an independent computation of the surface distances)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers3d import ct_case, entry, write_case
from scipy import ndimage

from segbench.data.io import load_prepared
from segbench.data.recipes import prepare_dataset
from segbench.inference import volume_metrics

VOLUMES = [{"image": "*_img.nii.gz", "regex": r"(?P<case>c\d+)_img", "label": "{case}_seg.nii.gz",
            "id": "{case}"}]  # fmt: skip


def _scipy_hd95_nsd(a: np.ndarray, b: np.ndarray, spacing: list[float], tau: float) -> tuple:
    sa = a ^ ndimage.binary_erosion(a)
    sb = b ^ ndimage.binary_erosion(b)
    d_ab = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    d_ba = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    hd95 = float(np.percentile(np.concatenate([d_ab, d_ba]), 95))
    nsd = float(((d_ab <= tau).sum() + (d_ba <= tau).sum()) / (sa.sum() + sb.sum()))
    return hd95, nsd


def test_hd95_and_nsd_in_mm_on_a_prepared_volume(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for k, shape in enumerate([(14, 12, 10), (10, 16, 9)]):  # different shapes: padding
        img, lab = ct_case(shape, seed=k)
        write_case(raw, f"c{k}", img, lab, np.diag([1.0, 1.0, 1.0, 1.0]))
    spacing = [1.5, 1.0, 2.0]  # anisotropic target spacing
    params = {"volumes": VOLUMES, "modality": "ct", "spacing": spacing, "clip": [-58, 302],
              "crop": None}  # fmt: skip
    prepare_dataset(entry({"name": "volumes_3d", "params": params}), raw, tmp_path / "p.npz")
    ds = load_prepared(tmp_path / "p.npz")
    tau = 2.0
    checked = 0
    for k, vid in enumerate(ds.ids):
        info = ds.meta["recipe"]["volumes"][vid]
        assert info["spacing"] == spacing
        gt = ds.masks[k]
        pred = np.roll(gt, shift=(1, -1, 1), axis=(0, 1, 2))  # a shifted prediction
        prob = np.eye(3, dtype=np.float32)[pred].transpose(3, 0, 1, 2)
        rows = volume_metrics(prob, gt, info, nsd_tolerance=tau)
        s = info["shape"]
        g, p = gt[: s[0], : s[1], : s[2]], pred[: s[0], : s[1], : s[2]]
        for c in (1, 2):
            if not (g == c).any() or not (p == c).any():
                continue
            hd95, nsd = _scipy_hd95_nsd(p == c, g == c, spacing, tau)
            assert abs(rows[c]["hd95"] - hd95) < 1e-9, (vid, c, rows[c]["hd95"], hd95)
            assert abs(rows[c]["nsd"] - nsd) < 1e-9, (vid, c, rows[c]["nsd"], nsd)
            # in voxels the numbers differ: the spacing is really used
            hd95_vox, _ = _scipy_hd95_nsd(p == c, g == c, [1.0, 1.0, 1.0], tau)
            assert abs(hd95 - hd95_vox) > 1e-3
            checked += 1
    assert checked >= 3
