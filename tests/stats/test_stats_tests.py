"""Wilcoxon + Holm, Friedman + Nemenyi, CD, claims: against scipy / scikit-posthocs / statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy import stats as sps

from segbench.stats import (
    critical_difference,
    evaluate_claims,
    friedman_nemenyi,
    holm,
    metric_higher_is_better,
    min_attainable_p,
    nemenyi_q,
    paired_wilcoxon_holm,
    plot_cd_diagram,
    rank_biserial,
)

PAIR = ["dataset", "model", "fraction", "fold", "seed"]


# ---------- Holm and effect size ----------


def test_holm_hand_worked_and_statsmodels():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # sorted .005 .01 .03 .04 (m=4): 4*.005=.02, 3*.01=.03, 2*.03=.06, 1*.04=.04 -> max-acc .06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02, np.nan])
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(3)
    q = rng.uniform(0, 0.2, 12)
    np.testing.assert_allclose(holm(q), multitest.multipletests(q, method="holm")[1])


def test_rank_biserial_hand_worked():
    # |d| ranks 1 2 3 4; R+ = 1 + 2 + 4 = 7, R- = 3 -> (7 - 3) / 10
    assert rank_biserial([1.0, 2.0, -3.0, 4.0]) == pytest.approx(0.4)
    assert rank_biserial([0.0, 1.0, 2.0]) == 1.0  # zeros dropped
    assert rank_biserial([0.0, 0.0]) == 0.0
    # ties get average ranks: |d| = 1 1 2 -> ranks 1.5 1.5 3; R+ = 1.5 + 3, R- = 1.5
    assert rank_biserial([1.0, -1.0, 2.0]) == pytest.approx((4.5 - 1.5) / 6)


# ---------- paired Wilcoxon ----------


def test_paired_wilcoxon_matches_scipy_and_scikit_posthocs(runs):
    sub = runs.query("dataset == 'covid' and fraction == '1'")
    out = paired_wilcoxon_holm(sub, "loss", "miou", PAIR)
    assert len(out) == 6  # 4 losses -> 6 pairs
    wide = sub.pivot(index=PAIR, columns="loss", values="miou")
    row = out[(out.loss_a == "caml") & (out.loss_b == "ce")].iloc[0]
    ref = sps.wilcoxon(wide["caml"], wide["ce"])
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["statistic"] == pytest.approx(ref.statistic)
    assert row["n_pairs"] == 15 and row["mean_diff"] > 0 and row["rank_biserial"] == 1.0
    np.testing.assert_allclose(out["p_holm"], holm(out["p_value"]))
    # scikit-posthocs: same pairing (rows in the same cell order), Holm over the 6 pairs
    melted = sub.sort_values(PAIR)[["loss", "miou"]]
    ref_mat = sp.posthoc_wilcoxon(melted, val_col="miou", group_col="loss", p_adjust="holm")
    for r in out.itertuples():
        assert r.p_holm == pytest.approx(ref_mat.loc[r.loss_a, r.loss_b])


def test_paired_wilcoxon_by_groups_and_errors(runs):
    out = paired_wilcoxon_holm(runs, by=["dataset", "fraction"], losses=["caml", "dice", "ce"])
    assert len(out) == 4 * 3
    assert set(out.columns[:2]) == {"dataset", "fraction"}
    assert out["significant"].all()  # effects are >> noise
    with pytest.raises(ValueError, match="more than one row"):
        paired_wilcoxon_holm(runs, pair_on=["dataset", "model", "fraction", "fold"])
    with pytest.raises(ValueError, match="not in column"):
        paired_wilcoxon_holm(runs, losses=["caml", "nope"])


# ---------- Friedman / Nemenyi / CD ----------


def test_friedman_nemenyi_matches_scipy_and_scikit_posthocs():
    # 6 blocks x 4 losses, hand-made so the ranks are clear
    values = np.array(
        [
            [0.70, 0.72, 0.74, 0.80],
            [0.60, 0.65, 0.63, 0.66],
            [0.50, 0.52, 0.55, 0.58],
            [0.81, 0.80, 0.83, 0.85],
            [0.40, 0.45, 0.44, 0.47],
            [0.62, 0.61, 0.66, 0.69],
        ]
    )
    losses = ["ce", "dice", "dice_ce", "caml"]
    df = pd.DataFrame(
        [
            {"dataset": f"d{i}", "loss": loss, "miou": values[i, j]}
            for i in range(6)
            for j, loss in enumerate(losses)
        ]
    )
    stat, p, posthoc, ranks = friedman_nemenyi(df, blocks=["dataset"])
    ref = sps.friedmanchisquare(*values.T)
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    ref_post = sp.posthoc_nemenyi_friedman(pd.DataFrame(values, columns=losses))
    for a in losses:
        for b in losses:
            assert posthoc.loc[a, b] == pytest.approx(ref_post.loc[a, b])
    # ranks (1 = best): caml always 1; ce 4,4,4,3,4,3 -> 22/6
    assert ranks.index[0] == "caml" and ranks["caml"] == 1.0
    assert ranks["ce"] == pytest.approx(22 / 6)
    assert ranks.attrs["n_blocks"] == 6
    # lower-is-better metric reverses the ranks
    _, _, _, ranks_low = friedman_nemenyi(df, blocks=["dataset"], higher_is_better=False)
    assert ranks_low["caml"] == 4.0


def test_friedman_drops_incomplete_blocks_and_validates(runs):
    df = runs[~((runs.dataset == "droso") & (runs.loss == "ce"))]
    res = friedman_nemenyi(df, blocks=["dataset", "fraction"])
    assert res.avg_ranks.attrs["n_blocks"] == 2
    assert res.avg_ranks.attrs["n_dropped_blocks"] == 2
    with pytest.raises(ValueError, match="at least 3 losses"):
        friedman_nemenyi(runs, blocks=["dataset", "fraction"], losses=["ce", "caml"])


def test_critical_difference_matches_demsar_table():
    # Demšar (2006) Table 5(a), q_0.05 for k = 2..10
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, q in zip(range(2, 11), table, strict=True):
        assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)
    # Demšar's worked example: k = 4 algorithms, N = 14 data sets -> CD = 1.25
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=5e-3)
    ranks = pd.Series({"a": 1.2, "b": 2.0, "c": 2.8, "d": 4.0})
    assert critical_difference(ranks, 14) == critical_difference(4, 14)


def test_plot_cd_diagram_writes_png(tmp_path):
    ranks = pd.Series({"caml": 1.2, "dice_ce": 2.1, "dice": 2.9, "ce": 3.8})
    path = plot_cd_diagram(ranks, critical_difference(ranks, 10), tmp_path / "cd.png", title="t")
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    post = pd.DataFrame(0.5, index=ranks.index, columns=ranks.index)
    plot_cd_diagram(ranks, 1.0, tmp_path / "cd.pdf", posthoc=post)
    assert (tmp_path / "cd.pdf").read_bytes()[:4] == b"%PDF"


# ---------- claims ----------


def test_claims_table(runs):
    additive = ["dice_ce_0.5", "dice"]
    claims = [
        {
            "id": "caml-best-additive",
            "text": "CAML beats the best additive loss at 1/8",
            "better": "caml",
            "than": additive,
            "where": {"model": "unet", "fraction": "1/8"},
            "metric": "miou",
        },
        {"id": "ce-beats-caml", "better": "ce", "than": "caml", "metric": "miou"},
        {"id": "caml-each", "better": "caml", "than": additive, "mode": "each", "metric": "miou"},
        {"id": "caml-hd", "better": "caml", "than": "best_of", "metric": "hd95"},
        {"id": "none", "better": "caml", "than": "ce", "where": {"dataset": "x"}, "metric": "miou"},
    ]
    out = evaluate_claims(runs, claims)
    first = out[out.id == "caml-best-additive"].iloc[0]
    assert first["than"] == "dice_ce_0.5"  # the better of the two additive losses
    assert first["n_pairs"] == 2 * 3 * 5  # two datasets x 3 seeds x 5 folds at 1/8
    assert first["supported"] and first["verdict"] == "supported" and first["claim_supported"]
    sub = runs[runs.fraction == "0.125"].pivot(index=PAIR, columns="loss", values="miou")
    assert first["mean_diff"] == pytest.approx((sub["caml"] - sub["dice_ce_0.5"]).mean())
    assert first["p_value"] == pytest.approx(sps.wilcoxon(sub["caml"], sub["dice_ce_0.5"]).pvalue)
    np.testing.assert_allclose(out["p_holm"], holm(out["p_value"]))
    contra = out[out.id == "ce-beats-caml"].iloc[0]
    assert contra["verdict"] == "contradicted" and not contra["supported"]
    assert contra["rank_biserial"] < 0
    each = out[out.id == "caml-each"]
    assert sorted(each["than"]) == sorted(additive) and each["claim_supported"].all()
    hd = out[out.id == "caml-hd"].iloc[0]
    assert hd["than"] == "dice_ce_0.5" and hd["mean_diff"] < 0 and hd["supported"]
    assert out[out.id == "none"].iloc[0]["verdict"] == "no data"


def test_claims_validation(runs):
    with pytest.raises(ValueError, match="unknown loss"):
        evaluate_claims(runs, [{"id": "x", "better": "cmal", "than": "ce", "metric": "miou"}])
    with pytest.raises(ValueError, match="lacks"):
        evaluate_claims(runs, [{"id": "x", "better": "caml", "metric": "miou"}])
    with pytest.raises(ValueError, match="where-column"):
        evaluate_claims(
            runs, [{"id": "x", "better": "caml", "than": "ce", "metric": "miou", "where": {"q": 1}}]
        )
    with pytest.raises(ValueError, match="mode"):
        evaluate_claims(
            runs, [{"id": "x", "better": "caml", "than": "ce", "metric": "miou", "mode": "all"}]
        )
    assert not metric_higher_is_better("hd95") and not metric_higher_is_better("mean_ece")
    assert metric_higher_is_better("miou") and metric_higher_is_better("nsd")


# ---------- power floor of the exact Wilcoxon test (issue #15) ----------


@pytest.mark.parametrize("n", range(3, 9))
def test_min_attainable_p_is_scipy_on_all_positive_differences(n):
    """2 / 2^n = scipy's two-sided exact p when every non-zero difference has the same sign."""
    rng = np.random.default_rng(n)
    d = rng.permutation(np.arange(1.0, n + 1.0)) * rng.uniform(0.5, 2.0)
    ref = sps.wilcoxon(d, alternative="two-sided", zero_method="wilcox").pvalue
    assert min_attainable_p(n) == pytest.approx(ref, rel=1e-12)
    assert min_attainable_p(n) == pytest.approx(2.0 / 2.0**n, rel=1e-12)
    # negative differences and dropped zeros (zero_method="wilcox") leave n, so the floor
    assert sps.wilcoxon(np.r_[-d, 0.0, 0.0]).pvalue == pytest.approx(min_attainable_p(n))


def test_min_attainable_p_bounds_every_p_and_edge_cases():
    assert min_attainable_p(0) == 1.0 and min_attainable_p(1) == 1.0
    assert min_attainable_p(5) == 0.0625
    with pytest.raises(ValueError, match=">= 0"):
        min_attainable_p(-1)
    rng = np.random.default_rng(7)
    for _ in range(300):  # ties and zeros included: p never goes below the floor of its n
        n = int(rng.integers(2, 13))
        d = rng.integers(-2, 5, n).astype(float)
        nz = int(np.count_nonzero(d))
        if nz == 0:
            continue
        p = sps.wilcoxon(d, zero_method="wilcox").pvalue
        assert p >= min_attainable_p(nz) * (1 - 1e-12)
    # Holm is non-decreasing in every raw p, so holm(floors) bounds holm(p) from below
    for _ in range(200):
        floors = rng.uniform(0, 0.2, 6)
        p = floors + rng.uniform(0, 0.2, 6)
        assert np.all(holm(p) >= holm(floors) - 1e-15)


def test_paired_wilcoxon_reports_floor_and_underpowered(runs):
    five = runs.query("dataset == 'covid' and fraction == '1' and seed == 0")  # 5 folds
    out = paired_wilcoxon_holm(five, "loss", "miou", PAIR)
    row = out[(out.loss_a == "caml") & (out.loss_b == "ce")].iloc[0]
    assert row["n_pairs"] == 5 and row["n_nonzero"] == 5
    assert row["p_value"] == pytest.approx(0.0625) and row["min_p"] == pytest.approx(0.0625)
    np.testing.assert_allclose(out["min_p_holm"], holm(out["min_p"]))  # 6 pairs: 6 x 0.0625
    assert row["min_p_holm"] == pytest.approx(6 * 0.0625)
    assert out["underpowered"].all() and not out["significant"].any()
    assert (out["p_holm"] >= out["min_p_holm"] - 1e-12).all()
    fifteen = runs.query("dataset == 'covid' and fraction == '1'")
    out15 = paired_wilcoxon_holm(fifteen, "loss", "miou", PAIR)
    assert not out15["underpowered"].any()
    assert out15["min_p"].to_numpy() == pytest.approx(2.0 / 2.0**15)


def test_claims_underpowered_verdict_states_min_attainable_p(runs):
    five = runs.query("dataset == 'covid' and fraction == '1' and seed == 0")  # 5 pairs
    one = evaluate_claims(five, [{"id": "a", "better": "caml", "than": "ce", "metric": "miou"}])
    r = one.iloc[0]
    assert r["direction_ok"] and not r["supported"] and r["underpowered"]
    assert r["n_nonzero"] == 5 and r["min_p"] == 0.0625 and r["min_p_holm"] == 0.0625
    assert r["verdict"] == "underpowered (min attainable p 0.0625)"
    # two comparisons in the family: Holm doubles the smallest floor; the opposite claim too
    two = evaluate_claims(
        five,
        [
            {"id": "a", "better": "caml", "than": "ce", "metric": "miou"},
            {"id": "b", "better": "ce", "than": "caml", "metric": "miou"},
        ],
    )
    np.testing.assert_allclose(two["min_p_holm"], [0.125, 0.125])
    assert list(two["verdict"]) == [
        "underpowered (min attainable p 0.0625, Holm 0.125)",
        "opposite, underpowered (min attainable p 0.0625, Holm 0.125)",
    ]
    # enough pairs: the same claim is decided by the data again
    full = evaluate_claims(runs, [{"id": "a", "better": "caml", "than": "ce", "metric": "miou"}])
    assert full.iloc[0]["verdict"] == "supported" and not full.iloc[0]["underpowered"]


def test_claims_not_significant_only_when_significance_was_attainable():
    """10 pairs (floor 0.002) with mixed signs: 'not significant', not 'underpowered'."""
    rows = []
    diffs = [0.03, -0.02, 0.01, -0.04, 0.05, 0.02, -0.01, 0.015, -0.025, 0.035]
    for fold, d in enumerate(diffs):
        base = {"dataset": "d", "model": "m", "fraction": "1", "seed": 0, "fold": fold}
        rows += [{**base, "loss": "x", "miou": 0.5 + d}, {**base, "loss": "y", "miou": 0.5}]
    out = evaluate_claims(
        pd.DataFrame(rows), [{"id": "c", "better": "x", "than": "y", "metric": "miou"}]
    )
    r = out.iloc[0]
    assert r["p_holm"] >= 0.05 and r["min_p_holm"] < 0.05 and not r["underpowered"]
    assert r["verdict"] == "not significant"
