"""Preparation recipes on tiny fixtures made here (real data runs in the slow workflow test)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from datahelpers import make_chase_like, write_pairs
from PIL import Image

from segbench.data.io import load_prepared
from segbench.data.recipes import PreparedArrays, RecipeError, prepare_dataset
from segbench.data.recipes._common import (
    map_labels,
    param_choice,
    param_list,
    resize_mask,
)
from segbench.data.registry import DatasetEntry


def _entry(recipe: dict, **kw) -> DatasetEntry:  # noqa: ANN003
    base = dict(id="tiny", title="Tiny", access="download", licence="L", citation="C",
                classes=("background", "vessel"), label_map={"threshold": 128}, recipe=recipe)
    base.update(kw)
    return DatasetEntry(**base)


CHASE_SETS = [{
    "images": "**/Image_*.jpg",
    "regex": r"Image_(?P<child>\d\d)(?P<eye>[LR])\.jpg$",
    "mask": "{dir}/Image_{child}{eye}_1stHO.png",
    "id": "chase_{child}{eye}",
    "group": "child_{child}",
}]


def test_paired_2d_chase_like_groups_resize(tmp_path: Path) -> None:
    make_chase_like(tmp_path / "raw" / "nested", children=3, size=(40, 48))
    e = _entry({"name": "paired_2d", "params": {"sets": CHASE_SETS, "size": [32, 32], "count": 6}})
    out = tmp_path / "p" / "tiny.npz"
    prepare_dataset(e, tmp_path / "raw", out, source={"archive_sha256": "x"})
    ds = load_prepared(out)
    assert ds.images.shape == (6, 3, 32, 32) and ds.masks.shape == (6, 32, 32)
    assert ds.images.dtype == np.float32 and ds.images.min() >= 0 and ds.images.max() <= 1
    assert ds.ids == sorted(ds.ids) == ["chase_01L", "chase_01R", "chase_02L", "chase_02R", "chase_03L", "chase_03R"]
    assert ds.groups == ["child_01", "child_01", "child_02", "child_02", "child_03", "child_03"]
    assert set(np.unique(ds.masks)) == {0, 1}
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["class_names"] == ["background", "vessel"] and meta["in_channels"] == 3
    assert meta["source"] == {"archive_sha256": "x"} and meta["recipe"]["name"] == "paired_2d"
    assert meta["recipe"]["source_sizes_hw"] == [[40, 48]]


def test_paired_2d_tiles_and_value_map(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    rng = np.random.default_rng(1)
    lab = np.full((64, 80), 255, np.uint8)
    lab[:16] = 159
    lab[16:20] = 32
    write_pairs(raw, [(rng.integers(0, 255, (64, 80), dtype=np.uint8), lab) for _ in range(2)], "labels{k:02d}.png")
    e = _entry(
        {"name": "paired_2d", "params": {
            "sets": [{"images": "img/*.tif", "regex": r"(?P<n>\d\d)\.tif$", "mask": "lab/labels{n}.png", "id": "s_{n}"}],
            "image_mode": "L", "tile": [32, 32]}},
        classes=("membrane", "glia", "intracellular"),
        label_map={"values": {"32": 0, "159": 1, "255": 2}},
    )
    arr = prepare_dataset(e, raw, tmp_path / "t.npz")
    # 64x80 -> 2 x 2 full tiles per image (the 16-pixel border column is dropped).
    assert arr.images.shape == (8, 1, 32, 32)
    assert arr.ids[:4] == ["s_00_r0c0", "s_00_r0c1", "s_00_r1c0", "s_00_r1c1"]
    assert arr.groups == ["s_00"] * 4 + ["s_01"] * 4
    assert (arr.masks[0, :16] == 1).all() and (arr.masks[0, 16:20] == 0).all() and (arr.masks[2] == 2).all()


def test_paired_2d_busi_like_union_of_masks(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "benign").mkdir(parents=True)
    (raw / "normal").mkdir()
    img = np.zeros((20, 20, 3), np.uint8)
    Image.fromarray(img).save(raw / "benign" / "benign (1).png")
    Image.fromarray(img).save(raw / "normal" / "normal (1).png")
    m0 = np.zeros((20, 20), np.uint8)
    m0[:5] = 255
    m1 = np.zeros((20, 20), np.uint8)
    m1[-5:] = 255
    Image.fromarray(m0).save(raw / "benign" / "benign (1)_mask.png")
    Image.fromarray(m1).save(raw / "benign" / "benign (1)_mask_1.png")
    Image.fromarray(m1).save(raw / "normal" / "normal (1)_mask.png")
    sets = [{"images": "*/*).png", "regex": r"^(?P<cls>benign|malignant)/(?P=cls) \((?P<n>\d+)\)\.png$",
             "mask": "{cls}/{cls} ({n})_mask*.png", "id": "{cls}_{n:0>3}"}]
    arr = prepare_dataset(_entry({"name": "paired_2d", "params": {"sets": sets, "count": 1}}), raw, tmp_path / "b.npz")
    assert arr.ids == ["benign_001"]
    assert arr.masks[0].sum() == 10 * 20


def test_paired_2d_errors_name_the_problem(tmp_path: Path) -> None:
    make_chase_like(tmp_path / "raw", children=1)
    (tmp_path / "raw" / "Image_01R_1stHO.png").unlink()
    e = _entry({"name": "paired_2d", "params": {"sets": CHASE_SETS}})
    with pytest.raises(RecipeError, match="Image_01R.jpg has no mask"):
        prepare_dataset(e, tmp_path / "raw", tmp_path / "x.npz")
    make_chase_like(tmp_path / "raw2", children=1)
    e2 = _entry({"name": "paired_2d", "params": {"sets": CHASE_SETS, "count": 28}})
    with pytest.raises(RecipeError, match="expected 28 image/mask pairs, found 2"):
        prepare_dataset(e2, tmp_path / "raw2", tmp_path / "x.npz")
    e3 = _entry({"name": "paired_2d", "params": {"sets": CHASE_SETS, "sise": 3}})
    with pytest.raises(RecipeError, match=r"unknown recipe parameter\(s\) \['sise'\]"):
        prepare_dataset(e3, tmp_path / "raw2", tmp_path / "x.npz")
    e4 = replace(e, label_map={"values": {"0": 0}})
    with pytest.raises(RecipeError, match=r"label values \[255\] are not in the registry's label_map"):
        prepare_dataset(e4, tmp_path / "raw2", tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(RecipeError, match="no preparation recipe"):
        prepare_dataset(replace(e, recipe=None), tmp_path / "raw2", tmp_path / "x.npz")


def test_map_labels_and_nearest_resize() -> None:
    raw = np.array([[0, 127, 128, 255]])
    assert map_labels(raw, {"threshold": 128}, 2, "w").tolist() == [[0, 0, 1, 1]]
    assert map_labels(np.array([[0, 2]]), {}, 3, "w").tolist() == [[0, 2]]
    with pytest.raises(RecipeError, match="not class indices 0..1"):
        map_labels(np.array([[0, 2]]), {}, 2, "w")
    m = np.zeros((8, 8), np.uint8)
    m[::2, ::2] = 3
    assert set(np.unique(resize_mask(m, (5, 3)))) <= {0, 3}


def test_nifti_slices(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    img = rng.uniform(-1500, 1500, (16, 12, 5)).astype(np.float32)
    lab = np.zeros((16, 12, 5), np.uint8)
    lab[2:6, 3:7, 1] = 1
    lab[8:10, 1:3, 3] = 3
    lab[12:14, 8:10, 3] = 2  # every declared class occurs (prepare_dataset checks it)
    nib.save(nib.Nifti1Image(img, np.eye(4)), raw / "tr_im.nii.gz")
    nib.save(nib.Nifti1Image(lab, np.eye(4)), raw / "tr_mask.nii.gz")
    params = {"volumes": [{"image": "tr_im.nii.gz", "label": "tr_mask.nii.gz", "id": "covid"}],
              "window": [-1250, 250], "size": [8, 8], "group_by": "slice", "count": 5}
    e = _entry({"name": "nifti_slices", "params": params},
               classes=("background", "ground_glass", "consolidation", "pleural_effusion"),
               label_map={"values": {"0": 0, "1": 1, "2": 2, "3": 3}})
    arr = prepare_dataset(e, raw, tmp_path / "c.npz")
    assert arr.images.shape == (5, 1, 8, 8) and arr.masks.shape == (5, 8, 8)
    assert arr.ids == [f"covid_s{k:03d}" for k in range(5)] and arr.groups == arr.ids
    assert arr.images.min() >= 0 and arr.images.max() <= 1
    assert arr.masks[1].any() and arr.masks[3].max() == 3 and not arr.masks[0].any()
    # Transposed slices: rows follow NIfTI y (12), columns x (16) before resizing.
    params2 = dict(params, size=None, keep="foreground", channels=3, group_by="volume", count=None)
    arr2 = prepare_dataset(replace(e, recipe={"name": "nifti_slices", "params": params2}), raw, tmp_path / "d.npz")
    assert arr2.images.shape == (2, 3, 12, 16) and arr2.ids == ["covid_s001", "covid_s003"]
    assert arr2.groups == ["covid", "covid"]


def test_param_choice_list_and_from_samples_name_key_allowed_values_and_value() -> None:
    """The shared recipe parameter readers: default when absent, else one error naming the
    dataset (``where``), the key, what is allowed and the value given."""
    assert param_choice({}, "axis", (0, 1, 2), 2, "w") == 2
    assert param_choice({"image_mode": "L"}, "image_mode", ("RGB", "L"), "RGB", "w") == "L"
    with pytest.raises(RecipeError, match=r"^w: axis must be 0, 1 or 2, got 3$"):
        param_choice({"axis": 3}, "axis", (0, 1, 2), 2, "w")
    with pytest.raises(RecipeError, match=r"^w: image_mode must be 'RGB' or 'L', got 'CMYK'$"):
        param_choice({"image_mode": "CMYK"}, "image_mode", ("RGB", "L"), "RGB", "w")
    assert param_list({}, "roi_names", "w", default=["Mass"], of=str) == ["Mass"]
    for value, match in [(None, r"^w: sets must be a non-empty list, got None$"),
                         ([], r"^w: sets must be a non-empty list, got \[\]$")]:
        with pytest.raises(RecipeError, match=match):
            param_list({"sets": value}, "sets", "w")
    with pytest.raises(RecipeError, match=r"^w: lesions must be a non-empty list of strings, got \['a', 1\]$"):
        param_list({"lesions": ["a", 1]}, "lesions", "w", of=str)
    arr = PreparedArrays.from_samples([np.zeros((1, 2, 3))] * 2, [np.ones((2, 3), np.int64)] * 2, ["a", "b"], None,
                                      info={}, raw_values={}, what="slices", where="w")
    assert arr.images.shape == (2, 1, 2, 3) and arr.images.dtype == np.float32 and arr.masks.dtype == np.uint8
    assert arr.ids == ["a", "b"] and arr.groups is None
    with pytest.raises(RecipeError, match=r"^w: slices differ in size \[\(1, 2, 2\), \(1, 2, 3\)\]; set the 'size' parameter$"):
        PreparedArrays.from_samples([np.zeros((1, 2, 3)), np.zeros((1, 2, 2))], [np.zeros((2, 3)), np.zeros((2, 2))],
                                    ["a", "b"], None, info={}, raw_values={}, what="slices", where="w")


def test_paired_2d_bad_image_mode_names_dataset_key_and_value(tmp_path: Path) -> None:
    write_pairs(tmp_path / "raw", [(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))])
    e = _entry({"name": "paired_2d", "params": {"sets": [{"images": "img/*.tif", "mask": "lab/{stem}.png"}],
                                                "image_mode": "CMYK"}})
    with pytest.raises(RecipeError, match=r"dataset 'tiny' \(recipe paired_2d\): image_mode must be 'RGB' or 'L', got 'CMYK'"):
        prepare_dataset(e, tmp_path / "raw", tmp_path / "t.npz")
