"""Recipe volumes_3d through the real prepare_dataset on tiny synthetic NIfTI volumes.

Independent checks: orientation against nibabel's ``as_closest_canonical``, resampling against
the physical size of the objects (mm^3) and the grid size ``round(n * s / t)``, the intensity
normalisation against numpy statistics of the written arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers3d import ball, ct_case, entry, write_case

from segbench.data.io import load_prepared
from segbench.data.recipes import RecipeError, prepare_dataset

VOLUMES = [{"image": "*_img.nii.gz", "regex": r"(?P<case>c\d+)_img", "label": "{case}_seg.nii.gz",
            "id": "{case}"}]  # fmt: skip
LPS = np.diag([-2.0, -1.0, 1.5, 1.0])  # flipped x and y, anisotropic spacing (2, 1, 1.5) mm


def _ct_raw(raw: Path, shapes: list[tuple[int, int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    cases = []
    for k, shape in enumerate(shapes):
        img, lab = ct_case(shape, seed=k)
        write_case(raw, f"c{k}", img, lab, LPS)
        cases.append((img, lab))
    return cases


def test_orientation_matches_nibabel_canonical(tmp_path: Path) -> None:
    import nibabel as nib

    raw = tmp_path / "raw"
    _ct_raw(raw, [(10, 12, 8)])
    e = entry(
        {
            "name": "volumes_3d",
            "params": {
                "volumes": VOLUMES,
                "modality": "ct",
                "spacing": None,
                "crop": None,
                "clip": [-100, 300],
            },
        }
    )
    prepare_dataset(e, raw, tmp_path / "p.npz")
    ds = load_prepared(tmp_path / "p.npz")
    canon = nib.as_closest_canonical(nib.load(raw / "c0_seg.nii.gz"))
    assert nib.aff2axcodes(canon.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(ds.masks[0], np.asarray(canon.dataobj).astype(np.uint8))
    assert ds.meta["recipe"]["volumes"]["c0"]["spacing"] == [2.0, 1.0, 1.5]


def test_ct_resample_clip_zscore_crop_and_sidecar(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    cases = _ct_raw(raw, [(12, 20, 16), (10, 18, 14)])
    params = {"volumes": VOLUMES, "modality": "ct", "spacing": 1.5, "clip": [-58, 302],
              "crop": "nonzero", "count": 2}  # fmt: skip
    out = tmp_path / "prep" / "vol3d.npz"
    arrays = prepare_dataset(e := entry({"name": "volumes_3d", "params": params}), raw, out)
    side = json.loads(out.with_suffix(".json").read_text())
    rec = side["recipe"]
    assert rec["spacing"] == [1.5, 1.5, 1.5] and rec["orientation"] == "RAS"
    ds = load_prepared(out)
    assert ds.images.ndim == 5 and ds.images.shape[:2] == (2, 1) and ds.masks.ndim == 4
    for k, (img, lab) in enumerate(cases):
        info = rec["volumes"][f"c{k}"]
        assert info["source_spacing"] == [2.0, 1.0, 1.5] and info["spacing"] == [1.5] * 3
        # MONAI Spacing keeps the span of the voxel centres: n' = round((n - 1) * s / t + 1) per
        # axis (crop "nonzero" keeps all: the air is -1000 != 0 when the crop runs)
        want = [
            round((n - 1) * s / 1.5 + 1) for n, s in zip(img.shape, (2.0, 1.0, 1.5), strict=True)
        ]
        assert info["shape"] == want, (info["shape"], want)
        # physical volume of organ + tumour (mm^3) preserved by the resampling within 15 %
        v_src = float((lab > 0).sum()) * 2.0 * 1.0 * 1.5
        v_out = float((ds.masks[k] > 0).sum()) * 1.5**3
        assert abs(v_out - v_src) / v_src < 0.15, (v_src, v_out)
        # padding beyond the volume's own shape is zero
        s = info["shape"]
        assert not ds.masks[k, s[0] :, :, :].any() and not ds.images[k, 0, :, s[1] :, :].any()
    # nnU-Net CT scheme: clip to [-58, 302], z-score with the mean / std of the clipped
    # foreground (label > 0) voxels of all volumes -> foreground mean 0, std 1 (numpy check)
    fg = np.concatenate([ds.images[k, 0][ds.masks[k] > 0] for k in range(2)]).astype(np.float64)
    assert abs(fg.mean()) < 1e-4 and abs(fg.std() - 1.0) < 1e-4
    mean, std = rec["intensity"]["mean_std"]
    assert rec["intensity"]["clip"] == [-58.0, 302.0]
    assert ds.images.max() <= (302 - mean) / std + 1e-4
    assert ds.images.min() >= (-58 - mean) / std - 1e-4
    assert side["class_names"] == list(e.classes) and arrays.ids == ["c0", "c1"]


def test_ct_foreground_percentile_clip(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _ct_raw(raw, [(10, 12, 8)])
    params = {"volumes": VOLUMES, "modality": "ct", "spacing": None, "crop": None,
              "clip": {"percentiles": [0.5, 99.5]}}  # fmt: skip
    prepare_dataset(entry({"name": "volumes_3d", "params": params}), raw, tmp_path / "p.npz")
    ds = load_prepared(tmp_path / "p.npz")
    rec = ds.meta["recipe"]["intensity"]
    import nibabel as nib

    img = np.asarray(nib.as_closest_canonical(nib.load(raw / "c0_img.nii.gz")).dataobj)
    lab = np.asarray(nib.as_closest_canonical(nib.load(raw / "c0_seg.nii.gz")).dataobj)
    lo, hi = np.percentile(img[lab > 0].astype(np.float64), [0.5, 99.5])
    assert rec["clip"] == pytest.approx([lo, hi], rel=1e-5)
    assert rec["clip_percentiles"] == [0.5, 99.5]


def test_mr_zscore_nonzero_and_label_crop_and_official_split(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shape = (14, 16, 12)
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    rng = np.random.default_rng(0)
    for part, k in (("imagesTr", 0), ("imagesTr", 1), ("imagesVa", 2)):
        brain = ball(shape, (6.5, 7.5, 5.5), 5.0)
        img = np.where(brain, rng.normal(500.0 + 100 * k, 80.0, size=shape), 0.0)
        lab = np.zeros(shape, dtype=np.uint8)
        lab[ball(shape, (6.5, 7.5, 5.5), 2.0)] = 1
        lab[ball(shape, (6.5, 7.5, 8.0), 1.0)] = 2
        write_case(raw / part, f"c{k}", img, lab, aff)
    vols = [{"image": "images*/*_img.nii.gz", "regex": r"(?P<case>c\d+)_img",
             "label": "{dir}/{case}_seg.nii.gz", "id": "{case}"}]  # fmt: skip
    params = {"volumes": vols, "modality": "mr", "spacing": [1, 1, 1],
              "crop": {"labels": [1, 2], "margin": 1},
              "split_from_dir": {"imagesTr": "train", "imagesVa": "test"}}  # fmt: skip
    prepare_dataset(entry({"name": "volumes_3d", "params": params}), raw, tmp_path / "p.npz")
    ds = load_prepared(tmp_path / "p.npz")
    rec = ds.meta["recipe"]
    assert rec["official_split"] == {"test": ["c2"], "train": ["c0", "c1"]}
    for k in range(3):
        info = rec["volumes"][f"c{k}"]
        # box around raw labels 1 and 2 plus a margin of 1 (numpy bounding box)
        idx = np.argwhere(np.isin(lab, [1, 2]))
        box = [int(hi - lo + 1 + 2) for lo, hi in zip(idx.min(0), idx.max(0), strict=True)]
        assert info["shape"] == box == [6, 6, 7], (info["shape"], box)
        s = info["shape"]
        vol = ds.images[k, 0, : s[0], : s[1], : s[2]].astype(np.float64)
        nz = vol[vol != 0]
        assert abs(nz.mean()) < 1e-4 and abs(nz.std() - 1.0) < 1e-3  # per volume, non-zero only


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"modality": "pet"}, "modality must be one of ['ct', 'mr']"),
        ({"spacing": [1, 1]}, "'spacing' must be three positive numbers"),
        ({"clip": [5, 1]}, "clip must be [lo, hi]"),
        ({"crop": "box"}, "crop must be 'nonzero'"),
        ({"zscore": "dataset"}, "zscore must be one of ['volume', 'foreground']"),
        ({"pad_to": [4, 4, 4]}, "larger than pad_to [4, 4, 4]"),
        ({"count": 3}, "expected 3 volumes, got 1"),
        ({"shape": 1}, "unknown recipe parameter(s) ['shape']"),
    ],
)
def test_bad_parameters_name_the_problem(tmp_path: Path, change: dict, fragment: str) -> None:
    raw = tmp_path / "raw"
    _ct_raw(raw, [(10, 12, 8)])
    params = {"volumes": VOLUMES, "modality": "ct", "spacing": None, "clip": [-58, 302]} | change
    with pytest.raises(RecipeError) as err:
        prepare_dataset(entry({"name": "volumes_3d", "params": params}), raw, tmp_path / "p.npz")
    assert fragment in str(err.value) and "vol3d" in str(err.value)


def test_label_on_another_grid_is_refused(tmp_path: Path) -> None:
    import nibabel as nib

    raw = tmp_path / "raw"
    _ct_raw(raw, [(10, 12, 8)])
    lab = nib.load(raw / "c0_seg.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(lab.dataobj), np.diag([1.0, 1.0, 1.0, 1.0])),
             raw / "c0_seg.nii.gz")  # fmt: skip
    params = {"volumes": VOLUMES, "modality": "ct", "clip": [-58, 302]}
    with pytest.raises(RecipeError, match="different affines"):
        prepare_dataset(entry({"name": "volumes_3d", "params": params}), raw, tmp_path / "p.npz")
