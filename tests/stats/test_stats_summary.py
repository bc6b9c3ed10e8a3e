"""summarize / run_means against numpy and scipy.stats.bootstrap on fixed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from segbench.stats import bootstrap_ci, format_mean_std, run_means, summarize


def test_summarize_plain(runs):
    by = ["dataset", "fraction", "loss"]
    out = summarize(runs, by, "miou")
    assert list(out.columns) == [*by, "mean", "std", "n", "n_nan", "ci_lo", "ci_hi"]
    assert len(out) == 2 * 2 * 4
    row = out[(out.dataset == "covid") & (out.fraction == "1") & (out.loss == "caml")].iloc[0]
    vals = runs.query("dataset == 'covid' and fraction == '1' and loss == 'caml'")[
        "miou"
    ].to_numpy()
    assert row["n"] == 15 and row["n_nan"] == 0
    assert row["mean"] == pytest.approx(vals.mean())
    assert row["std"] == pytest.approx(vals.std(ddof=1))
    res = sps.bootstrap(
        (vals,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0)
    )
    assert row["ci_lo"] == pytest.approx(res.confidence_interval.low)
    assert row["ci_hi"] == pytest.approx(res.confidence_interval.high)
    assert row["ci_lo"] < row["mean"] < row["ci_hi"]
    # reproducible
    pd.testing.assert_frame_equal(out, summarize(runs, by, "miou"))


def test_summarize_seed_unit_is_paper_000_protocol(runs):
    sub = runs.query("dataset == 'droso' and fraction == '0.125' and loss == 'dice'")
    out = summarize(sub, ["loss"], "miou", unit=["seed"], n_boot=2000)
    per_seed = sub.groupby("seed")["miou"].mean().to_numpy()
    assert out.loc[0, "n"] == 3
    assert out.loc[0, "mean"] == pytest.approx(per_seed.mean())
    assert out.loc[0, "std"] == pytest.approx(per_seed.std(ddof=1))


def test_summarize_nan_and_small_groups():
    df = pd.DataFrame({"g": ["a", "a", "a", "b"], "v": [1.0, np.nan, 3.0, 5.0]})
    out = summarize(df, ["g"], "v", n_boot=1000).set_index("g")
    assert out.loc["a", "n"] == 2 and out.loc["a", "n_nan"] == 1
    assert out.loc["a", "mean"] == 2.0 and out.loc["a", "std"] == pytest.approx(np.sqrt(2))
    assert (
        out.loc["b", "n"] == 1 and np.isnan(out.loc["b", "std"]) and np.isnan(out.loc["b", "ci_lo"])
    )
    assert bootstrap_ci(np.array([2.0, 2.0, 2.0])) == (2.0, 2.0)
    with pytest.raises(ValueError, match="not in the table"):
        summarize(df, ["nope"], "v")


def test_run_means_background():
    tidy = pd.DataFrame(
        {
            "dataset": "d", "model": "m", "loss": "l", "fraction": "1", "seed": 0, "fold": 0,
            "class": [0, 1, 2], "iou": [0.9, 0.5, 0.1],
        }
    )  # fmt: skip
    with_bg = run_means(tidy, "iou")
    assert with_bg.loc[0, "miou"] == pytest.approx(0.5) and with_bg.loc[0, "n_classes"] == 3
    no_bg = run_means(tidy, "iou", name="miou_fg", include_background=False)
    assert no_bg.loc[0, "miou_fg"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="more than once"):
        run_means(pd.concat([tidy, tidy]), "iou")


def test_format_mean_std():
    assert format_mean_std(0.45264, 0.00113, scale=100) == "45.26±0.11"
    assert format_mean_std(0.5, float("nan")) == "0.50"


# ---------- a single replicate has no std (issue #15) ----------


def test_summarize_single_replicate_std_is_nan_for_every_ddof():
    """numpy gives std([x], ddof=0) = 0.0; one replicate has no spread, so the table says NaN."""
    df = pd.DataFrame({"g": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0], "v": [1.0, 2.0, 4.0, 5.0]})
    folds = pd.DataFrame({"g": "c", "seed": 0, "fold": [0, 1, 2], "v": [1.0, 2.0, 3.0]})
    for ddof in (0, 1):
        out = summarize(df, ["g"], "v", ddof=ddof, n_boot=200).set_index("g")
        assert out.loc["b", "n"] == 1 and np.isnan(out.loc["b", "std"])
        assert out.loc["a", "std"] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=ddof))
        # unit=["seed"] with one seed: the folds are averaged into one replicate
        one = summarize(folds, ["g"], "v", unit=["seed"], ddof=ddof, n_boot=200).iloc[0]
        assert one["n"] == 1 and one["mean"] == 2.0 and np.isnan(one["std"])


def test_format_mean_std_single_replicate_shows_n1_not_zero():
    assert format_mean_std(0.45264, 0.0, scale=100, n=1) == "45.26 (n=1)"
    assert format_mean_std(0.45264, float("nan"), scale=100, n=1) == "45.26 (n=1)"
    assert format_mean_std(0.45264, 0.00113, scale=100, n=3) == "45.26±0.11"
    assert format_mean_std(float("nan"), float("nan"), n=1) == "n/a"
