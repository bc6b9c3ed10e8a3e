"""The real Snakemake DAG on the tiny config (.test/config.yaml): every rule, content checks,
no-op rerun, incremental rerun after a loss-parameter change, report, and bad-config exits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, copy_workflow, run_snakemake
from tests.reliability.conftest import parse_jobs

pytestmark = pytest.mark.slow

TINY = REPO / ".test" / "config.yaml"


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("wf"), TINY)
    run_snakemake(wd)
    return wd


def test_outputs_content(workflow_run: Path):
    cfg = yaml.safe_load(TINY.read_text())
    tidy = pd.read_csv(workflow_run / "results/tables/tidy.csv", dtype={"fraction": str})
    n_runs = len(cfg["datasets"]) * len(cfg["losses"]) * len(cfg["fractions"]) * cfg["folds"]
    assert tidy.groupby(["dataset", "model", "loss", "fraction", "seed", "fold"]).ngroups == n_runs
    assert len(tidy) == n_runs // 2 * (
        2 + 4
    )  # one row per (run, class): vessels 2, organs 4 classes
    assert tidy["iou"].between(0, 1).all() and tidy["miou"].between(0, 1).all()
    assert set(tidy["status"]) == {"completed"}
    # the run-level mIoU equals the mean of the class IoUs (background included)
    per_run = tidy.groupby(["dataset", "loss", "fraction", "fold"])
    assert (per_run["iou"].mean() - per_run["miou"].first()).abs().max() < 1e-9
    md = (workflow_run / "results/tables/synth_organs_table.md").read_text()
    for loss in cfg["losses"]:
        assert f"| {loss} |" in md
    assert "**" in md and "<u>" in md and "consolidation" in md
    tex = (workflow_run / "results/tables/synth_vessels_table.tex").read_text()
    assert "\\toprule" in tex and "\\textbf{" in tex
    png = (workflow_run / "results/figures/miou_vs_fraction.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    run_dir = workflow_run / "results/runs/synth_vessels/unet4/ce/f0.5/s0/k1"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["run"] == {
        "dataset": "synth_vessels",
        "model": "unet4",
        "loss": "ce",
        "fraction": "0.5",
        "seed": 0,
        "fold": 1,
    }
    assert run["config"]["loss_cfg"] == {"name": "ce"} and "commit" in run["git"]
    splits = json.loads((workflow_run / "results/splits/synth_vessels.json").read_text())
    fold1 = splits["folds"][1]
    assert run["n_train"] == len(fold1["fractions"]["0.5"]) == -(-len(fold1["train"]) // 2)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_images"] == run["n_test"] and 0 <= metrics["ece"] <= 1
    assert len(splits["folds"]) == 2


def test_noop_rerun_runs_zero_jobs(workflow_run: Path):
    out = run_snakemake(workflow_run, "--dry-run").stdout
    assert "Nothing to be done" in out, out[-2000:]


def test_loss_param_change_reruns_only_that_loss(workflow_run: Path, tmp_path: Path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["losses"]["dicece_0.5"]["w_dice"] = 0.3
    cfg["losses"]["dicece_0.5"]["w_ce"] = 0.7
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    out = run_snakemake(workflow_run, "--dry-run", "--configfile", str(changed)).stdout
    jobs = parse_jobs(out)
    packs = [wc for rule, wc in jobs if rule == "train_pack"]  # one job per cell, all folds
    evaluated = [wc for rule, wc in jobs if rule == "evaluate"]
    n_cells = len(cfg["datasets"]) * len(cfg["fractions"])
    assert len(packs) == n_cells and len(evaluated) == n_cells * cfg["folds"], out[-3000:]
    assert {wc["loss"] for wc in packs + evaluated} == {"dicece_0.5"}
    others = sorted({rule for rule, _ in jobs} - {"train_pack", "evaluate"})
    assert others == [
        "aggregate", "all", "claims_table", "figures", "paper_table", "published_table",
        "reliability_diagrams", "score_violins", "stats_tables",
    ], others  # fmt: skip


def test_unpacked_mode_has_one_train_job_per_run(tmp_path: Path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"]["pack"] = "none"
    wd = copy_workflow(tmp_path / "wf", TINY)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    jobs = parse_jobs(run_snakemake(wd, "--dry-run").stdout)
    n_runs = len(cfg["datasets"]) * len(cfg["losses"]) * len(cfg["fractions"]) * cfg["folds"]
    assert sum(rule == "train" for rule, _ in jobs) == n_runs
    assert not any(rule == "train_pack" for rule, _ in jobs)


def test_stacked_pack_mode_through_snakemake(workflow_run: Path, tmp_path: Path):
    """``training.pack_mode: stacked`` through the real DAG: one train_pack job per cell still
    writes one folder per fold, and its test probabilities agree with the sequential pack's
    (the workflow_run fixture) within the tolerance stated in tests/train/test_stacked.py."""
    import numpy as np

    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"]["pack_mode"] = "stacked"
    wd = copy_workflow(tmp_path / "wf", TINY)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    cell = "results/runs/synth_organs/unet4/dicece_0.5/f1/s0"
    targets = [f"{cell}/k{k}/probs.npz" for k in range(cfg["folds"])]
    proc = run_snakemake(wd, *targets)
    assert "train_pack" in proc.stdout + proc.stderr
    for t in targets:
        with np.load(wd / t) as a, np.load(workflow_run / t) as b:
            assert list(a["ids"]) == list(b["ids"])
            diff = np.abs(a["probs"].astype(np.float32) - b["probs"].astype(np.float32)).max()
            assert diff <= 2e-3, (t, diff)
        run = json.loads((wd / t).with_name("run.json").read_text())
        assert run["config"]["training"]["pack_mode"] == "stacked"


def test_report_builds(workflow_run: Path):
    run_snakemake(workflow_run, "--report", "report.html")
    html = (workflow_run / "report.html").read_text(errors="replace")
    assert "synth_organs" in html and "ci_tiny" in html


@pytest.mark.parametrize(
    "mutate, msg",
    [
        (lambda c: c["losses"].update(bad={"name": "no_such_loss"}), "unknown loss 'no_such_loss'"),
        (lambda c: c.update(fractions=[1.5]), "fractions"),
        (lambda c: c.update(folds=50), "more than the 12 images"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path: Path, mutate, msg):
    wd = copy_workflow(tmp_path / "wf", TINY)
    cfg = yaml.safe_load(TINY.read_text())
    mutate(cfg)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(wd, check=False)
    assert proc.returncode != 0
    assert msg in proc.stdout + proc.stderr
    assert not (wd / "results").exists() and not (wd / "data").exists()
