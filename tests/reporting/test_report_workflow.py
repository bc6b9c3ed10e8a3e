"""End to end through the real Snakemake rules on a tiny study that switches every reporting
option on: published numbers, claims, a lambda sweep (RCE lam 0.5 / 1.0), a qualitative pair,
one analytic figure, and a loss that diverges at the first step (a Dice+CE whose CE weight of
1e39 overflows float32, as in tests/reliability). One snakemake run (+ a dry run and the
report) serves every assertion."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def study(tmp_path_factory):
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
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (wd / "config" / "paper_results").mkdir(exist_ok=True)
    (wd / "config" / "paper_results" / "report_tiny.csv").write_text(PUBLISHED)
    (wd / "config" / "claims").mkdir(exist_ok=True)
    (wd / "config" / "claims" / "report_tiny.yaml").write_text(yaml.safe_dump(CLAIMS))
    run_snakemake(wd)
    run_snakemake(wd, "--report", "report.html")
    return wd


def test_every_output_exists(study):
    tables = study / "results" / "tables"
    figures = study / "results" / "figures"
    for name in ("summary", "paired_wilcoxon", "friedman", "published", "claims"):
        for ext in ("csv", "md"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0, name
    for ext in ("csv", "md", "tex"):
        assert (tables / f"synth_vessels_metrics.{ext}").exists()
    figs = ["cd_diagram", "reliability", "dice_violins", "lambda_ablation", "miou_vs_fraction"]
    for fig in [*figs, "qualitative/synth_vessels", "analytic/paper000_fig1"]:
        data = (figures / f"{fig}.png").read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 5000, fig
    assert sorted(p.name for p in (figures / "analytic").iterdir()) == ["paper000_fig1.png"]
    assert "Nothing to be done" in run_snakemake(study, "--dry-run").stdout


def test_statistics_tables(study):
    summary = pd.read_csv(study / "results/tables/summary.csv", dtype={"fraction": str})
    main = summary[summary["metric"] == "miou"]
    assert len(main) == 7 and (main["n_runs"] == 2).all()  # 2 fractions x 3 losses + blowup
    blowup = main[main["loss"] == "blowup"]
    assert (blowup["n_diverged"] == 2).all() and blowup["mean"].isna().all()
    assert (main[main["loss"] != "blowup"]["n_diverged"] == 0).all()
    table = (study / "results/tables/synth_vessels_table.md").read_text()
    assert any("| blowup |" in row and row.endswith("| 2 | 2 |") for row in table.splitlines())
    friedman = pd.read_csv(study / "results/tables/friedman.csv")
    main = friedman[friedman["metric"] == "miou"]
    assert sorted(main["loss"]) == ["ce", "rce_05", "rce_1"] and (main["n_blocks"] == 2).all()
    paired = pd.read_csv(study / "results/tables/paired_wilcoxon.csv", dtype={"fraction": str})
    assert set(paired["n_pairs"]) == {2} and len(paired[paired["metric"] == "miou"]) == 6
    assert "blowup" not in set(paired["loss_a"]) | set(paired["loss_b"])


def test_paper_comparison_tables(study):
    pub = pd.read_csv(study / "results/tables/published.csv", dtype={"fraction": str})
    assert list(pub["status"]) == [
        "compared", "compared", "compared", "not run", "all runs diverged",
    ]  # fmt: skip
    assert "2 of 2 runs diverged" in pub["notes"].iloc[-1]
    assert set(pub["within"].dropna()) <= {"yes", "no"}
    claims = pd.read_csv(study / "results/tables/claims.csv")
    assert list(dict.fromkeys(claims["id"])) == ["t-rce", "t-nll", "t-missing", "t-diverged"]
    for cid, loss in (("t-missing", "caml"), ("t-diverged", "blowup")):
        row = claims[claims["id"] == cid].iloc[0]
        assert row["verdict"] == "not evaluated" and f"'{loss}' has no completed run" in row["note"]


def test_report_has_the_new_sections(study):
    html = (study / "report.html").read_text(errors="replace")
    for text in ("report_tiny", "Paper comparison", "Statistics", "lambda_ablation",
                 "paired_wilcoxon", "published"):  # fmt: skip
        assert text in html, text
