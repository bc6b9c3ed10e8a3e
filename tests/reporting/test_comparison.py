"""Reproduced vs published table and the claims table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segbench.reporting.comparison import (
    CLAIM_TABLE_COLUMNS,
    claims_markdown,
    claims_table,
    comparison_markdown,
    no_claims_frame,
    no_published_frame,
    published_comparison,
    read_published,
)
from segbench.stats import evaluate_claims
from tests.reporting.conftest import make_tidy


def _pub_row(**kw) -> dict:
    row = {
        "study": "s", "table": "1", "dataset": "dsA", "model": "m", "fraction": "1",
        "loss": "good", "metric": "miou", "class": "mean", "mean": 50.0, "std": 1.0, "notes": "",
    }  # fmt: skip
    row.update(kw)
    return row


def _rep(tidy, loss="good", fraction="1", col="miou", cls=None) -> np.ndarray:
    t = tidy[(tidy["dataset"] == "dsA") & (tidy["loss"] == loss) & (tidy["fraction"] == fraction)]
    t = t[t["status"] == "completed"]
    if cls is None:
        return t.drop_duplicates(["seed", "fold"])[col].to_numpy()
    return t[t["class_name"] == cls][col].to_numpy()


def test_published_comparison_values_and_statuses(tidy, tmp_path):
    tidy = tidy.assign(hd=tidy["hd95"] * 1.5 + 3.0)  # classic HD > HD95
    rep = _rep(tidy) * 100
    m, s = rep.mean(), rep.std(ddof=1)
    fg_iou = _rep(tidy, col="iou", cls="fg") * 100
    hd = _rep(tidy, col="hd", cls="fg")
    rows = [
        _pub_row(mean=m + 0.5 * s, std=0.0),  # within (|diff| = 0.5 s <= s)
        _pub_row(loss="mid", mean=0.0, std=1.0),  # far off
        _pub_row(metric="iou", **{"class": "fg"}, mean=fg_iou.mean(), std=np.nan),
        _pub_row(metric="hd", **{"class": "fg"}, mean=hd.mean() + 100, std=2.0),
        _pub_row(dataset="dsZ"),  # cell not run
        _pub_row(metric="mnsd"),  # metric not computed
        _pub_row(loss="bad", mean=np.nan, std=np.nan),  # no published value (training failed)
        _pub_row(model="", loss="ground_truth", metric="fg_percent"),  # dataset description
    ]
    path = tmp_path / "pub.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = published_comparison(tidy, read_published(str(path)))
    assert len(out) == 7  # the ground-truth row is not a run
    assert list(out["status"]) == [
        "compared", "compared", "compared", "compared", "not run", "not computed",
        "no published value",
    ]  # fmt: skip
    first = out.iloc[0]
    assert first["reproduced_mean"] == pytest.approx(m) and first[
        "reproduced_std"
    ] == pytest.approx(s)
    assert first["diff"] == pytest.approx(-0.5 * s) and first["spread"] == pytest.approx(s)
    assert list(out["within"][:4]) == ["yes", "no", "yes", "no"]
    assert "no published std" in out.iloc[2]["notes"]
    # published HD (paper 004 l.210) is compared with our max HD, in px (not x100), not HD95
    assert out.iloc[3]["reproduced_mean"] == pytest.approx(hd.mean())
    md = comparison_markdown(out, "Pub")
    assert "2 of 4 compared values lie within" in md
    assert "Means: per-image aggregation" in md
    assert "Means: dataset aggregation" in comparison_markdown(out, "Pub", "dataset")


def test_published_hd_is_not_compared_with_hd95(tidy, tmp_path):
    """Issue #15: a published HD row needs our ``hd``; a tidy table with only ``hd95`` says
    "not computed" instead of comparing HD with HD95; ``hd95`` rows still use ``hd95``."""
    hd95 = _rep(tidy, col="hd95", cls="fg")
    rows = [
        _pub_row(metric="hd", **{"class": "fg"}, mean=20.0, std=1.0),
        _pub_row(metric="hd95", **{"class": "fg"}, mean=20.0, std=1.0),
    ]
    path = tmp_path / "pub.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = published_comparison(tidy, read_published(str(path)))
    assert list(out["status"]) == ["not computed", "compared"]
    assert out.iloc[1]["reproduced_mean"] == pytest.approx(hd95.mean())


def test_published_comparison_counts_diverged(tidy, tmp_path):
    path = tmp_path / "pub.csv"
    pd.DataFrame([_pub_row(loss="bad", fraction="0.5", mean=40.0)]).to_csv(path, index=False)
    out = published_comparison(tidy, read_published(str(path)))
    assert out.iloc[0]["n"] == 5 and out.iloc[0]["n_diverged"] == 1
    assert "1 of 6 runs diverged" in out.iloc[0]["notes"]


def test_published_fraction_is_canonicalised(tidy, tmp_path):
    path = tmp_path / "pub.csv"
    pd.DataFrame([_pub_row(fraction="1/2", loss="good")]).to_csv(path, index=False)
    out = published_comparison(tidy, read_published(str(path)))
    assert out.iloc[0]["fraction"] == "0.5" and out.iloc[0]["status"] == "compared"


def test_no_published_and_no_claims_tables():
    p = no_published_frame("report.paper_results is null")
    assert "No published results" in comparison_markdown(p, "t")
    c = no_claims_frame("report.claims is null")
    assert list(c.columns) == CLAIM_TABLE_COLUMNS and "No claims" in claims_markdown(c, "t")


def test_claims_table_matches_evaluate_claims_and_skips_what_cannot_run():
    tidy = make_tidy(seeds=(0, 1, 2), folds=(0, 1, 2))  # 9 pairs per block
    claims = [
        {"id": "c1", "text": "good beats mid", "better": "good", "than": ["mid", "bad"],
         "mode": "each", "metric": "miou"},
        {"id": "c2", "better": "good", "than": ["mid", "not_run"], "metric": "nll",
         "where": {"dataset": "dsA"}},
        {"id": "c3", "better": "not_run", "than": "mid", "metric": "miou"},
        {"id": "c4", "better": "good", "than": "mid", "metric": "mnsd"},
        {"id": "c5", "better": "bad", "than": "best_of", "metric": "miou",
         "where": {"fraction": "1/2"}},
    ]  # fmt: skip
    out = claims_table(tidy, claims)
    assert list(out.columns) == CLAIM_TABLE_COLUMNS
    assert list(dict.fromkeys(out["id"])) == ["c1", "c2", "c3", "c4", "c5"]
    c1 = out[out["id"] == "c1"]
    assert len(c1) == 2 and c1["claim_supported"].all() and set(c1["verdict"]) == {"supported"}
    c2 = out[out["id"] == "c2"].iloc[0]
    assert c2["than"] == "mid" and "without not_run" in c2["note"] and c2["direction_ok"]
    assert out[out["id"] == "c3"].iloc[0]["verdict"] == "not evaluated"
    assert "not computed" in out[out["id"] == "c4"].iloc[0]["note"]
    assert out[out["id"] == "c5"].iloc[0]["verdict"] == "contradicted"
    # the evaluated claims give exactly evaluate_claims' numbers (one Holm family)
    runs = tidy.drop_duplicates(["dataset", "model", "loss", "fraction", "seed", "fold"])
    valid = [claims[0], {**claims[1], "than": ["mid"]}, claims[4]]
    ref = evaluate_claims(runs, valid)
    got = out[out["verdict"] != "not evaluated"]
    assert got["p_holm"].to_numpy() == pytest.approx(ref["p_holm"].to_numpy())
    md = claims_markdown(out, "Claims")
    assert "2 of 5 claims supported" in md and "not evaluated" in md  # c1, c2
