"""``config/studies/paper000_quick.yaml`` (``make quick``) through the whole DAG to the report, on
the real Drosophila VNC copy in ``../shared/datasets/drosophila_vnc`` served as a mirror archive
with ``SEGBENCH_OFFLINE=1`` (the official URL is never tried), at a few training steps.

Only the study's training length and seeds are shortened (1 epoch of 2 steps, seed 0, all 5
folds): data, registry entry, model, losses, evaluation and report settings are the study's own,
so the published-vs-reproduced table and the claims table must hold Drosophila rows with numbers.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from segbench.reporting.comparison import comparison_markdown
from tests.conftest import REPO, copy_workflow, run_snakemake
from tests.data.datahelpers import shared_dataset, zip_dir

pytestmark = pytest.mark.slow

STUDY = REPO / "config" / "studies" / "paper000_quick.yaml"
DROS_ZIP = "groundtruth-drosophila-vnc-4a5f051466d24d8dc1e855ab55658bb1b1dcd6bf.zip"


def _short(cfg: dict) -> dict:
    cfg = dict(cfg, seeds=[0])
    cfg["training"] = dict(cfg["training"], epochs=1, val_every=1, checkpoint_every=1)
    return cfg


def test_quick_study_keeps_the_papers_cell():
    """What ``make quick`` runs: Table 3's U-Net 1/8 cell, 4 losses x 5 folds x 3 seeds."""
    from segbench.config import check_study, expand_runs, validate_schema

    cfg = yaml.safe_load(STUDY.read_text())
    validate_schema(cfg)
    check_study(cfg)
    runs = expand_runs(cfg)
    assert len(runs) == 60
    assert {r.loss for r in runs} == {"ce", "dice_ce_0.7", "ml", "caml"}
    assert {r.fraction for r in runs} == {"0.125"} and {r.model for r in runs} == {"unet"}
    assert cfg["datasets"]["drosophila_vnc"]["registry_id"] == "drosophila_vnc_p000"
    assert cfg["report"]["published_rows"] == "covered"


def test_covered_rows_leave_out_cells_not_run():
    df = pd.DataFrame(
        {
            "table": [3, 3], "dataset": ["d", "d"], "model": ["unet", "unet"],
            "fraction": ["0.125", "1"], "loss": ["ce", "ce"], "metric": ["miou", "miou"],
            "class": ["mean", "mean"], "published_mean": [50.0, 60.0], "published_std": [1.0, 1.0],
            "reproduced_mean": [40.0, None], "reproduced_std": [2.0, None], "n": [3, 0],
            "n_runs": [15, 0], "n_diverged": [0, 0], "diff": [-10.0, None], "spread": [2.2, None],
            "within": ["no", ""], "status": ["compared", "not run"], "notes": ["", ""],
        }
    )  # fmt: skip
    full = comparison_markdown(df, "t", "dataset", "all")
    covered = comparison_markdown(df, "t", "dataset", "covered")
    assert "| unet | 0.125 |" in full and "| unet | 1 |" in full
    assert "| unet | 0.125 |" in covered and "| unet | 1 |" not in covered
    assert "1 published rows of cells it does not run are left out" in covered
    with pytest.raises(ValueError, match="published_rows"):
        comparison_markdown(df, "t", "dataset", "some")


def test_quick_study_real_drosophila_through_the_report(tmp_path, monkeypatch):
    src = shared_dataset("drosophila_vnc")
    mirror = tmp_path / "mirror"
    prefix = DROS_ZIP.removesuffix(".zip") + "/"
    zip_dir(src, mirror / "drosophila_vnc" / DROS_ZIP, prefix=prefix, skip=("SHA256SUMS", "SOURCE.md"))
    monkeypatch.setenv("SEGBENCH_OFFLINE", "1")
    monkeypatch.setenv("SEGBENCH_MIRROR", str(mirror))

    wd = copy_workflow(tmp_path / "wf")
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(_short(yaml.safe_load(STUDY.read_text()))))
    run_snakemake(wd, timeout=1500)
    run_snakemake(wd, "--report", "report.html")
    tables = wd / "results" / "tables"

    # Table 3's U-Net 1/8 rows: every loss of the study compared on mIoU and the class IoUs.
    pub = pd.read_csv(tables / "published.csv", dtype={"fraction": str})
    dros = pub[pub["dataset"].eq("drosophila_vnc") & pub["status"].eq("compared")]
    assert set(dros["loss"]) == {"ce", "dice_ce_0.7", "ml", "caml"}
    assert set(dros["fraction"]) == {"0.125"} and set(dros["table"].astype(str)) >= {"3"}
    assert dros["published_mean"].notna().all() and dros["reproduced_mean"].notna().all()
    assert (dros["n_runs"] == 5).all()
    miou = dros[dros["metric"].eq("miou") & dros["table"].astype(str).eq("3")]
    assert len(miou) == 4 and miou["reproduced_mean"].between(0, 100).all()
    md = (tables / "published.md").read_text()
    assert "| 3 | drosophila_vnc | unet | 0.125 | caml | miou |" in md
    assert "not run |" not in md  # report.published_rows: covered

    # The 1/8-data Drosophila claims evaluated on the 5 paired runs, with numbers.
    claims = pd.read_csv(tables / "claims.csv")
    for cid in ("000-drosophila-caml-unet-1/8", "000-drosophila-caml-reduced"):
        row = claims.set_index("id").loc[cid]
        assert row["n_pairs"] == 5
        assert pd.notna(row["mean_better"]) and pd.notna(row["mean_than"]) and pd.notna(row["p_holm"])
        assert row["verdict"] not in ("no data", "not evaluated")
    assert "000-drosophila-caml-unet-1/8" in (tables / "claims.md").read_text()
    assert (wd / "report.html").stat().st_size > 10_000
