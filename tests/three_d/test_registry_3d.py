"""The 3D registry entries: facts the papers fix, and their recipes on tiny copies of each
dataset's documented layout (file names, label values) through the real prepare_dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from helpers3d import write_case

from segbench.data.io import load_prepared
from segbench.data.recipes import RECIPES, prepare_dataset
from segbench.data.registry import load_registry

REPO = Path(__file__).resolve().parents[2]
IDS_3D = ("brats_mets", "kits23", "msd_pancreas", "msd_liver", "amos22")


@pytest.fixture(scope="module")
def registry():  # noqa: ANN201
    return load_registry(REPO / "config" / "datasets.yaml", recipe_names=RECIPES.names())


def test_entries_and_paper_facts(registry) -> None:  # noqa: ANN001
    for name in IDS_3D:
        e = registry[name]
        assert e.recipe_name == "volumes_3d" and e.licence and e.citation and e.homepage, name
        assert e.access == "download" or e.instructions, name
    p = {n: registry[n].recipe_params for n in IDS_3D}
    # paper 002 App. D l.321-325
    assert p["brats_mets"]["spacing"] == 1.0 and p["brats_mets"]["modality"] == "mr"
    assert p["kits23"]["spacing"] == 1.5 and p["kits23"]["clip"] == [-58, 302]
    assert registry["brats_mets"].label_map == {"values": {"0": 0, "1": 1, "2": 0, "3": 1, "4": 0}}
    assert registry["kits23"].label_map == {"values": {"0": 0, "1": 0, "2": 1, "3": 0}}
    # paper 003 l.703-718 and Table E.8: AMOS CT, 15 organs, official train / validation
    amos = registry["amos22"]
    assert amos.num_classes == 16 and amos.classes[5] == "esophagus"
    assert p["amos22"]["split_from_dir"] == {"imagesTr": "train", "imagesVa": "test"}
    assert registry["msd_pancreas"].classes == ("background", "pancreas", "tumour")


def _layout(name: str, raw: Path, n_classes: int) -> None:
    """Two cases in the dataset's layout (plus files the recipe must skip)."""
    shape = (8, 9, 7)
    aff = np.diag([1.2, 1.2, 2.0, 1.0])
    rng = np.random.default_rng(0)
    max_raw = {"brats_mets": 4, "kits23": 3}.get(name, n_classes - 1)

    def pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
        img = rng.normal(100.0, 30.0, size=shape) + 1.0
        lab = np.zeros(shape, dtype=np.uint8)
        for v in range(1, max_raw + 1):  # every raw value somewhere, one voxel column each
            lab[1 + (v - 1) % 6, 1 + (v - 1) // 6, 2 + seed] = v
        return img, lab

    if name == "brats_mets":
        for k in range(2):
            c = f"BraTS-MET-{k:05d}-000"
            write_case(raw / c, c, *pair(k), aff, image_name="{case}-t1c.nii.gz",
                       label_name="{case}-seg.nii.gz")  # fmt: skip
            write_case(raw / c, c, *pair(k), aff, image_name="{case}-t2f.nii.gz",
                       label_name="{case}-ignored.nii.gz")  # fmt: skip
    elif name == "kits23":
        for k in range(2):
            write_case(raw / f"case_{k:05d}", "", *pair(k), aff, image_name="imaging.nii.gz",
                       label_name="segmentation.nii.gz")  # fmt: skip
    elif name.startswith("msd_"):
        stem = name.removeprefix("msd_")
        (raw / "labelsTr").mkdir(parents=True)
        for k in range(2):
            img, lab = pair(k)
            write_case(raw / "imagesTr", f"{stem}_{k:03d}", img, lab, aff,
                       image_name="{case}.nii.gz", label_name="../labelsTr/{case}.nii.gz")  # fmt: skip
        (raw / "imagesTr" / f"._{stem}_000.nii.gz").write_bytes(b"\0\5\26\7")  # macOS junk
    else:  # amos22: CT ids < 500 in imagesTr / imagesVa; an MRI id the recipe must skip
        for d in ("labelsTr", "labelsVa"):
            (raw / d).mkdir(parents=True)
        for part, n in (("Tr", "0001"), ("Va", "0100"), ("Tr", "0507")):
            write_case(raw / f"images{part}", f"amos_{n}", *pair(int(n) % 2), aff,
                       image_name="{case}.nii.gz", label_name=f"../labels{part}/{{case}}.nii.gz")  # fmt: skip


@pytest.mark.parametrize("name", IDS_3D)
def test_recipe_on_the_documented_layout(registry, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    e = registry[name]
    params = {k: v for k, v in e.recipe_params.items() if k != "count"}
    if params.get("crop") != "nonzero":
        params["crop"] = {"labels": params["crop"]["labels"], "margin": 1}  # tiny volumes
    e = dataclasses.replace(e, recipe={"name": "volumes_3d", "params": params})
    raw = tmp_path / "raw"
    _layout(name, raw, e.num_classes)
    prepare_dataset(e, raw, tmp_path / f"{name}.npz")
    ds = load_prepared(tmp_path / f"{name}.npz")
    assert len(ds.ids) == 2 and ds.images.ndim == 5, ds.ids
    want = params["spacing"] if isinstance(params["spacing"], list) else [params["spacing"]] * 3
    for info in ds.meta["recipe"]["volumes"].values():
        assert info["spacing"] == pytest.approx(want) and info["source_spacing"] == [1.2, 1.2, 2.0]
    if name == "amos22":
        assert ds.meta["recipe"]["official_split"] == {
            "test": ["amos_0100"],
            "train": ["amos_0001"],
        }
