"""The paper study configs (config/studies/), their published numbers (config/paper_results/) and
claims (config/claims/): every config validates, every published cell is in its study's grid, the
transcriptions are internally consistent (row means recomputed from the per-class columns), a
sample of values matches the papers, and every claim runs through ``evaluate_claims``.

Conventions compared: the papers' own tables (../shared/papers). Fast (no training, no Snakemake).
"""

from __future__ import annotations

import csv
import inspect
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from segbench.config import base_loss, expand_runs, load_study, search_configs
from segbench.models import MODELS
from segbench.paths import fmt_fraction
from segbench.stats.claims import CLAIM_KEYS, MODES, evaluate_claims

REPO = Path(__file__).resolve().parents[2]
STUDY_DIR = REPO / "config" / "studies"
RESULTS_DIR = REPO / "config" / "paper_results"
CLAIMS_DIR = REPO / "config" / "claims"
REGISTRY = REPO / "config" / "datasets.yaml"

STUDIES = sorted(p.stem for p in STUDY_DIR.glob("*.yaml"))
RESULTS = sorted(p.stem for p in RESULTS_DIR.glob("*.csv"))
CLAIMS = sorted(p.stem for p in CLAIMS_DIR.glob("*.yaml"))

# Run counts (expand_runs), as documented in docs/studies.md.
RUN_COUNTS = {
    "paper000": 2340,
    # Table 1: (8 + 9) losses x 25 search configurations; Table 3: 10 x 5 seeds; Fig. 5: Dice and
    # Dice - Surgery x (SGD, Adam) x 1 seed (training variants dice~sgd, ..., dice_surgery~adam)
    "paper002": 479,
    "paper002_3d": 140,  # 2 datasets x 7 losses x 10 search configurations
    "paper003": 363,  # Tables 2-3: 80 cells x 3 seeds; Fig. 3 lambda ablation: 41 cells x 3
    "paper003_3d": 147,
    "paper004": 336,  # Tables 2-6: 88 cells x 3 seeds; Fig. 3 alpha ablation: 24 cells x 3
    "paper000_quick": 60,  # 4 losses x 5 folds x 3 seeds at 1/8 (make quick, docs/studies.md)
}
# Studies that reuse another study's published numbers and claims (report.paper_results /
# report.claims name that study's files; report.published_rows: covered keeps its rows).
SHARES_PUBLISHED = {"paper000_quick": "paper000"}
# Published tables without a study config (paper 003 App. D, Cityscapes: natural images).
RESULTS_WITHOUT_STUDY = {"paper003_cityscapes"}
COLUMNS = ["study", "table", "dataset", "model", "fraction", "loss", "metric", "class", "mean",
           "std", "notes"]  # fmt: skip
METRICS = {"iou", "miou", "dice", "mdice", "hd", "nsd", "mnsd", "nll", "ece", "mce", "brier",
           "fg_percent", "region_proportion"}  # fmt: skip
KEY = ("table", "dataset", "model", "fraction", "loss", "metric", "class")
DATASET_PROPERTY = "ground_truth"  # `loss` of rows that describe a dataset, not a run
RUN_METRICS = ["miou", "mdice", "mhd95", "mnsd", "nll", "brier", "ece", "mce"]


def _study(name: str) -> dict:
    return load_study(STUDY_DIR / f"{name}.yaml")


_CACHE: dict[str, dict] = {}


def study(name: str) -> dict:
    if name not in _CACHE:
        _CACHE[name] = _study(name)
    return _CACHE[name]


_SEARCH: dict[str, dict] = {}


def table_loss(cfg: dict, loss: str) -> str:
    """The table row of a run's loss key (a search configuration's base loss)."""
    if cfg["study"] not in _SEARCH:
        _SEARCH[cfg["study"]] = search_configs(cfg)
    found = _SEARCH[cfg["study"]].get(loss)
    return found.loss if found is not None else loss


def cells(name: str) -> set[tuple[str, str, str, str]]:
    """Table cells of the grid (a search configuration counts as its base loss's cell)."""
    cfg = study(name)
    return {(r.dataset, r.model, table_loss(cfg, r.loss), r.fraction) for r in expand_runs(cfg)}


def rows(name: str) -> list[dict[str, str]]:
    with open(RESULTS_DIR / f"{name}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- study configs


def test_expected_files_present():
    assert set(RUN_COUNTS) == set(STUDIES)
    own = set(STUDIES) - set(SHARES_PUBLISHED)
    assert own | RESULTS_WITHOUT_STUDY == set(RESULTS)
    assert set(CLAIMS) == own
    for name, source in SHARES_PUBLISHED.items():
        report = study(name)["report"]
        assert report["paper_results"] == f"config/paper_results/{source}.csv"
        assert report["claims"] == f"config/claims/{source}.yaml"
        assert report["published_rows"] == "covered"


@pytest.mark.parametrize("name", STUDIES)
def test_study_validates_and_run_count(name):
    cfg = study(name)
    assert cfg["study"] == name
    runs = expand_runs(cfg)
    assert len(runs) == RUN_COUNTS[name]
    # every defined loss / model / dataset is used by the grid (no dead entries)
    attr = {"datasets": "dataset", "models": "model", "losses": "loss"}
    used = {k: {getattr(r, a) for r in runs} for k, a in attr.items()}
    # a training variant ({loss}~{tag}) trains its base loss
    used["losses"] = {base_loss(table_loss(cfg, loss)) for loss in used["losses"]}
    for kind in used:
        assert used[kind] == set(cfg[kind]), (kind, set(cfg[kind]) - used[kind])
    # model parameters are ones the model takes (check_study does not build models; building
    # would download the ImageNet encoders of paper 003)
    for key, entry in cfg["models"].items():
        accepted = inspect.signature(MODELS.get(entry["name"])).parameters
        assert set(entry) - {"name"} <= set(accepted) - {"in_channels", "classes"}, key


@pytest.mark.parametrize("name", STUDIES)
def test_registry_ids_exist(name):
    known = set(yaml.safe_load(REGISTRY.read_text())["datasets"])
    for key, entry in study(name)["datasets"].items():
        assert entry["source"] == "registry"
        rid = entry.get("registry_id", key)
        assert rid in known, (name, key, rid)


def test_paper000_grid_matches_tables():
    """Additive losses only where Tables 1-3 list them; r-ablation at 1/8 (1/4 for CHASE)."""
    c = cells("paper000")
    lam = {"covid19_ct": "dice_ce_0.5", "chase_db1": "dice_ce_0.7", "drosophila_vnc": "dice_ce_0.7"}
    for ds, model, loss, frac in c:
        if loss.startswith("dice_ce_") and loss != lam[ds]:
            assert (model, frac) == ("unet", "1"), (ds, model, loss, frac)
        if loss.startswith("caml_r"):
            assert model == "unet" and frac == {"chase_db1": "0.25"}.get(ds, "0.125")
    fr = {(ds, f) for ds, _, _, f in c}
    assert {f for ds, f in fr if ds == "chase_db1"} == {"1", "0.5", "0.25"}
    assert {f for ds, f in fr if ds == "covid19_ct"} == {"1", "0.25", "0.125"}


# ---------------------------------------------------------------- published numbers


@pytest.mark.parametrize("name", RESULTS)
def test_results_format(name):
    with open(RESULTS_DIR / f"{name}.csv", newline="") as fh:
        assert next(csv.reader(fh)) == COLUMNS
    seen = set()
    for r in rows(name):
        assert r["study"] == name
        assert r["metric"] in METRICS, r
        key = tuple(r[k] for k in KEY)
        assert key not in seen, key
        seen.add(key)
        if r["mean"] == "":
            assert "failed" in r["notes"], r
        else:
            assert math.isfinite(float(r["mean"]))
        if r["std"]:
            assert float(r["std"]) >= 0
        assert r["fraction"] == fmt_fraction(r["fraction"])


@pytest.mark.parametrize("name", [s for s in RESULTS if s not in RESULTS_WITHOUT_STUDY])
def test_published_cells_in_grid(name):
    grid = cells(name)
    missing = {
        (r["dataset"], r["model"], r["loss"], r["fraction"])
        for r in rows(name)
        if r["loss"] != DATASET_PROPERTY
    } - grid
    assert not missing, sorted(missing)


def _row_means(name: str, metric_mean: str, metric_cls: str, tables: set[str]):
    """(key, published mean, recomputed mean, number of classes) per table row."""
    groups: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows(name):
        if r["table"] in tables and r["metric"] in (metric_mean, metric_cls) and r["mean"]:
            key = (r["table"], r["dataset"], r["model"], r["fraction"], r["loss"])
            groups[key][r["class"]] = float(r["mean"])
    out = {}
    for key, g in groups.items():
        cls = [v for c, v in g.items() if c != "mean"]
        out[key] = (g["mean"], float(np.mean(cls)), len(cls))
    return out


N_CLASSES_000 = {"1": 4, "2": 2, "3": 5}
# Table rows of paper 000 whose published mIoU differs from the mean of its class IoUs by more
# than 0.25 (the paper's own inconsistencies; checked by hand against the text twice).
INCONSISTENT_000 = {
    ("1", "covid19_ct", "convformer_unet", "0.25", "dice_ce_0.5"): 0.485,
    ("1", "covid19_ct", "transunet", "0.25", "caml"): 0.6725,
    ("1", "covid19_ct", "transunet", "0.25", "dice_ce_0.5"): 0.255,
    ("1", "covid19_ct", "transunet", "1", "dice_ce_0.5"): -0.6675,
    ("2", "chase_db1", "convformer_unet", "0.25", "dice"): -0.265,
    ("2", "chase_db1", "convformer_unet", "1", "dice"): 0.655,
    ("3", "drosophila_vnc", "convformer_unet", "0.125", "dice"): -0.87,
    ("3", "drosophila_vnc", "convformer_unet", "1", "dice"): 0.452,
    ("3", "drosophila_vnc", "unet", "0.125", "caml"): 0.342,
}


def test_paper000_row_means():
    """mIoU = mean of the class IoUs (background included), Tables 1-3.

    Tolerance: a few rows that agree exactly must agree within rounding (values have 2 decimals:
    0.005 on the mean + 0.005 on the class mean = 0.01); every complete row within 0.25, except
    the listed rows where the paper itself is inconsistent (checked to the listed difference).
    Rows with a class column missing from the text copy are skipped.
    """
    means = _row_means("paper000", "miou", "iou", {"1", "2", "3"})
    exact = [
        ("2", "chase_db1", "unet", "0.5", "dice_ce_0.7"),  # 62.53 = (93.00 + 32.06) / 2
        ("2", "chase_db1", "unet", "1", "dice_ce_0.5"),  # 61.33 = (92.93 + 29.73) / 2
        ("1", "covid19_ct", "unet", "1", "ml"),  # 45.26 ~ (96.53 + 33.06 + 44.46 + 7.00) / 4
        ("3", "drosophila_vnc", "unet", "1", "ce"),  # 68.20 ~ mean of 5 classes
        ("3", "drosophila_vnc", "unet", "0.125", "ml"),
    ]
    for key in exact:
        pub, rec, _ = means[key]
        assert abs(pub - rec) <= 0.01 + 1e-9, (key, pub, rec)
    complete = {k: v for k, v in means.items() if v[2] == N_CLASSES_000[k[0]]}
    assert len(complete) == 127  # 141 table rows - 14 with a column missing in the text
    for key, (pub, rec, _) in complete.items():
        if key in INCONSISTENT_000:
            assert rec - pub == pytest.approx(INCONSISTENT_000[key], abs=1e-6), key
        else:
            assert abs(pub - rec) <= 0.25, (key, pub, rec)


def test_paper003_row_means():
    """Table 4 mean = mean of the two foreground DSCs; E.8 mDSC = mean of 15 organs; Cityscapes
    D.6 mIoU = mean of 19 classes. Values have one decimal: tolerance 0.05 + 0.05 = 0.1, except
    MSD Pancreas Dice, where the paper's mean (61.9) differs from (80.8 + 43.3) / 2 by 0.15."""
    checks = [
        ("paper003_3d", "mdice", "dice", {"4", "E.8"}),
        ("paper003_cityscapes", "miou", "iou", {"D.6"}),
    ]
    n = 0
    for name, mm, mc, tables in checks:
        for key, (pub, rec, k) in _row_means(name, mm, mc, tables).items():
            assert k in (2, 15, 19)
            tol = 0.16 if key == ("4", "msd_pancreas", "unet_3d", "1", "dice") else 0.1
            assert abs(pub - rec) <= tol, (name, key, pub, rec)
            n += 1
    assert n == 20 + 7 + 16


# Values read off the papers' tables by hand (twice), independent of the CSV generation:
# tests/studies/spot_values.csv (one row a cell: its key, mean and std; std empty where the
# paper gives none).
SPOT_FILE = Path(__file__).with_name("spot_values.csv")


def _spot() -> list[tuple]:
    with SPOT_FILE.open(newline="") as f:
        return [
            (
                r["study"],
                *(r[k] for k in KEY),
                float(r["mean"]),
                float(r["std"]) if r["std"] else None,
            )
            for r in csv.DictReader(f)
        ]


SPOT = _spot()


def test_spot_values():
    assert len(SPOT) == 24 and len(set(SPOT)) == 24
    index = {}
    for name in RESULTS:
        for r in rows(name):
            index[(name, *(r[k] for k in KEY))] = r
    for *key, mean, std in SPOT:
        r = index[tuple(key)]
        assert float(r["mean"]) == pytest.approx(mean, abs=1e-9), key
        assert (r["std"] == "") if std is None else float(r["std"]) == pytest.approx(std), key
    failed = ("paper004", "6", "kits19_tumour_2d", "unet_bn_dropout", "1", "topk_thr_0.1")
    failed = index[(*failed, "dice", "tumour")]
    assert failed["mean"] == "" and "failed" in failed["notes"]


def test_row_counts():
    """Every table row transcribed: (rows x columns) per study file."""
    expected = {
        "paper000": 662,  # T1-3: 47 rows x (1 + 4, 2, 5 classes) - 14 missing cells; T4: 6 x 3
        "paper002": 135,  # (8 + 9) losses x 5 metrics + Table 3: 10 x 5
        "paper002_3d": 70,  # 2 x 7 x 5
        "paper003": 160,  # Table 2: 14 x 8; Table 3: 12 x 4
        "paper003_3d": 186,  # Table 4: 10 x 6; Table 5: 7 x 2; E.8: 7 x 16
        "paper003_cityscapes": 355,  # mRegProp 19; D.6: 2 x 8 x 20; D.7: 8 x 2
        "paper004": 136,  # T1 5; T2 8 x 4; T3 8 x 4; T4 8 x 2; T5 6; T6 15 x 3
    }
    assert {n: len(rows(n)) for n in RESULTS} == expected


# ---------------------------------------------------------------- claims


def _claims(name: str) -> list[dict]:
    data = yaml.safe_load((CLAIMS_DIR / f"{name}.yaml").read_text())
    assert isinstance(data, list) and data
    return data


@pytest.mark.parametrize("name", CLAIMS)
def test_claims_well_formed(name):
    cfg = study(name)
    grid = expand_runs(cfg)
    ids = set()
    for c in _claims(name):
        assert set(c) <= CLAIM_KEYS and {"id", "text", "better", "than", "metric"} <= set(c), c
        assert c["id"] not in ids
        ids.add(c["id"])
        assert c.get("mode", "best_of") in MODES
        assert c["metric"] in RUN_METRICS
        than = c["than"] if isinstance(c["than"], list) else [c["than"]]
        for loss in [c["better"], *than]:
            assert loss in cfg["losses"], (c["id"], loss)
        where = c.get("where", {})
        assert set(where) <= {"dataset", "model", "fraction"}

        def ok(run, where=where):
            for col, want in where.items():
                want = want if isinstance(want, list) else [want]
                canon = fmt_fraction if col == "fraction" else str
                if getattr(run, col) not in {canon(w) for w in want}:
                    return False
            return True

        sub = [r for r in grid if ok(r)]
        has = {table_loss(cfg, r.loss) for r in sub}
        assert c["better"] in has, c["id"]
        assert all(t in has for t in than), (c["id"], set(than) - has)


@pytest.mark.parametrize("name", CLAIMS)
def test_claims_evaluate_on_grid(name):
    """evaluate_claims accepts every claim on a table shaped like the study's runs."""
    runs = expand_runs(study(name))
    rng = np.random.default_rng(0)
    df = pd.DataFrame([r.wildcards() for r in runs])
    df["loss"] = [table_loss(study(name), loss) for loss in df["loss"]]  # as the tables see them
    for m in RUN_METRICS:
        df[m] = rng.random(len(df))
    out = evaluate_claims(df, _claims(name))
    assert set(out["id"]) == {c["id"] for c in _claims(name)}
    assert (out["n_pairs"] > 0).all()


# ---------------------------------------------------------------- paper 002 search protocol


@pytest.mark.parametrize(
    "name, n, keep, datasets",
    [("paper002", 25, 5, {"inbreast", "fives"}), ("paper002_3d", 10, 1, {"brats_mets", "kits"})],
)
def test_paper002_search_protocol(name, n, keep, datasets):
    """Table 1: "the 5 best runs out of 25 (selected through validation dice scores)" (l.95);
    Table 2: "Best out of 10 runs" (l.122); searched: "weight decay, initial learning rate, and
    momentum" and Tversky "alpha parameter (beta = 1 - alpha)" (App. D)."""
    cfg = study(name)
    configs = search_configs(cfg)
    blocks = [b for b in cfg["grid"] if "search" in b]
    assert {d for b in blocks for d in b.get("datasets", cfg["datasets"])} == datasets
    for b in blocks:
        assert (b["search"]["n"], b["search"]["keep"]) == (n, keep)
        assert set(b["search"]["training"]) == {"lr", "weight_decay", "momentum"}
        assert set(b["search"]["losses"]) == {"tversky", "tversky_surgery"}
    per_loss: dict[str, int] = defaultdict(int)
    for c in configs.values():
        per_loss[c.loss] += 1
        if c.loss.startswith("tversky"):
            assert c.loss_cfg["alpha"] + c.loss_cfg["beta"] == pytest.approx(1.0, abs=1e-9)
        assert set(c.training) == {"lr", "weight_decay", "momentum"}
    assert set(per_loss.values()) == {n}
    runs = expand_runs(cfg)
    for loss in per_loss:
        for ds in datasets:
            mine = [r for r in runs if r.dataset == ds and table_loss(cfg, r.loss) == loss]
            if mine:
                assert sorted(r.seed for r in mine) == list(range(n))
