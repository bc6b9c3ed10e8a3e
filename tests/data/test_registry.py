"""The dataset registry: the committed config/datasets.yaml and the validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from datahelpers import REPO

from segbench.data.manifest import read_manifest
from segbench.data.recipes import RECIPES
from segbench.data.registry import RegistryError, default_manifest_path, load_registry

REGISTRY = REPO / "config" / "datasets.yaml"


@pytest.fixture(scope="module")
def registry():  # noqa: ANN201
    return load_registry(REGISTRY)


def test_committed_registry_loads_with_required_facts(registry) -> None:  # noqa: ANN001
    expected = {
        "drosophila_vnc", "chase_db1", "covid19_ct", "drive", "fives", "inbreast", "kvasir_seg",
        "cvc_clinicdb", "retinal_lesions", "msd_pancreas", "msd_liver", "busi", "kits19",
        "nih_pancreas",
    }
    assert expected <= set(registry)
    for e in registry.values():
        assert e.licence and e.citation and e.title
        if e.access == "manual":
            assert e.instructions, e.id
        for name in e.recipe_params.get("sets", []):
            assert "images" in name
        if e.recipe is not None:
            assert e.recipe_name in RECIPES


def test_pinned_facts_from_the_issue(registry) -> None:  # noqa: ANN001
    chase = registry["chase_db1"].file("CHASEDB1.zip")
    assert chase.sha256 == "bb750b73633492d700e56d91578ee3cdb7e4dbd08279e7465583e9efd26790b6"
    assert chase.size == 2_513_926
    assert chase.urls[0] == "https://researchdata.kingston.ac.uk/96/1/CHASEDB1.zip"
    kv = registry["kvasir_seg"].file("kvasir-seg.zip")
    assert kv.sha256 == "03b30e21d584e04facf49397a2576738fd626815771afbbf788f74a7153478f7"
    dros = registry["drosophila_vnc"]
    assert dros.classes == ("membrane", "glia_extracellular", "mitochondria", "synapse", "intracellular")
    assert dros.label_map["values"] == {"0": 0, "32": 0, "64": 0, "96": 0, "128": 0, "159": 1, "191": 2, "223": 3, "255": 4}


@pytest.mark.parametrize(("dataset", "n"), [("drosophila_vnc", 120), ("drive", 140), ("kvasir_seg", 2001)])
def test_committed_manifests(registry, dataset: str, n: int) -> None:  # noqa: ANN001
    path = default_manifest_path(registry, dataset)
    assert path.is_file()
    assert len(read_manifest(path)) == n


def test_manifests_match_shared_checksums() -> None:
    """The committed manifests equal the SHA256SUMS shipped with the real copies."""
    for name in ("drosophila_vnc", "drive"):
        sums = REPO.parent / "shared" / "datasets" / name / "SHA256SUMS"
        if not sums.is_file():
            pytest.skip(f"{sums} absent")
        from segbench.data.manifest import parse_manifest

        assert read_manifest(REPO / "config" / "manifests" / f"{name}.sha256") == parse_manifest(sums.read_text())


def test_unknown_dataset_suggests(registry) -> None:  # noqa: ANN001
    with pytest.raises(RegistryError, match="Did you mean 'chase_db1'"):
        registry["chase_db"]


def _write(tmp_path: Path, entry: dict) -> Path:
    base = {
        "title": "T", "access": "download", "licence": "L", "citation": "C",
        "classes": ["bg", "fg"], "files": [{"name": "a.zip", "urls": ["http://127.0.0.1/a.zip"]}],
    }
    base.update(entry)
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"tiny": base}}))
    return path


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"access": "maybe"}, "key 'access' must be one of ['download', 'manual'], got 'maybe'"),
        ({"files": [{"name": "a.zip", "urls": ["u"], "sha256": "abc"}]}, "sha256 'abc' is not 64 hex"),
        ({"files": [{"name": "a.zip"}]}, "needs at least one URL"),
        ({"files": [{"name": "../a.zip", "urls": ["u"]}]}, "must be a plain file name"),
        ({"licence": ""}, "key 'licence' must be a non-empty string"),
        ({"licens": "x"}, "did you mean 'licence'"),
        ({"label_map": {0: 0, 255: 2}}, "label_map value 255: 2 is outside the class indices 0..1"),
        ({"recipe": {"name": "pairs_2d"}}, "recipe 'pairs_2d' is not registered"),
        ({"access": "manual", "files": []}, "key 'instructions' must be a non-empty string"),
        ({"raw_from": "nope", "files": []}, "raw_from 'nope' is not a dataset"),
    ],
)
def test_validation_messages(tmp_path: Path, change: dict, fragment: str) -> None:
    path = _write(tmp_path, change)
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_relative_manifest_resolves_next_to_registry(tmp_path: Path) -> None:
    reg = load_registry(_write(tmp_path, {"manifest": "manifests/t.sha256"}))
    assert reg["tiny"].manifest == tmp_path / "manifests" / "t.sha256"
    assert default_manifest_path(reg, "tiny") == tmp_path / "manifests" / "t.sha256"


def test_workflow_data_wiring() -> None:
    from segbench.data.download import WorkflowData
    from segbench.paths import alternation

    cfg = {
        "download": {"registry": str(REGISTRY)},
        "datasets": {"chase": {"source": "registry", "registry_id": "chase_db1"},
                     "synth_cells": {"source": "synthetic"}},
    }
    wd = WorkflowData(cfg)
    assert wd.registry_id("chase") == "chase_db1" and wd.registry_id("drive") == "drive"
    names = wd.prepared_names()
    assert "chase" in names and "drosophila_vnc" in names and "synth_cells" not in names
    assert "inbreast" not in names  # registration only
    assert wd.raw_path("kits19_tumour_2d") == "data/raw/kits19"
    assert wd.download_paths("chase_db1") == ["data/downloads/chase_db1/CHASEDB1.zip"]
    assert wd.download_params("chase_db1", "CHASEDB1.zip")["size"] == 2_513_926
    assert wd.extract_params("drive")["manifest_sha256"] is not None
    assert wd.extract_params("chase_db1")["manifest_sha256"] is None
    assert wd.prepare_params("chase")["registry_id"] == "chase_db1"
    import re

    rx = re.compile(f"^(?:{alternation(names)})$")
    assert rx.match("kits19_kidney_2d") and not rx.match("kits19")
    assert alternation([]) == "^$"
