"""A shrunken copy of paper 000's study (same losses, grid blocks, report settings and rules;
tiny synthetic data in place of CHASE_DB1, a tiny U-Net) runs through to its tables and report."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from segbench.config import check_study, expand_runs, shrink_study, validate_schema
from tests.conftest import REPO, copy_workflow, run_snakemake

pytestmark = pytest.mark.slow


def _paper000_smoke() -> dict:
    cfg = yaml.safe_load((REPO / "config/studies/paper000.yaml").read_text())
    return shrink_study(
        cfg,
        datasets={"chase_db1": {"source": "synthetic", "generator": "synth_vessels", "n": 16, "size": 32}},
        models={"unet": {"name": "unet", "base_channels": 4, "depth": 2}},
        folds=2,
        training={"epochs": 1, "steps_per_epoch": 2, "crop": None, "checkpoint_every": 1, "val_every": 1},
    )


def test_shrunken_grid_keeps_the_papers_cells():
    cfg = _paper000_smoke()
    validate_schema(cfg)
    check_study(cfg)
    runs = expand_runs(cfg)
    cells = {(r.loss, r.fraction) for r in runs}
    assert ("caml_r3", "0.25") in cells and ("dice_ce_0.3", "1") in cells  # Table 4 ablation, lambda sweep
    assert {r.fraction for r in runs} == {"1", "0.5", "0.25"}  # CHASE's own fractions
    assert {r.dataset for r in runs} == {"chase_db1"} and {r.model for r in runs} == {"unet"}


def test_shrunken_paper000_through_tables_and_report(tmp_path):
    cfg = _paper000_smoke()
    wd = copy_workflow(tmp_path / "wf")
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    run_snakemake(wd)
    run_snakemake(wd, "--report", "report.html")
    tables = wd / "results" / "tables"
    md = (tables / "chase_db1_table.md").read_text()
    for loss in ("ce", "dice", "ml", "caml", "dice_ce_0.7", "caml_r5"):
        assert f"| {loss} |" in md
    published = pd.read_csv(tables / "published.csv")
    assert len(published) > 0 and (published["dataset"] == "chase_db1").any()
    compared = published[published["dataset"].eq("chase_db1") & published["model"].eq("unet")]
    assert compared["reproduced_mean"].notna().any() if "reproduced_mean" in compared else len(compared)
    assert (tables / "claims.csv").stat().st_size > 0
    assert (wd / "report.html").stat().st_size > 10_000
