"""Official train / test partitions (``datasets.<key>.split: official``, issue 20): paper 003
trains AMOS on the official training set and reports on the official validation set (003
l.714-718). A tiny AMOS-like layout (imagesTr / imagesVa) is prepared by the real volumes_3d
recipe, split by the library and by the real ``splits`` rule (Snakemake subprocess), and the
error cases are refused with one message naming dataset, file and key."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers3d import ct_case, entry, write_case

from segbench.config import ConfigError, check_study, load_schema, validate_schema
from segbench.data.io import load_prepared
from segbench.data.recipes import prepare_dataset
from segbench.splits import (
    SPLIT_SOURCES,
    SplitError,
    dumps,
    get_fold,
    make_splits,
    official_partition,
    official_splits,
    prepared_splits,
)
from tests.conftest import REPO, copy_workflow, snakemake_bin

TRAIN = [f"amos_{n:04d}" for n in range(1, 9)]  # 8 official training cases (imagesTr)
TEST = [f"amos_{n:04d}" for n in range(100, 103)]  # 3 official validation cases (imagesVa)
VOLUMES = [
    {
        "image": "images*/amos_*.nii.gz",
        "regex": r"^images(?P<part>Tr|Va)/amos_(?P<n>\d{4})\.nii\.gz$",
        "label": "labels{part}/amos_{n}.nii.gz",
        "id": "amos_{n}",
    }
]
PARAMS = {
    "volumes": VOLUMES,
    "modality": "ct",
    "spacing": None,
    "crop": None,
    "clip": {"percentiles": [0.5, 99.5]},
    "split_from_dir": {"imagesTr": "train", "imagesVa": "test"},
}
SPEC = {
    "folds": 5,
    "seed": 0,
    "val_fraction": 0.25,
    "fractions": ["1", "0.5"],
    "source": "official",
}


def _amos_layout(raw: Path) -> None:
    """AMOS's documented layout (config/datasets.yaml amos22): images{Tr,Va}/amos_NNNN.nii.gz
    with labels{Tr,Va}/ beside them."""
    aff = np.diag([1.5, 1.5, 2.0, 1.0])
    for part, ids in (("Tr", TRAIN), ("Va", TEST)):
        (raw / f"labels{part}").mkdir(parents=True, exist_ok=True)
        for k, case in enumerate(ids):
            img, lab = ct_case((10, 10, 8), seed=k + (100 if part == "Va" else 0))
            write_case(
                raw / f"images{part}",
                case,
                img,
                lab,
                aff,
                image_name="{case}.nii.gz",
                label_name=f"../labels{part}/{{case}}.nii.gz",
            )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("official")
    _amos_layout(tmp / "raw")
    npz = tmp / "amos.npz"
    prepare_dataset(entry({"name": "volumes_3d", "params": PARAMS}), tmp / "raw", npz)
    return npz


def test_schema_enum_is_the_library_constant() -> None:
    props = load_schema()["properties"]["datasets"]["additionalProperties"]["properties"]
    assert props["split"]["enum"] == list(SPLIT_SOURCES)
    assert props["split"]["default"] == "random"


def test_official_split_of_a_prepared_dataset(prepared: Path) -> None:
    ds = load_prepared(prepared)
    assert ds.meta["recipe"]["official_split"] == {"test": TEST, "train": TRAIN}
    s = prepared_splits(ds.ids, ds.groups, ds.meta, SPEC, "amos", prepared.with_suffix(".json"))
    assert s["source"] == "official" and s["n_folds"] == 1 and len(s["folds"]) == 1
    assert s["val_fraction"] == 0.25 and s["seed"] == 0 and s["dataset"] == "amos"
    f = s["folds"][0]
    # reported on the official validation set; train + val = the official training set
    assert f["fold"] == 0 and f["test"] == TEST
    assert not set(f["train"]) & set(f["val"]) and sorted(f["train"] + f["val"]) == TRAIN
    assert len(f["val"]) == math.ceil(0.25 * len(TRAIN))  # GroupShuffleSplit rounds the test up
    fr = f["fractions"]
    assert set(fr["0.5"]) < set(fr["1"]) == set(f["train"])
    assert len(fr["0.5"]) == math.ceil(0.5 * len(f["train"]))
    assert get_fold(s, 0, 1) == {"train": f["train"], "val": f["val"], "test": TEST}
    with pytest.raises(SplitError, match="fold 1 out of range 0..0"):
        get_fold(s, 1, 1)
    # deterministic whatever the id order; the validation share follows the seed
    again = official_splits(
        list(reversed(ds.ids)),
        {"train": TRAIN[::-1], "test": TEST},
        ["0.5", 1],
        seed=0,
        val_fraction=0.25,
        dataset="amos",
    )
    assert dumps(again) == dumps(s)
    vals = {
        tuple(
            official_splits(ds.ids, {"train": TRAIN, "test": TEST}, [1], seed=k, val_fraction=0.25)[
                "folds"
            ][0]["val"]
        )
        for k in range(6)
    }
    assert len(vals) > 1
    # the same spec without source: the seeded k-fold split, byte for byte as make_splits
    random_spec = {k: v for k, v in SPEC.items() if k != "source"}
    rnd = prepared_splits(ds.ids, ds.groups, ds.meta, random_spec, "amos")
    assert "source" not in rnd and rnd["n_folds"] == 5
    want = make_splits(
        ds.ids, 5, ["1", "0.5"], seed=0, val_fraction=0.25, groups=ds.groups, dataset="amos"
    )
    assert dumps(rnd) == dumps(want)


def test_official_val_part_is_used_as_validation() -> None:
    ids = [f"c{i}" for i in range(7)]
    s = official_splits(ids, {"train": ids[:4], "val": ids[4:5], "test": ids[5:]}, [1])
    f = s["folds"][0]
    assert (f["train"], f["val"], f["test"]) == (ids[:4], ["c4"], ["c5", "c6"])
    assert s["val_fraction"] is None


def test_groups_never_straddle_train_and_val() -> None:
    ids = [f"p{i // 2}_{i % 2}" for i in range(12)]  # two scans per patient
    groups = [i.split("_")[0] for i in ids]
    s = official_splits(
        ids, {"train": ids[:10], "test": ids[10:]}, [1], val_fraction=0.2, groups=groups
    )
    f = s["folds"][0]
    g = dict(zip(ids, groups, strict=True))
    assert not {g[i] for i in f["train"]} & {g[i] for i in f["val"]}
    assert sorted(f["train"] + f["val"]) == sorted(ids[:10])


def test_sidecar_without_official_split_is_one_clear_error(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _amos_layout(raw)
    params = {k: v for k, v in PARAMS.items() if k != "split_from_dir"}
    npz = tmp_path / "nosplit.npz"
    prepare_dataset(entry({"name": "volumes_3d", "params": params}), raw, npz)
    ds = load_prepared(npz)
    sidecar = npz.with_suffix(".json")
    with pytest.raises(SplitError) as err:
        prepared_splits(ds.ids, ds.groups, ds.meta, SPEC, "amos", sidecar)
    msg = str(err.value)
    assert "dataset 'amos'" in msg and str(sidecar) in msg and "'recipe.official_split'" in msg
    assert "split: random" in msg


@pytest.mark.parametrize(
    ("official", "what"),
    [
        ({"train": ["a", "b"]}, "has no 'test' part"),
        ({"train": ["a", "b"], "test": ["c"], "holdout": ["d"]}, "unknown part(s) ['holdout']"),
        ({"train": ["a", "b"], "test": ["b", "c"]}, "id 'b' is in both 'train' and 'test'"),
    ],
    ids=["no-test", "unknown-part", "overlap"],
)
def test_bad_official_partition(official: dict, what: str) -> None:
    with pytest.raises(SplitError, match="^dataset 'd' \\(x.json\\): ") as err:
        official_partition({"recipe": {"official_split": official}}, "dataset 'd' (x.json)")
    assert what in str(err.value)


def test_partition_must_cover_the_dataset() -> None:
    with pytest.raises(SplitError, match=r"1 sample\(s\) are in no part .* \['e'\]"):
        official_splits(["a", "b", "c", "d", "e"], {"train": ["a", "b", "c"], "test": ["d"]}, [1])
    with pytest.raises(SplitError, match=r"names 1 id\(s\) that are not samples .* \['z'\]"):
        official_splits(["a", "b", "c", "d"], {"train": ["a", "b", "c"], "test": ["d", "z"]}, [1])
    with pytest.raises(SplitError, match="fewer than 2 groups"):
        official_splits(["a", "b"], {"train": ["a"], "test": ["b"]}, [1])


def _study(**amos: object) -> dict:
    cfg = yaml.safe_load((REPO / ".test" / "config_3d.yaml").read_text())
    cfg["datasets"] = {"amos": {"source": "registry", "registry_id": "amos22", **amos}}
    cfg["run_folds"] = [0]
    return cfg


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (
            lambda c: c["datasets"].update(
                amos={"source": "synthetic", "generator": "synth_vol3d", "split": "official"}
            ),
            "datasets.amos.split = 'official': a synthetic dataset has no official split",
        ),
        (
            lambda c: c["datasets"]["amos"].update(folds=5),
            "an official split has one fold; remove datasets.amos.folds = 5",
        ),
        (
            lambda c: c.pop("run_folds"),
            "an official split has one fold (0), but folds [0, 1] are trained; set run_folds: [0]",
        ),
    ],
    ids=["synthetic", "folds", "run-folds"],
)
def test_config_errors(change, what: str) -> None:  # noqa: ANN001
    cfg = _study(split="official")
    change(cfg)
    validate_schema(cfg, "s.yaml")
    with pytest.raises(ConfigError) as err:
        check_study(cfg, "s.yaml")
    assert what in str(err.value)


def test_paper003_3d_uses_the_official_amos_split() -> None:
    from segbench.config import check_registry, load_study

    cfg = load_study(REPO / "config" / "studies" / "paper003_3d.yaml")
    assert cfg["datasets"]["amos"]["split"] == "official"
    assert cfg["datasets"]["msd_liver"]["split"] == "random"  # MSD: "randomly split 80 / 20"
    check_registry(cfg, "paper003_3d.yaml")
    from segbench.smk import split_params

    assert split_params(cfg, "amos")["source"] == "official"
    assert "source" not in split_params(cfg, "msd_liver")


# ----------------------------------------------------------------------- the real splits rule


def _registry(path: Path) -> Path:
    """Manual-access registry entries over one raw folder: ``tiny_amos`` (official split),
    ``tiny_notest`` (split_from_dir names a folder the layout lacks: no test part once
    prepared) and ``tiny_nosplit`` (no split_from_dir at all)."""
    base = {
        "title": "tiny AMOS-like fixture",
        "access": "manual",
        "instructions": "test fixture",
        "licence": "test fixture",
        "citation": "none",
        "classes": ["background", "organ", "tumour"],
    }
    notest = {**PARAMS, "split_from_dir": {"imagesTr": "train", "imagesTs": "test"}}
    nosplit = {k: v for k, v in PARAMS.items() if k != "split_from_dir"}
    doc = {
        "datasets": {
            "tiny_amos": {**base, "recipe": {"name": "volumes_3d", "params": PARAMS}},
            "tiny_notest": {
                **base,
                "raw_from": "tiny_amos",
                "recipe": {"name": "volumes_3d", "params": notest},
            },
            "tiny_nosplit": {
                **base,
                "raw_from": "tiny_amos",
                "recipe": {"name": "volumes_3d", "params": nosplit},
            },
        }
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _workflow(tmp: Path, datasets: dict) -> Path:
    wd = copy_workflow(tmp / "wf")
    cfg = _study()
    cfg["datasets"] = datasets
    cfg["download"] = {"registry": str(_registry(tmp / "registry.yaml"))}
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    _amos_layout(wd / "data" / "raw" / "tiny_amos")
    return wd


def _snakemake(wd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [snakemake_bin(), "--cores", "1", *args],
        cwd=wd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_splits_rule_writes_the_official_split(tmp_path: Path) -> None:
    ds = {"source": "registry", "registry_id": "tiny_amos", "split": "official"}
    wd = _workflow(tmp_path, {"amos": ds, "amos_bad": {**ds, "registry_id": "tiny_notest"}})
    res = _snakemake(wd, "--keep-going", "results/splits/amos.json", "results/splits/amos_bad.json")
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]  # amos_bad fails, amos is written (--keep-going)
    written = (wd / "results/splits/amos.json").read_text()
    s = json.loads(written)
    assert s["source"] == "official" and s["folds"][0]["test"] == TEST
    assert sorted(s["folds"][0]["train"] + s["folds"][0]["val"]) == TRAIN
    # the rule's file is the library's, byte for byte (study val_fraction 0.25, fractions [1])
    data = load_prepared(wd / "data/prepared/amos.npz")
    want = official_splits(
        data.ids,
        data.meta["recipe"]["official_split"],
        ["1"],
        seed=0,
        val_fraction=0.25,
        groups=data.groups,
        dataset="amos",
    )
    assert written == dumps(want)
    assert "official split of data/prepared/amos.json" in (wd / "logs/splits/amos.log").read_text()
    # the bad one: one error line naming dataset, sidecar and key; no split file
    assert not (wd / "results/splits/amos_bad.json").exists()
    log = (wd / "logs/splits/amos_bad.log").read_text()
    assert (
        "error: dataset 'amos_bad' (data/prepared/amos_bad.json): recipe.official_split has no "
        "'test' part (has ['train'])"
    ) in log, log
    again = _snakemake(wd, "-n", "results/splits/amos.json")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_registry_entry_without_official_split_stops_the_workflow(tmp_path: Path) -> None:
    ds = {"source": "registry", "registry_id": "tiny_nosplit", "split": "official"}
    wd = _workflow(tmp_path, {"amos": ds})
    res = _snakemake(wd, "-n", "results/splits/amos.json")
    assert res.returncode == 1
    err = res.stdout + res.stderr
    assert (
        "datasets.amos.split = 'official', but registry entry 'tiny_nosplit' "
        f"({tmp_path / 'registry.yaml'}) records no official train / test partition"
    ) in err, err[-3000:]
    assert "params.split_from_dir = None" in err
