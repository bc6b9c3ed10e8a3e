"""End to end through the real Snakemake rules on a tiny study that switches every reporting
option on: published numbers, claims, a lambda sweep (RCE lam 0.5 / 1.0), a qualitative pair,
one analytic figure, and a loss that diverges at the first step (a Dice+CE whose CE weight of
1e39 overflows float32, as in tests/reliability). One snakemake run (+ a dry run and the
report) serves every assertion; the study is the ``report_study`` fixture of
tests/reporting/conftest.py, shared with test_report_render.py."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import run_snakemake

pytestmark = pytest.mark.slow

def test_every_output_exists(report_study):
    tables = report_study / "results" / "tables"
    figures = report_study / "results" / "figures"
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
    assert "Nothing to be done" in run_snakemake(report_study, "--dry-run").stdout


def test_statistics_tables(report_study):
    summary = pd.read_csv(report_study / "results/tables/summary.csv", dtype={"fraction": str})
    main = summary[summary["metric"] == "miou"]
    assert len(main) == 7 and (main["n_runs"] == 2).all()  # 2 fractions x 3 losses + blowup
    blowup = main[main["loss"] == "blowup"]
    assert (blowup["n_diverged"] == 2).all() and blowup["mean"].isna().all()
    assert (main[main["loss"] != "blowup"]["n_diverged"] == 0).all()
    table = (report_study / "results/tables/synth_vessels_table.md").read_text()
    assert any("| blowup |" in row and row.endswith("| 2 | 2 |") for row in table.splitlines())
    friedman = pd.read_csv(report_study / "results/tables/friedman.csv")
    main = friedman[friedman["metric"] == "miou"]
    assert sorted(main["loss"]) == ["ce", "rce_05", "rce_1"] and (main["n_blocks"] == 2).all()
    paired = pd.read_csv(report_study / "results/tables/paired_wilcoxon.csv", dtype={"fraction": str})
    assert set(paired["n_pairs"]) == {2} and len(paired[paired["metric"] == "miou"]) == 6
    assert "blowup" not in set(paired["loss_a"]) | set(paired["loss_b"])


def test_paper_comparison_tables(report_study):
    pub = pd.read_csv(report_study / "results/tables/published.csv", dtype={"fraction": str})
    assert list(pub["status"]) == [
        "compared", "compared", "compared", "not run", "all runs diverged",
    ]  # fmt: skip
    assert "2 of 2 runs diverged" in pub["notes"].iloc[-1]
    assert set(pub["within"].dropna()) <= {"yes", "no"}
    claims = pd.read_csv(report_study / "results/tables/claims.csv")
    assert list(dict.fromkeys(claims["id"])) == ["t-rce", "t-nll", "t-missing", "t-diverged"]
    for cid, loss in (("t-missing", "caml"), ("t-diverged", "blowup")):
        row = claims[claims["id"] == cid].iloc[0]
        assert row["verdict"] == "not evaluated" and f"'{loss}' has no completed run" in row["note"]


def test_report_has_the_new_sections(report_study):
    html = (report_study / "report.html").read_text(errors="replace")
    for text in ("report_tiny", "Paper comparison", "Statistics", "lambda_ablation",
                 "paired_wilcoxon", "published", "Statistical tests"):  # fmt: skip
        assert text in html, text


def test_lambda_figure_reads_the_runs(report_study):
    """The lambda figure resolves the sweep from the runs' run.json (its log says which)."""
    log = (report_study / "logs/lambda_ablation/lambda_ablation.log").read_text()
    assert "{'rce': [0.5, 1.0]}" in log or "{'rce': [1.0, 0.5]}" in log, log
