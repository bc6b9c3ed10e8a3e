"""Summary / paired / Friedman tables: same numbers as segbench.stats on the same runs, diverged
runs counted and excluded, explanatory result instead of a crash when a test cannot run."""

from __future__ import annotations

import pandas as pd
import pytest

from segbench.reporting.figures import cd_figure
from segbench.reporting.notes import aggregation_note
from segbench.reporting.statistics import (
    add_table_note,
    common_losses,
    friedman_analysis,
    friedman_frame,
    friedman_markdown,
    paired_markdown,
    paired_table,
    summary_markdown,
    summary_table,
)
from segbench.stats import PAIR_KEYS, friedman_nemenyi, paired_wilcoxon_holm, summarize
from tests.reporting.conftest import make_tidy


def _runs(tidy: pd.DataFrame) -> pd.DataFrame:
    runs = tidy.drop_duplicates(["dataset", "model", "loss", "fraction", "seed", "fold"])
    return runs[runs["status"] == "completed"]


def test_summary_table_equals_summarize_and_counts_diverged(tidy):
    s = summary_table(tidy, ["miou", "nll"], 100.0, n_boot=2000)
    assert set(s["metric"]) == {"miou", "nll"} and list(s["metric"].unique()) == ["miou", "nll"]
    runs = _runs(tidy).assign(miou=lambda d: d["miou"] * 100)
    ref = summarize(runs, ["dataset", "model", "fraction", "loss"], "miou", n_boot=2000)
    got = s[s["metric"] == "miou"].merge(ref, on=["dataset", "model", "fraction", "loss"])
    assert len(got) == len(ref) == 12
    for col in ("mean", "std", "n", "ci_lo", "ci_hi"):
        assert got[f"{col}_x"].to_numpy() == pytest.approx(got[f"{col}_y"].to_numpy())
    cell = s[(s["dataset"] == "dsA") & (s["loss"] == "bad") & (s["fraction"] == "0.5")]
    assert (
        (cell["n_runs"] == 6).all() and (cell["n_diverged"] == 1).all() and (cell["n"] == 5).all()
    )
    nll = s[(s["metric"] == "nll") & (s["loss"] == "good")]["mean"]
    assert nll.between(0.2, 0.3).all()  # calibration is not scaled
    md = summary_markdown(s, "Summary")
    assert md.startswith("### Summary") and "[" in md and "| diverged |" in md


def test_paired_table_equals_stats_and_direction(tidy):
    p = paired_table(tidy, ["miou", "mhd95"], 100.0)
    runs = _runs(tidy).assign(miou=lambda d: d["miou"] * 100)
    ref = paired_wilcoxon_holm(runs, "loss", "miou", PAIR_KEYS, by=["dataset", "model", "fraction"])
    got = p[p["metric"] == "miou"]
    assert len(got) == len(ref) == 4 * 3  # 4 blocks x 3 pairs
    merged = got.merge(ref, on=["dataset", "model", "fraction", "loss_a", "loss_b"])
    assert merged["p_holm_x"].to_numpy() == pytest.approx(merged["p_holm_y"].to_numpy())
    # the diverged run leaves 5 pairs in its block
    blk = got[(got["dataset"] == "dsA") & (got["fraction"] == "0.5")]
    assert set(blk[blk["loss_a"].eq("bad") | blk["loss_b"].eq("bad")]["n_pairs"]) == {5}
    # "better" follows the direction: good wins on mIoU (higher) and on HD95 (lower)
    for metric in ("miou", "mhd95"):
        with_good = (p["loss_a"] == "good") | (p["loss_b"] == "good")
        assert (p[(p["metric"] == metric) & with_good]["better"] == "good").all()
    # fraction 1 blocks come before 0.5
    assert p["fraction"].iloc[0] == "1"
    md = paired_markdown(p, "Paired")
    assert "Holm" in md and "| miou |" in md


def test_paired_table_single_loss_is_empty():
    tidy = make_tidy(losses={"only": 0.0})
    p = paired_table(tidy)
    assert p.empty and "nothing to compare" in paired_markdown(p, "t")


def test_friedman_matches_stats_and_cd_figure(tidy, tmp_path):
    rep = friedman_analysis(tidy, "miou")
    assert rep.ok and rep.n_blocks == 4 and rep.losses == ["bad", "good", "mid"]
    ref = friedman_nemenyi(_runs(tidy), value="miou", blocks=["dataset", "model", "fraction"])
    assert rep.statistic == pytest.approx(ref.statistic) and rep.pvalue == pytest.approx(ref.pvalue)
    assert rep.avg_ranks.index[0] == "good" and rep.cd > 0
    hd = friedman_analysis(tidy, "mhd95")  # lower is better: good still ranks first
    assert hd.avg_ranks.index[0] == "good"
    frame = friedman_frame([rep, hd])
    assert list(frame["loss"][:3]) == ["good", "mid", "bad"] and set(frame["metric"]) == {
        "miou",
        "mhd95",
    }
    assert "Nemenyi" in friedman_markdown([rep], "F")
    cd_figure(rep, tmp_path / "cd.png")
    assert (tmp_path / "cd.png").read_bytes()[:4] == b"\x89PNG"


def test_friedman_explains_instead_of_failing(tmp_path):
    one_block = make_tidy(datasets={"dsA": ["bg", "fg"]}, fractions=("1",))
    rep = friedman_analysis(one_block, "miou")
    assert not rep.ok and "1 block(s)" in rep.reason
    two_losses = make_tidy(losses={"a": 0.0, "b": 0.1})
    rep2 = friedman_analysis(two_losses, "miou")
    assert not rep2.ok and "2 common loss(es)" in rep2.reason
    assert "Not computed" in friedman_markdown([rep2], "F")
    frame = friedman_frame([rep])
    assert len(frame) == 1 and frame["note"].iloc[0] == rep.reason
    cd_figure(rep, tmp_path / "cd.png")  # placeholder panel
    assert (tmp_path / "cd.png").stat().st_size > 1000


def test_friedman_uses_losses_common_to_every_block():
    base = make_tidy(datasets={"dsA": ["bg", "fg"], "dsB": ["bg", "fg"]})
    extra = make_tidy(datasets={"dsA": ["bg", "fg"]}, losses={"ablation": 0.01}, seed=3)
    tidy = pd.concat([base, extra], ignore_index=True)
    runs = tidy.drop_duplicates(["dataset", "model", "loss", "fraction", "seed", "fold"])
    assert common_losses(runs, "miou", ["dataset", "model", "fraction"]) == ["bad", "good", "mid"]
    rep = friedman_analysis(tidy, "miou")
    assert rep.ok and "ablation" not in rep.avg_ranks.index and rep.n_blocks == 4


# ---------- issue #15: n = 1 cells, underpowered pairs, aggregation note in every header ----------


def test_summary_single_replicate_shows_n1_not_a_zero_std():
    tidy = make_tidy(seeds=(0,), folds=(0,))
    s = summary_table(tidy, ["miou"], 100.0, n_boot=200)
    assert (s["n"] == 1).all() and s["std"].isna().all()
    md = summary_markdown(s, "Summary")
    body = md[md.index("| dataset |") :]
    assert "±" not in body and body.count("(n=1)") == len(s)
    assert "one replicate: mean (n=1), no std" in md


@pytest.mark.parametrize("aggregate", ["image", "dataset"])
def test_statistics_headers_say_how_the_mean_is_formed(tidy, aggregate):
    note = aggregation_note(aggregate)
    s = summary_table(tidy, ["miou"], 100.0, n_boot=200)
    md = summary_markdown(s, "Summary", aggregate=aggregate, replicate="seed")
    assert md.startswith("### Summary\n\nHow a mean is formed: ") and note in md
    assert "folds averaged per seed" in md
    p = paired_table(tidy, ["miou"], 100.0)
    assert note in paired_markdown(p, "Paired", aggregate=aggregate)
    assert note in paired_markdown(p.iloc[0:0], "Paired", aggregate=aggregate)  # empty table too
    rep = friedman_analysis(tidy, "miou")
    assert note in friedman_markdown([rep], "F", aggregate=aggregate)
    claims = "### Claims\n\n2 of 5 claims supported.\n\n| a |\n|---|\n| 1 |\n"
    with_note = add_table_note(claims, aggregate, "means over paired runs")
    assert with_note.startswith(f"### Claims\n\nHow a mean is formed: {note}; means over")
    assert with_note.endswith("2 of 5 claims supported.\n\n| a |\n|---|\n| 1 |\n")
    with pytest.raises(ValueError, match="evaluation.aggregate"):
        summary_markdown(s, "Summary", aggregate="pixel")


def test_paired_markdown_marks_underpowered_blocks():
    small = make_tidy(seeds=(0,), folds=(0, 1, 2))  # 3 pairs per block: floor 0.25
    p = paired_table(small, ["miou"], 100.0)
    assert p["underpowered"].all() and (p["min_p_holm"] >= 0.25).all()
    md = paired_markdown(p, "Paired")
    assert "| min p |" in md and md.count("| underpowered |") == len(p)
    big = make_tidy(seeds=(0, 1, 2), folds=(0, 1, 2))  # 9 pairs: 3 x 2/2^9 < 0.05
    pb = paired_table(big, ["miou"], 100.0)
    assert not pb["underpowered"].any()
    assert "| underpowered |" not in paired_markdown(pb, "Paired")
