"""Paper protocols the recipes materialise (issue #15, "Data protocol"):

- paper 000 (Yokoi & Hotta, Sec. 4.1, l.127), Drosophila: "48 training patches (multiple random
  crops per image), 16 validation patches (each image divided into 16 non-overlapping patches),
  and 16 test patches", five-fold CV: ``paired_2d``'s ``train_crops`` + ``split`` and the registry
  entry ``drosophila_vnc_p000``;
- paper 004 (Xu et al., Table 1 l.132-136), KiTS19 / NIH 2D slice sets: ``nifti_slices``'s
  ``slices`` option.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from datahelpers import REPO, SHARED, write_pairs
from PIL import Image

from segbench.data.io import load_prepared
from segbench.data.recipes import RecipeError, prepare_dataset
from segbench.data.registry import DatasetEntry, load_registry
from segbench.splits import make_splits, split_options

REGISTRY = REPO / "config" / "datasets.yaml"


def _entry(recipe: dict, **kw) -> DatasetEntry:  # noqa: ANN003
    base = dict(id="tiny", title="Tiny", access="download", licence="L", citation="C",
                classes=("background", "fg"), label_map={"threshold": 128}, recipe=recipe)
    base.update(kw)
    return DatasetEntry(**base)


def _sections(raw: Path, n: int, side: int) -> None:
    """``n`` Drosophila-like sections stack1/raw/NN.tif + stack1/labels/labels000000NN.png."""
    (raw / "stack1" / "raw").mkdir(parents=True)
    (raw / "stack1" / "labels").mkdir(parents=True)
    rng = np.random.default_rng(3)
    values = np.array([0, 32, 128, 159, 191, 223, 255], np.uint8)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(raw / "stack1" / "raw" / f"{k:02d}.tif")
        lab = values[rng.integers(0, len(values), (side, side))]
        Image.fromarray(lab).save(raw / "stack1" / "labels" / f"labels000000{k:02d}.png")


# ----------------------------------------------------------------------------- paper 000


def test_train_crops_are_seeded_fixed_samples_of_their_image(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    rng = np.random.default_rng(0)
    write_pairs(raw, [(rng.integers(0, 256, (64, 64), dtype=np.uint8),
                       rng.integers(0, 2, (64, 64), dtype=np.uint8) * 255) for _ in range(2)])
    params = {"sets": [{"images": "img/*.tif", "regex": r"(?P<n>\d\d)\.tif$", "mask": "lab/{n}.png", "id": "s_{n}"}],
              "image_mode": "L", "tile": [32, 32], "train_crops": {"per_image": 3, "size": [32, 32], "seed": 5},
              "split": {"test_groups": 1, "val_groups": 1, "train_samples": 2}}
    out = tmp_path / "p" / "t.npz"
    arr = prepare_dataset(_entry({"name": "paired_2d", "params": params}), raw, out)
    crops = [f"s_{n}_crop{j}" for n in ("00", "01") for j in range(3)]
    assert arr.images.shape == (8 + 6, 1, 32, 32)
    assert [i for i in arr.ids if "_crop" in i] == crops
    g = dict(zip(arr.ids, arr.groups or [], strict=True))
    assert all(g[c] == c[:4] for c in crops)
    meta = json.loads(out.with_suffix(".json").read_text())["recipe"]
    assert meta["train_only"] == crops and meta["split"] == params["split"]
    assert meta["tiles_per_image"] == 4
    pos = meta["train_crops"]["positions"]
    # Each crop is exactly the image (and mask) window at its recorded position.
    for c in crops:
        img = np.asarray(Image.open(raw / "img" / f"{c[2:4]}.tif"), np.float32) / 255
        lab = (np.asarray(Image.open(raw / "lab" / f"{c[2:4]}.png")) >= 128).astype(np.uint8)
        r, col = pos[c]
        assert 0 <= r <= 32 and 0 <= col <= 32
        k = arr.ids.index(c)
        np.testing.assert_array_equal(arr.images[k, 0], img[r : r + 32, col : col + 32])
        np.testing.assert_array_equal(arr.masks[k], lab[r : r + 32, col : col + 32])
    assert len({tuple(p) for p in pos.values()}) > 1  # random, not one fixed corner
    # Seeded: a rerun is identical; an image's crops do not depend on the other images.
    again = prepare_dataset(_entry({"name": "paired_2d", "params": params}), raw, tmp_path / "q.npz")
    np.testing.assert_array_equal(again.images, arr.images)
    (raw / "img" / "00.tif").unlink()
    alone = prepare_dataset(_entry({"name": "paired_2d", "params": params}), raw, tmp_path / "r.npz")
    np.testing.assert_array_equal(alone.images[alone.ids.index("s_01_crop2")], arr.images[arr.ids.index("s_01_crop2")])
    # The split step reads the protocol from the sidecar.
    assert split_options(load_prepared(out).meta) == {**params["split"], "train_only": crops}


def test_train_crops_and_split_parameters_are_checked(tmp_path: Path) -> None:
    _sections(tmp_path / "raw", 1, 32)
    base = {"sets": [{"images": "stack1/raw/*.tif", "mask": "stack1/labels/labels000000{stem}.png"}],
            "image_mode": "L"}
    cases = [
        ({"train_crops": {"per_image": 0, "size": [8, 8]}}, r"train_crops.per_image must be an int >= 1"),
        ({"train_crops": {"per_image": 2}}, "train_crops needs 'size'"),
        ({"train_crops": {"per_image": 2, "size": [64, 64]}}, r"train crop \[64, 64\] is larger than the image"),
        ({"train_crops": {"per_image": 2, "size": [8, 8], "n": 1}}, r"unknown recipe parameter\(s\) \['n'\]"),
        ({"split": {"test_groups": 1}}, "'test_groups' and 'val_groups' go together"),
    ]
    e = _entry({"name": "paired_2d", "params": base}, label_map={"threshold": 1})
    for extra, msg in cases:
        with pytest.raises(RecipeError, match=msg):
            prepare_dataset(replace(e, recipe={"name": "paired_2d", "params": {**base, **extra}}),
                            tmp_path / "raw", tmp_path / "x.npz")


def _p000_small(registry_params: dict) -> dict:
    """The registry's paper-000 parameters at 1/8 scale (128 px sections, 32 px tiles/crops)."""
    p = json.loads(json.dumps(registry_params))
    p["tile"] = [32, 32]
    p["train_crops"]["size"] = [32, 32]
    return p


def test_registry_drosophila_p000_gives_the_papers_counts(tmp_path: Path) -> None:
    reg = load_registry(REGISTRY)
    e = reg["drosophila_vnc_p000"]
    assert e.raw_id == "drosophila_vnc" and e.classes == reg["drosophila_vnc"].classes
    p = e.recipe_params
    assert p["tile"] == [256, 256] and p["train_crops"]["size"] == [256, 256] and p["count"] == 20
    assert p["split"] == {"test_groups": 1, "val_groups": 1, "train_samples": 48}
    assert "train_crops" not in reg["drosophila_vnc"].recipe_params  # the dataset itself: tiles only
    _sections(tmp_path / "raw", 20, 128)
    small = replace(e, recipe={"name": "paired_2d", "params": _p000_small(p)},
                    label_map={"values": {str(v): 0 for v in (0, 32, 128)} | {"159": 1, "191": 2, "223": 3, "255": 4}})
    out = tmp_path / "drosophila_vnc.npz"
    prepare_dataset(small, tmp_path / "raw", out)
    ds = load_prepared(out)
    assert ds.images.shape == (320 + 60, 1, 32, 32) and len(set(ds.groups or [])) == 20
    s = make_splits(ds.ids, 5, [1, 0.25, 0.125], seed=0, groups=ds.groups, dataset="d", **split_options(ds.meta))
    g = dict(zip(ds.ids, ds.groups or [], strict=True))
    for f in s["folds"]:
        assert (len(f["train"]), len(f["val"]), len(f["test"])) == (48, 16, 16)
        assert {len(f["fractions"][k]) for k in ("0.25", "0.125")} == {12, 6}
        assert all("_crop" in i for i in f["train"]) and not any("_crop" in i for i in f["val"] + f["test"])
        assert set(Counter(g[i] for i in f["train"]).values()) == {2, 3}


@pytest.mark.slow
def test_real_drosophila_p000_prepared_and_split(tmp_path: Path) -> None:
    raw = SHARED / "drosophila_vnc"
    if not (raw / "stack1").is_dir():
        pytest.skip(f"real Drosophila copy not found at {raw}")
    e = load_registry(REGISTRY)["drosophila_vnc_p000"]
    out = tmp_path / "drosophila_vnc.npz"
    prepare_dataset(e, raw, out)
    ds = load_prepared(out)
    assert ds.images.shape == (380, 1, 256, 256)
    s = make_splits(ds.ids, 5, [1, 0.25, 0.125], seed=0, groups=ds.groups, dataset="drosophila_vnc",
                    **split_options(ds.meta))
    assert [(len(f["train"]), len(f["val"]), len(f["test"])) for f in s["folds"]] == [(48, 16, 16)] * 5


# ----------------------------------------------------------------------------- paper 004


def _kits_like(raw: Path) -> None:
    nib = pytest.importorskip("nibabel")
    case = raw / "case_00000"
    case.mkdir(parents=True)
    img = np.random.default_rng(0).uniform(-200, 400, (5, 8, 8)).astype(np.float32)
    lab = np.zeros((5, 8, 8), np.uint8)  # axis 0 = slices (KiTS19 layout)
    lab[1, 2:4, 2:4] = 1                 # kidney only
    lab[2, 2:4, 2:4] = 1                 # kidney + tumour
    lab[2, 5:6, 5:6] = 2
    lab[3, 1:3, 1:3] = 2                 # tumour only
    nib.save(nib.Nifti1Image(img, np.eye(4)), case / "imaging.nii.gz")
    nib.save(nib.Nifti1Image(lab, np.eye(4)), case / "segmentation.nii.gz")


@pytest.mark.parametrize(("slices", "kept"), [
    ({"contains": [1, 2]}, [1, 2, 3]),    # kidney slice set (kidney or tumour present)
    ({"contains": [2]}, [2, 3]),          # tumour slices
    ({"contains": 1}, [1, 2]),            # one raw value
    ("foreground", [2, 3]),               # after the tumour label map
    ("all", [0, 1, 2, 3, 4]),
])
def test_nifti_slice_selection_follows_the_option(tmp_path: Path, slices: object, kept: list[int]) -> None:
    _kits_like(tmp_path / "raw")
    reg = load_registry(REGISTRY)
    tumour = reg["kits19_tumour_2d"]
    params = {**tumour.recipe_params, "size": None, "slices": slices}
    arr = prepare_dataset(replace(tumour, recipe={"name": "nifti_slices", "params": params}),
                          tmp_path / "raw", tmp_path / "k.npz")
    assert arr.ids == [f"case_00000_s{k:03d}" for k in kept]
    # Tumour task labels: only raw 2 is foreground, whatever the selection.
    fg = {k: int(m.sum()) for k, m in zip(kept, arr.masks, strict=True)}
    assert fg == {k: {2: 1, 3: 4}.get(k, 0) for k in kept}


def test_registry_slice_sets_of_paper004() -> None:
    reg = load_registry(REGISTRY)
    assert reg["kits19_kidney_2d"].recipe_params["slices"] == {"contains": [1, 2]}
    assert reg["kits19_tumour_2d"].recipe_params["slices"] == {"contains": [2]}
    assert reg["nih_pancreas_2d"].recipe_params["slices"] == {"contains": [1]}
    for name in ("kits19_kidney_2d", "kits19_tumour_2d", "nih_pancreas_2d"):
        assert "keep" not in reg[name].recipe_params


def test_nifti_slices_option_errors(tmp_path: Path) -> None:
    _kits_like(tmp_path / "raw")
    tumour = load_registry(REGISTRY)["kits19_tumour_2d"]
    for bad, msg in [({"slices": {"contains": []}}, "slices.contains must be a non-empty list"),
                     ({"slices": "kidney"}, "slices must be 'all', 'foreground'"),
                     ({"slices": "all", "keep": "all"}, "not both"),
                     ({"slices": {"contains": [9]}}, r"no slices kept")]:
        params = {**tumour.recipe_params, **bad}
        with pytest.raises(RecipeError, match=msg):
            prepare_dataset(replace(tumour, recipe={"name": "nifti_slices", "params": params}),
                            tmp_path / "raw", tmp_path / "k.npz")
