"""Fixtures of the reporting tests: a synthetic tidy table with known values, and real run
folders (probabilities made from the masks, evaluated by ``segbench.evaluate.evaluate_run``)."""

from __future__ import annotations

import itertools
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from segbench import paths
from tests.conftest import REPO, copy_workflow, run_snakemake

LOSSES = {"good": 0.05, "mid": 0.02, "bad": 0.0}
"""Loss -> effect added to the synthetic scores (good > mid > bad)."""


def make_tidy(
    datasets: dict[str, list[str]] | None = None,
    losses: dict[str, float] | None = None,
    fractions: tuple[str, ...] = ("1", "0.5"),
    seeds: tuple[int, ...] = (0, 1),
    folds: tuple[int, ...] = (0, 1, 2),
    diverged: set[tuple] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A tidy table (one row per run and class) with scores ``base + effect + noise``.

    Class IoU values are drawn per class; the run-level ``miou`` is their mean (background
    included), ``mdice`` = mean of ``dice = 2 iou / (1 + iou)``; calibration metrics fall with the
    effect; ``mhd95`` per class in pixels. ``diverged`` holds (dataset, loss, fraction, seed,
    fold) keys whose status is "diverged".
    """
    datasets = datasets or {"dsA": ["background", "fg"], "dsB": ["background", "x", "y"]}
    losses = losses or LOSSES
    diverged = diverged or set()
    rng = np.random.default_rng(seed)
    rows = []
    for ds, names in datasets.items():
        for fraction, s, k in itertools.product(fractions, seeds, folds):
            base = rng.uniform(0.5, 0.7)
            for loss, eff in losses.items():
                iou = np.clip(base + eff + rng.normal(0, 0.01, len(names)), 0, 1)
                dice = 2 * iou / (1 + iou)
                hd = 20 - 100 * eff + rng.normal(0, 0.5, len(names))
                status = "diverged" if (ds, loss, fraction, s, k) in diverged else "completed"
                run = {
                    "dataset": ds, "model": "m", "loss": loss, "fraction": fraction, "seed": s,
                    "fold": k, "status": status, "miou": iou.mean(), "mdice": dice.mean(),
                    "mhd95": hd.mean(), "nll": 0.3 - eff + rng.normal(0, 0.01),
                    "brier": 0.1 - eff / 2, "ece": 0.05 - eff / 2 + rng.normal(0, 0.002),
                    "mce": 0.2 - eff, "epochs_run": 10, "best_epoch": 9,
                }  # fmt: skip
                for c, name in enumerate(names):
                    rows.append(
                        {
                            **run,
                            "class": c,
                            "class_name": name,
                            "n_valid": 4,
                            "iou": iou[c],
                            "dice": dice[c],
                            "hd95": hd[c],
                        }  # fmt: skip
                    )
    return pd.DataFrame(rows)


@pytest.fixture
def tidy() -> pd.DataFrame:
    return make_tidy(diverged={("dsA", "bad", "0.5", 1, 2)})


def _probs_from_mask(mask: np.ndarray, c: int, strength: float, rng) -> np.ndarray:
    onehot = np.eye(c, dtype=np.float32)[mask].transpose(0, 3, 1, 2)
    logits = strength * onehot + rng.normal(0, 1.0, onehot.shape).astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float16)


def build_runs(root: Path) -> dict:
    """Real run folders under ``root`` for 2 synthetic datasets x 3 losses x 2 fractions x 2
    folds (seed 0); ``synth_vessels/bad/f0.5/k1`` is marked diverged.

    Returns:
        ``{"root", "metrics", "reliability", "per_image", "run", "probs", "tidy", "runs"}``
        (file lists in run order; ``runs``: :class:`segbench.config.Run` objects).
    """
    from segbench.config import Run
    from segbench.data.io import save_prepared
    from segbench.data.synthetic import generate
    from segbench.evaluate import evaluate_run
    from segbench.reporting.aggregate import tidy_from_metrics

    strengths = {"good": 4.0, "mid": 2.0, "bad": 0.7}
    out: dict = {k: [] for k in ("metrics", "reliability", "per_image", "run", "probs", "runs")}
    for ds in ("synth_vessels", "synth_organs"):
        images, masks, ids, meta = generate(ds, n=8, size=32, seed=1)
        npz = root / paths.PREPARED_NPZ.format(dataset=ds)
        save_prepared(npz, images, masks, ids, meta)
        c = int(meta["num_classes"])
        for loss, fraction, fold in itertools.product(strengths, ("1", "0.5"), (0, 1)):
            run = Run(ds, "m", loss, fraction, 0, fold)
            files = {k: root / t.format(**run.wildcards()) for k, t in paths.RUN_FILES.items()}
            files["run"].parent.mkdir(parents=True, exist_ok=True)
            test_idx = np.arange(fold, len(ids), 2)
            rng = np.random.default_rng(zlib.crc32(f"{ds}/{loss}/{fraction}/{fold}".encode()))
            probs = _probs_from_mask(masks[test_idx].astype(np.int64), c, strengths[loss], rng)
            np.savez_compressed(
                files["probs"], probs=probs, ids=np.asarray([ids[i] for i in test_idx])
            )
            diverged = (ds, loss, fraction, fold) == ("synth_vessels", "bad", "0.5", 1)
            status = "diverged" if diverged else "completed"
            files["run"].write_text(
                json.dumps({"run": run.wildcards(), "result": {"status": status}})
            )
            evaluate_run(
                files["probs"], npz, files["run"], {"calibration_bins": 10},
                files["metrics"], files["per_image"], files["reliability"],
            )  # fmt: skip
            for k in ("metrics", "reliability", "per_image", "run", "probs"):
                out[k].append(str(files[k]))
            out["runs"].append(run)
    out["root"] = root
    out["tidy"] = tidy_from_metrics(out["metrics"])
    return out


@pytest.fixture(scope="package")
def fake_runs(tmp_path_factory) -> dict:
    return build_runs(tmp_path_factory.mktemp("runs"))


# ------------------------------------------------------------------ end-to-end report study

PUBLISHED = """study,table,dataset,model,fraction,loss,metric,class,mean,std,notes
t,1,synth_vessels,unet4,1,ce,miou,mean,50.0,1.0,
t,1,synth_vessels,unet4,1,ce,iou,vessel,10.0,,
t,1,synth_vessels,unet4,0.5,rce_1,dice,vessel,20.0,2.0,
t,2,other_dataset,unet4,1,ce,miou,mean,40.0,1.0,
t,1,synth_vessels,unet4,1,blowup,miou,mean,40.0,1.0,
t,1,synth_vessels,,1,ground_truth,fg_percent,mean,7.0,,
"""

CLAIMS = [
    {"id": "t-rce", "text": "RCE beats CE", "better": "rce_1", "than": ["ce"], "metric": "miou"},
    {"id": "t-nll", "better": "rce_05", "than": "best_of", "metric": "nll",
     "where": {"fraction": "1"}},
    {"id": "t-missing", "better": "caml", "than": ["ce"], "metric": "miou"},
    {"id": "t-diverged", "better": "blowup", "than": ["ce"], "metric": "miou"},
]  # fmt: skip


@pytest.fixture(scope="package")
def report_study(tmp_path_factory) -> Path:
    """The tiny study of test_report_workflow.py, run and reported (``report.html``) once for
    the package; profiles/default comes along so the report gets the workflow's stylesheet."""
    cfg = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    cfg["study"] = "report_tiny"
    cfg["datasets"] = {"synth_vessels": {"source": "synthetic", "n": 12, "size": 32}}
    cfg["losses"] = {
        "ce": {"name": "ce"},
        "rce_05": {"name": "rce", "lam": 0.5},
        "rce_1": {"name": "rce", "lam": 1.0},
        "blowup": {"name": "dice_ce", "w_dice": 0.0, "w_ce": 1.0e39},
    }
    cfg["grid"] = [
        {"losses": ["ce", "rce_05", "rce_1"]},
        {"losses": ["blowup"], "fractions": [1.0]},  # diverges: one cell is enough
    ]
    cfg["report"] = {
        "paper_results": "config/paper_results/report_tiny.csv",
        "claims": "config/claims/report_tiny.yaml",
        "qualitative_pair": ["rce_1", "ce"],
        "analytic_figures": ["paper000_fig1"],
    }
    wd = copy_workflow(tmp_path_factory.mktemp("report_wf"))
    shutil.copytree(REPO / "profiles" / "default", wd / "profiles" / "default")
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (wd / "config" / "paper_results").mkdir(exist_ok=True)
    (wd / "config" / "paper_results" / "report_tiny.csv").write_text(PUBLISHED)
    (wd / "config" / "claims").mkdir(exist_ok=True)
    (wd / "config" / "claims" / "report_tiny.yaml").write_text(yaml.safe_dump(CLAIMS))
    run_snakemake(wd)
    run_snakemake(wd, "--report", "report.html")
    return wd
