"""The real Snakemake DAG on the tiny 3D study (.test/config_3d.yaml, issue 20): synthetic
volumes -> splits -> 3D training (patches, sliding-window validation / test) -> evaluation in mm
-> tidy table, paper table and the other report outputs; a no-op rerun; the HTML report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, copy_workflow, run_snakemake, snakemake_bin

pytestmark = pytest.mark.slow

TINY_3D = REPO / ".test" / "config_3d.yaml"


@pytest.fixture(scope="module")
def workflow_3d(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("wf3d"), TINY_3D)
    run_snakemake(wd)
    return wd


def test_3d_outputs_content(workflow_3d: Path):
    cfg = yaml.safe_load(TINY_3D.read_text())
    tidy = pd.read_csv(workflow_3d / "results/tables/tidy.csv", dtype={"fraction": str})
    n_runs = len(cfg["models"]) * len(cfg["losses"]) * cfg["folds"]
    assert tidy.groupby(["dataset", "model", "loss", "fraction", "seed", "fold"]).ngroups == n_runs
    assert len(tidy) == n_runs * 2  # one row per (run, class): background, lesion
    assert set(tidy["status"]) == {"completed"}
    assert tidy["dice"].between(0, 1).all() and tidy["hd95"].notna().all()
    md = (workflow_3d / "results/tables/synth_vol3d_table.md").read_text()
    for model in cfg["models"]:
        for loss in cfg["losses"]:
            assert f"| {model} | 1 | {loss} |" in md, md
    assert "mDSC" in md and "lesion" in md
    png = (workflow_3d / "results/figures/qualitative/synth_vol3d.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    sidecar = json.loads((workflow_3d / "data/prepared/synth_vol3d.json").read_text())
    volumes = sidecar["recipe"]["volumes"]
    run_dir = workflow_3d / "results/runs/synth_vol3d/resunet3d/dice_ce/f1/s0/k0"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["training"]["patch"] == {
        "size": [8, 8, 8],
        "fg_rate": 0.5,
        "samples_per_volume": 2,
    }
    assert run["config"]["training"]["optimizer"] == "sgd"
    assert run["config"]["training"]["scheduler"] == "poly"
    with np.load(run_dir / "probs.npz") as z:
        probs, ids = z["probs"].astype(np.float32), [str(i) for i in z["ids"]]
    assert probs.shape == (run["n_test"], 2, 16, 16, 16)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=2e-3)
    for k, image_id in enumerate(ids):  # outside the volume's own extent: background, prob 1
        x, y, zz = volumes[image_id]["shape"]
        pad = np.ones((16, 16, 16), dtype=bool)
        pad[:x, :y, :zz] = False
        assert (probs[k, 0][pad] == 1.0).all()
    per_image = pd.read_csv(run_dir / "per_image.csv")
    assert sorted(per_image["image"].unique()) == sorted(ids)
    # each volume cropped to its extent and measured in mm: segbench.inference.volume_metrics
    # (tests/three_d/test_volume_metrics.py) on the saved probabilities gives the same rows
    from segbench.data.io import load_prepared
    from segbench.inference import volume_metrics

    data = load_prepared(workflow_3d / "data/prepared/synth_vol3d.npz")
    for k, image_id in enumerate(ids):
        label = data.masks[data.indices([image_id])[0]]
        want = volume_metrics(probs[k], label, volumes[image_id])
        got = per_image[per_image["image"] == image_id].sort_values("class")
        for m in ("dice", "hd95", "nsd"):
            np.testing.assert_allclose(got[m], [r[m] for r in want], rtol=1e-9, err_msg=m)
    assert volumes[ids[0]]["spacing"] == [1.0, 1.0, 2.0]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_images"] == run["n_test"] == len(ids)
    n_voxels = sum(int(np.prod(volumes[i]["shape"])) for i in ids)
    counted = sum(c["tp"] + c["fn"] for c in metrics["dataset"]["classes"])
    assert counted == n_voxels  # the pooled confusion counts the unpadded voxels only


def test_3d_noop_rerun_and_report(workflow_3d: Path):
    out = run_snakemake(workflow_3d, "--dry-run").stdout
    assert "Nothing to be done" in out, out[-2000:]
    run_snakemake(workflow_3d, "--report", "report.html")
    html = (workflow_3d / "report.html").read_text(errors="replace")
    assert "synth_vol3d" in html and "ci_tiny_3d" in html


def test_3d_train_job_killed_then_rerun_equals_uninterrupted(workflow_3d: Path, tmp_path: Path):
    """A 3D train_pack job SIGKILLed mid-epoch by ``segbench.faults`` (``SEGBENCH_FAULT=step@2``,
    once), then ``snakemake --rerun-incomplete``: the job resumes fold 0 from its checkpoint and
    both folds' training outputs equal those of the uninterrupted workflow (``workflow_3d``)."""
    import os

    wd = copy_workflow(tmp_path / "wf", TINY_3D)
    cell = "results/runs/synth_vol3d/resunet3d/ce/f1/s0"
    targets = [f"{cell}/k{k}/probs.npz" for k in (0, 1)]
    marker = tmp_path / "step.fired"
    env = dict(os.environ, SEGBENCH_FAULT="step@2", SEGBENCH_FAULT_ONCE=str(marker))
    killed = subprocess.run(
        [snakemake_bin(), "--cores", "2", *targets], cwd=wd, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode != 0 and marker.exists(), killed.stdout[-2000:]
    assert not (wd / cell / "k0" / "run.json").exists()
    run_snakemake(wd, "--rerun-incomplete", *targets)
    log = (wd / "logs/train_pack/synth_vol3d/resunet3d/ce/f1/s0/pack.log").read_text()
    assert "resumed from" in log
    for k in (0, 1):
        for name in ("probs.npz", "history.csv", "best.pt"):
            got = (wd / cell / f"k{k}" / name).read_bytes()
            assert got == (workflow_3d / cell / f"k{k}" / name).read_bytes(), (k, name)
