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
    return load_registry(REGISTRY, recipe_names=RECIPES.names())


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
        load_registry(path, recipe_names=RECIPES.names())
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_relative_manifest_resolves_next_to_registry(tmp_path: Path) -> None:
    reg = load_registry(_write(tmp_path, {"manifest": "manifests/t.sha256"}))
    assert reg["tiny"].manifest == tmp_path / "manifests" / "t.sha256"
    assert default_manifest_path(reg, "tiny") == tmp_path / "manifests" / "t.sha256"


def test_workflow_data_wiring() -> None:
    from segbench.paths import alternation
    from segbench.smk_data import WorkflowData

    cfg = {
        "download": {"registry": str(REGISTRY)},
        "datasets": {"chase": {"source": "registry", "registry_id": "chase_db1"},
                     "synth_cells": {"source": "synthetic"}},
    }
    wd = WorkflowData(cfg)
    assert wd.registry_id("chase") == "chase_db1" and wd.registry_id("drive") == "drive"
    names = wd.prepared_names()
    assert "chase" in names and "drosophila_vnc" in names and "synth_cells" not in names
    assert "inbreast" in names and "nih_pancreas" not in names  # nih_pancreas: registration only
    assert "msd_pancreas" in names  # 3D, recipe volumes_3d (issue 20)
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


def _data_import_graph() -> dict[str, set[str]]:
    """Static import graph of ``segbench.data`` (plus its Snakemake glue ``segbench.smk_data``):
    every ``import``/``from ... import`` anywhere in a file, lazy and ``TYPE_CHECKING`` ones
    included, with the ``segbench.data.recipes`` package collapsed to one node."""
    import ast

    src = REPO / "src"

    def node(module: str) -> str:
        return "segbench.data.recipes" if module.startswith("segbench.data.recipes") else module

    files = sorted((src / "segbench" / "data").rglob("*.py")) + [src / "segbench" / "smk_data.py"]
    graph: dict[str, set[str]] = {}
    for path in files:
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        me = node(".".join(parts))
        edges = graph.setdefault(me, set())
        for stmt in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(stmt, ast.Import):
                targets = [a.name for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom):
                assert stmt.level == 0, f"{path}: relative import"
                targets = [str(stmt.module)]
            else:
                continue
            edges.update(node(t) for t in targets if t.startswith("segbench.data") and node(t) != me)
    return graph


def test_data_package_has_no_import_circle() -> None:
    """No module of segbench.data reaches itself through imports (issue #16: registry and
    recipes used to import each other)."""
    graph = _data_import_graph()
    assert "segbench.data.recipes" not in graph["segbench.data.registry"]

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            here, trail = stack.pop()
            for nxt in graph.get(here, ()):
                if nxt == start:
                    return [*trail, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    cycles = [c for m in sorted(graph) if (c := cycle_from(m)) is not None]
    assert not cycles, " | ".join(" -> ".join(c) for c in cycles)


def test_registry_checks_recipes_only_when_given_their_names(tmp_path: Path) -> None:
    """The registry does not import the recipes: the caller passes the names (None skips the
    check); the workflow glue always passes RECIPES' names."""
    path = _write(tmp_path, {"recipe": {"name": "pairs_2d"}})
    assert load_registry(path)["tiny"].recipe_name == "pairs_2d"
    with pytest.raises(RegistryError, match="recipe 'pairs_2d' is not registered"):
        load_registry(path, recipe_names=RECIPES.names())
    from segbench.smk_data import WorkflowData

    with pytest.raises(RegistryError, match="recipe 'pairs_2d' is not registered"):
        WorkflowData({"download": {"registry": str(path)}})


def test_workflow_input_functions() -> None:
    """The named input/params functions of workflow/rules/download.smk (they replaced inline
    lambdas) return what the lambdas returned: the same paths and params, inputs ancient()."""
    from types import SimpleNamespace

    from snakemake.io import is_flagged

    from segbench import paths
    from segbench.smk_data import WorkflowData

    cfg = {"download": {"registry": str(REGISTRY)},
           "datasets": {"chase": {"source": "registry", "registry_id": "chase_db1"}}}
    wd = WorkflowData(cfg)
    w = SimpleNamespace(raw="chase_db1", file="CHASEDB1.zip", dataset="chase")
    inputs = wd.get_extract_input(w)
    assert inputs == ["data/downloads/chase_db1/CHASEDB1.zip"]
    assert all(is_flagged(p, "ancient") for p in inputs)
    raw = wd.get_prepare_input(w)
    assert raw == "data/raw/chase_db1" and is_flagged(raw, "ancient")
    assert wd.get_download_params(w) == wd.download_params("chase_db1", "CHASEDB1.zip")
    assert wd.get_extract_params(w) == wd.extract_params("chase_db1")
    assert wd.get_prepare_params(w) == wd.prepare_params("chase")
    assert paths.DOWNLOAD_FILE.format(raw="a", file="b.zip") == "data/downloads/a/b.zip"
    assert paths.RAW_DIR.format(raw="a") == "data/raw/a"


def test_retry_scaled_resources() -> None:
    """download.smk's prepare_dataset resources grow with the attempt as before
    (``lambda wildcards, attempt: 8000 * attempt``); Snakemake passes arguments by name."""
    import inspect

    from segbench.smk_data import retry_scaled

    mem = retry_scaled(8000)
    assert list(inspect.signature(mem).parameters) == ["wildcards", "attempt"]
    assert [mem(None, a) for a in (1, 2, 3)] == [8000, 16000, 24000]
