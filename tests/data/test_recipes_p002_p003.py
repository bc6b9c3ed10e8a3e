"""Recipes of issue 19 on fixtures made here: ``inbreast_dicom`` (paper 002 l.317, INbreast
DICOM + OsiriX plist XML) and ``lesion_folders`` (paper 003 l.690-697, Retinal Lesions), each
through :func:`prepare_dataset` with the registry's own parameters (only the size scaled down) and
once through the real Snakemake rule ``prepare_dataset`` (slow).

Conventions compared: polygon rasterisation by pixel centres, pixel ``(r, c)`` centred at
``(x, y) = (c, r)``, even-odd rule with half-open rows and columns (hand-computed masks below).
"""

from __future__ import annotations

import copy
import json
import plistlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from datahelpers import REPO, run_cmd, snakemake_cmd
from PIL import Image

from segbench.data.io import load_prepared
from segbench.data.recipes import RECIPES, RecipeError, prepare_dataset
from segbench.data.recipes.inbreast import rasterize_polygon
from segbench.data.recipes.lesion_folders import RETINAL_LESIONS
from segbench.data.registry import load_registry
from segbench.splits import make_splits

pydicom = pytest.importorskip("pydicom")

REGISTRY = REPO / "config" / "datasets.yaml"
STUDIES = REPO / "config" / "studies"


def _registry():  # noqa: ANN202
    return load_registry(REGISTRY, recipe_names=RECIPES.names())


def _with_params(entry, **params):  # noqa: ANN001, ANN003, ANN202
    """``entry`` with some recipe parameters replaced (the rest as the registry has them)."""
    return replace(entry, recipe={"name": entry.recipe_name, "params": {**entry.recipe_params, **params}})


# ----------------------------------------------------------------------------- INbreast fixtures


def write_dicom(path: Path, pixels: np.ndarray, *, bits: int = 14, photometric: str = "MONOCHROME2") -> None:
    """A minimal uint16 mammogram-like DICOM file (explicit VR little endian)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.Rows, ds.Columns = (int(v) for v in pixels.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_xml(path: Path, rois: list[tuple[str, list[tuple[float, float]]]]) -> None:
    """An OsiriX-style plist: Images[0].ROIs[] with Name and Point_px "(x, y)" strings."""
    doc = {"Images": [{
        "ImageIndex": 0,
        "NumberOfROIs": len(rois),
        "ROIs": [{"Name": name, "NumberOfPoints": len(pts), "Point_px": [f"({x:.6f}, {y:.6f})" for x, y in pts],
                  "Point_mm": ["(0, 0, 0)"] * len(pts)} for name, pts in rois],
    }]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(plistlib.dumps(doc, fmt=plistlib.FMT_XML))


H, W = 48, 64  # fixture DICOMs: 48 rows x 64 columns
RECT = [(10.0, 5.0), (20.0, 5.0), (20.0, 12.0), (10.0, 12.0)]  # rows 5..11, cols 10..19
TRI = [(40.0, 30.0), (46.0, 30.0), (40.0, 36.0)]  # row 30+k: cols 40 .. 45-k (k = 0..5)


def rect_mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[5:12, 10:20] = 1
    return m


def tri_mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    for k in range(6):
        m[30 + k, 40 : 46 - k] = 1
    return m


def make_inbreast(raw: Path) -> dict[str, np.ndarray]:
    """4 DICOMs: two with masses (one right breast), one with a calcification only, one without
    XML; returns the expected native-size mask of each kept image."""
    rng = np.random.default_rng(0)
    files = {
        "20586908": ("6c613a14b80a8591", "R", "CC", [("Mass", RECT)]),
        "20586934": ("6c613a14b80a8591", "L", "ML", [("Mass", TRI), ("Calcification", RECT)]),
        "22670094": ("2f2c0f6b1c0ff55a", "L", "CC", [("Calcification", TRI), ("Cluster", RECT)]),
        "24055274": ("93e9a4f9c0a7f8a2", "R", "ML", None),
    }
    for fid, (patient, side, view, rois) in files.items():
        write_dicom(raw / "AllDICOMs" / f"{fid}_{patient}_MG_{side}_{view}_ANON.dcm",
                    rng.integers(0, 2**14, (H, W)).astype(np.uint16))
        if rois is not None:
            write_xml(raw / "AllXML" / f"{fid}.xml", rois)
    (raw / "INbreast.csv").write_text("File Name;Laterality\n")  # metadata present, not read
    return {"20586908": rect_mask(), "20586934": tri_mask()}


# ----------------------------------------------------------------------------- rasterisation


def test_rasterize_polygon_matches_hand_computed_masks() -> None:
    assert np.array_equal(rasterize_polygon(np.array(RECT), (H, W)), rect_mask().astype(bool))
    assert np.array_equal(rasterize_polygon(np.array(TRI), (H, W)), tri_mask().astype(bool))
    # half-integer corners: centres 2..5 (x) and 3..4 (y) lie inside
    half = rasterize_polygon(np.array([(1.5, 2.5), (5.5, 2.5), (5.5, 4.5), (1.5, 4.5)]), (8, 8))
    expected = np.zeros((8, 8), bool)
    expected[3:5, 2:6] = True
    assert np.array_equal(half, expected)
    # concave L shape (x, y): rows 0..3 cols 0..1, rows 2..3 cols 2..3
    ell = rasterize_polygon(np.array([(0, 0), (2, 0), (2, 2), (4, 2), (4, 4), (0, 4)], float), (6, 6))
    expected = np.zeros((6, 6), bool)
    expected[0:4, 0:2] = True
    expected[2:4, 2:4] = True
    assert np.array_equal(ell, expected)
    # clipped at the border; fewer than 3 points is empty
    clip = rasterize_polygon(np.array([(-5.0, -5.0), (3.0, -5.0), (3.0, 2.0), (-5.0, 2.0)]), (4, 4))
    expected = np.zeros((4, 4), bool)
    expected[0:2, 0:3] = True
    assert np.array_equal(clip, expected)
    assert not rasterize_polygon(np.array([(0.0, 0.0), (5.0, 5.0)]), (4, 4)).any()


# ----------------------------------------------------------------------------- INbreast recipe


def test_inbreast_registry_recipe_keeps_mass_images_only(tmp_path: Path) -> None:
    reg = _registry()["inbreast"]
    assert reg.recipe_name == "inbreast_dicom" and reg.classes == ("background", "mass")
    assert reg.recipe_params["size"] == [512, 512] and reg.recipe_params["count"] == 107
    expected = make_inbreast(tmp_path / "raw")
    e = _with_params(reg, size=None, count=2)
    out = tmp_path / "inbreast.npz"
    prepare_dataset(e, tmp_path / "raw", out)
    ds = load_prepared(out)
    assert ds.ids == ["20586908", "20586934"]  # the calcification-only and XML-less images dropped
    assert ds.groups == ds.ids  # group_by: image (paper 002 counts images)
    assert ds.images.shape == (2, 1, H, W) and ds.masks.shape == (2, H, W)
    for k, fid in enumerate(ds.ids):
        assert np.array_equal(ds.masks[k], expected[fid]), fid  # no flip by default
    meta = json.loads(out.with_suffix(".json").read_text())
    rec = meta["recipe"]
    assert rec["dropped"] == {"22670094": "no ROI named Mass", "24055274": "no XML"}
    assert rec["roi_names_met"] == {"Calcification": 2, "Cluster": 1, "Mass": 2}
    assert rec["samples"]["20586908"]["side"] == "R" and rec["samples"]["20586908"]["patient"] == "6c613a14b80a8591"
    # 14-bit pixels scaled by 2**14 - 1 (fixed, not per image)
    raw = pydicom.dcmread(next((tmp_path / "raw" / "AllDICOMs").glob("20586908_*.dcm"))).pixel_array
    assert np.allclose(ds.images[0, 0], raw / (2**14 - 1), atol=1e-6)

    with pytest.raises(RecipeError, match="expected 107 images with a Mass ROI, found 2"):
        prepare_dataset(_with_params(reg, size=None), tmp_path / "raw", tmp_path / "x.npz")


def test_inbreast_flip_resize_groups_and_errors(tmp_path: Path) -> None:
    reg = _registry()["inbreast"]
    expected = make_inbreast(tmp_path / "raw")
    flipped = prepare_dataset(_with_params(reg, size=None, count=2, flip_right=True, group_by="patient"),
                              tmp_path / "raw", tmp_path / "f.npz")
    assert np.array_equal(flipped.masks[0], expected["20586908"][:, ::-1])  # right breast mirrored
    assert np.array_equal(flipped.masks[1], expected["20586934"])  # left breast unchanged
    assert flipped.groups == ["6c613a14b80a8591"] * 2  # both views of one patient
    assert flipped.info["samples"]["20586908"]["flipped"] is True

    small = prepare_dataset(_with_params(reg, size=[24, 32], count=2), tmp_path / "raw", tmp_path / "s.npz")
    assert small.images.shape == (2, 1, 24, 32) and set(np.unique(small.masks)) == {0, 1}
    # nearest neighbour: rows and columns 1, 3, 5, ... of the native mask (PIL samples the centre (2i + 1) of each 2x2 block)
    assert np.array_equal(small.masks[0], expected["20586908"][1::2, 1::2])

    for params, match in [
        ({"group_by": "case"}, "group_by must be 'image' or 'patient'"),
        ({"flip_right": "yes"}, "flip_right must be true or false"),
        ({"roi_names": []}, "roi_names must be a non-empty list"),
        ({"spacing": 1}, r"unknown recipe parameter\(s\) \['spacing'\]"),
    ]:
        with pytest.raises(RecipeError, match=match):
            prepare_dataset(_with_params(reg, **params), tmp_path / "raw", tmp_path / "e.npz")
    bad = tmp_path / "raw" / "AllDICOMs" / "scan01.dcm"
    write_dicom(bad, np.zeros((4, 4), np.uint16))
    with pytest.raises(RecipeError, match="'AllDICOMs/scan01.dcm' is not in the INbreast form"):
        prepare_dataset(_with_params(reg, size=None), tmp_path / "raw", tmp_path / "e.npz")
    bad.unlink()
    (tmp_path / "raw" / "AllXML" / "20586908.xml").write_text("<plist><dict><key>Images</key>")
    with pytest.raises(RecipeError, match="cannot read INbreast XML"):
        prepare_dataset(_with_params(reg, size=None), tmp_path / "raw", tmp_path / "e.npz")


def test_inbreast_107_images_give_the_papers_22_17_split(tmp_path: Path) -> None:
    """Paper 002 l.317: 107 images with masses, 22 test, 17 validation, through the registry's
    count check and the study's split settings (config/studies/paper002.yaml)."""
    raw = tmp_path / "raw"
    for k in range(110):
        fid = f"{50000000 + k}"
        write_dicom(raw / "AllDICOMs" / f"{fid}_{k // 2:016x}_MG_{'LR'[k % 2]}_CC_ANON.dcm",
                    np.full((8, 8), 100 * k, np.uint16))
        if k < 107:  # three images without a mass outline
            write_xml(raw / "AllXML" / f"{fid}.xml", [("Mass", [(1, 1), (5, 1), (5, 6), (1, 6)])])
    reg = _registry()["inbreast"]
    ds = prepare_dataset(_with_params(reg, size=[8, 8]), raw, tmp_path / "inbreast.npz")  # count: 107
    assert len(ds.ids) == 107
    study = yaml.safe_load((STUDIES / "paper002.yaml").read_text())
    s = make_splits(ds.ids, study["folds"], [1.0], seed=study["split_seed"], val_fraction=study["val_fraction"],
                    groups=ds.groups, dataset="inbreast")
    fold = s["folds"][study["run_folds"][0]]
    assert (len(fold["train"]), len(fold["val"]), len(fold["test"])) == (68, 17, 22)


# ----------------------------------------------------------------------------- Retinal Lesions


def make_retinal(raw: Path, side: int = 16) -> dict[str, np.ndarray]:
    """4 images: lesions in several files (255 and grey 127), one image with an empty folder and
    one without a folder; returns the expected binary mask of each."""
    rng = np.random.default_rng(1)
    (raw / "images_896x896").mkdir(parents=True)
    masks: dict[str, dict[str, np.ndarray]] = {
        "10003_left": {"microaneurysm": np.zeros((side, side), np.uint8),
                       "hard_exudate": np.zeros((side, side), np.uint8)},
        "10003_right": {"neovascularization": np.zeros((side, side), np.uint8)},
        "10007_left": {},     # folder exists, no file
        "10012_right": None,  # no folder (an image without lesions)
    }
    masks["10003_left"]["microaneurysm"][2:4, 2:4] = 255
    masks["10003_left"]["hard_exudate"][8:12, 6:10] = 255
    masks["10003_left"]["hard_exudate"][0:2, 14:16] = 127  # not AAO-compliant: still lesion
    masks["10003_right"]["neovascularization"][4:12, 4:8] = 127
    expected = {}
    for name, files in masks.items():
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(
            raw / "images_896x896" / f"{name}.jpg", quality=95)
        exp = np.zeros((side, side), np.uint8)
        if files is not None:
            (raw / "lesion_segs_896x896" / name).mkdir(parents=True)
            for lesion, arr in files.items():
                Image.fromarray(arr).save(raw / "lesion_segs_896x896" / name / f"{lesion}.png")
                exp[arr > 0] = 1
        expected[name] = exp
    (raw / "dr_grades.csv").write_text("image id,kaggle label,our label\n")
    return expected


def test_retinal_lesions_registry_recipe_merges_all_lesions(tmp_path: Path) -> None:
    reg = _registry()["retinal_lesions"]
    assert reg.recipe_name == "lesion_folders" and reg.classes == ("background", "lesion")
    assert tuple(reg.recipe_params["lesions"]) == RETINAL_LESIONS
    assert reg.recipe_params["size"] == [512, 512] and reg.recipe_params["count"] == 1593
    assert dict(reg.label_map) == {"values": {"0": 0, "127": 1, "255": 1}}
    expected = make_retinal(tmp_path / "raw")
    out = tmp_path / "retinal_lesions.npz"
    prepare_dataset(_with_params(reg, size=None, count=4), tmp_path / "raw", out)
    ds = load_prepared(out)
    assert ds.ids == ["10003_left", "10003_right", "10007_left", "10012_right"] and ds.groups == ds.ids
    assert ds.images.shape == (4, 3, 16, 16)
    for k, name in enumerate(ds.ids):
        assert np.array_equal(ds.masks[k], expected[name]), name
    rec = json.loads(out.with_suffix(".json").read_text())["recipe"]
    assert rec["without_lesion_files"] == ["10007_left", "10012_right"]
    assert rec["mask_files_per_lesion"]["hard_exudate"] == 1 and rec["mask_files_per_lesion"]["fibrous_proliferation"] == 0

    small = prepare_dataset(_with_params(reg, size=[8, 8], count=4), tmp_path / "raw", tmp_path / "s.npz")
    assert small.images.shape == (4, 3, 8, 8)
    assert np.array_equal(small.masks[1], expected["10003_right"][1::2, 1::2])  # nearest neighbour

    # only the listed lesions are merged
    ma = prepare_dataset(_with_params(reg, size=None, count=4, lesions=list(RETINAL_LESIONS[:3]) + ["neovascularization"]),
                         tmp_path / "raw", tmp_path / "m.npz")
    assert np.array_equal(ma.masks, np.stack([expected[i] for i in ds.ids]))
    with pytest.raises(RecipeError, match=r"holds mask files \['hard_exudate.png'\]"):
        prepare_dataset(_with_params(reg, size=None, count=4, lesions=["microaneurysm", "neovascularization"]),
                        tmp_path / "raw", tmp_path / "e.npz")


def test_retinal_lesions_layout_errors(tmp_path: Path) -> None:
    reg = _registry()["retinal_lesions"]
    make_retinal(tmp_path / "raw")
    with pytest.raises(RecipeError, match="expected 1593 images, found 4"):
        prepare_dataset(_with_params(reg, size=None), tmp_path / "raw", tmp_path / "e.npz")
    with pytest.raises(RecipeError, match="must contain {lesion}"):
        prepare_dataset(_with_params(reg, masks="lesion_segs_896x896/{stem}.png"), tmp_path / "raw", tmp_path / "e.npz")
    odd = np.zeros((16, 16), np.uint8)
    odd[0, 0] = 200
    Image.fromarray(odd).save(tmp_path / "raw" / "lesion_segs_896x896" / "10007_left" / "cotton_wool_spots.png")
    with pytest.raises(RecipeError, match=r"label values \[200\] are not in the registry's label_map"):
        prepare_dataset(_with_params(reg, size=None, count=4), tmp_path / "raw", tmp_path / "e.npz")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(
        tmp_path / "raw" / "lesion_segs_896x896" / "10007_left" / "cotton_wool_spots.png")
    with pytest.raises(RecipeError, match=r"is \[8, 8\] but its image"):
        prepare_dataset(_with_params(reg, size=None, count=4), tmp_path / "raw", tmp_path / "e.npz")


def test_retinal_lesions_study_split_is_70_10_20() -> None:
    """Paper 003 l.695-697: 70 / 10 / 20 of 1593 images with the study's per-dataset settings."""
    study = yaml.safe_load((STUDIES / "paper003.yaml").read_text())
    rl = study["datasets"]["retinal_lesions"]
    ids = [f"{10000 + k}_{'left' if k % 2 else 'right'}" for k in range(1593)]
    s = make_splits(ids, rl["folds"], [1.0], seed=study["split_seed"], val_fraction=rl["val_fraction"],
                    dataset="retinal_lesions")
    fold = s["folds"][study["run_folds"][0]]
    assert (len(fold["train"]), len(fold["val"]), len(fold["test"])) == (1114, 160, 319)


# ----------------------------------------------------------------------------- the real rule


@pytest.mark.slow
def test_prepare_dataset_rule_runs_both_recipes(tmp_path: Path) -> None:
    """Snakemake runs rule prepare_dataset (workflow/rules/download.smk, scripts/prepare.py) for
    both manual entries on fixture raw folders, with the registry entries scaled down."""
    doc = yaml.safe_load(REGISTRY.read_text())
    entries = {k: copy.deepcopy(doc["datasets"][k]) for k in ("inbreast", "retinal_lesions")}
    entries["inbreast"]["recipe"]["params"].update(size=[24, 32], count=2)
    entries["inbreast"]["expect"] = [{"glob": "AllDICOMs/*.dcm", "count": 4}, {"glob": "AllXML/*.xml", "min": 2}]
    entries["retinal_lesions"]["recipe"]["params"].update(size=[8, 8], count=4)
    entries["retinal_lesions"]["expect"] = [{"glob": "images_896x896/*.jpg", "count": 4}]
    reg = tmp_path / "datasets.yaml"
    reg.write_text(yaml.safe_dump({"version": doc["version"], "datasets": entries}))
    wd = tmp_path / "wd"
    ib = make_inbreast(wd / "data" / "raw" / "inbreast")
    rl = make_retinal(wd / "data" / "raw" / "retinal_lesions")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"download": {"registry": str(reg)}}))
    targets = ("data/prepared/inbreast.npz", "data/prepared/retinal_lesions.npz")
    res = run_cmd(snakemake_cmd(wd, cfg, *targets), cwd=tmp_path, env={"SEGBENCH_OFFLINE": "1"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    a = load_prepared(wd / targets[0])
    assert a.ids == ["20586908", "20586934"] and a.images.shape == (2, 1, 24, 32)
    assert np.array_equal(a.masks[1], ib["20586934"][1::2, 1::2])
    b = load_prepared(wd / targets[1])
    assert b.ids == sorted(rl) and b.images.shape == (4, 3, 8, 8)
    assert np.array_equal(b.masks[0], rl["10003_left"][1::2, 1::2])
    meta = json.loads((wd / "data/prepared/inbreast.json").read_text())
    assert meta["recipe"]["name"] == "inbreast_dicom" and meta["source"]["registry_id"] == "inbreast"
