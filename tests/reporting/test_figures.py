"""Figures from the tidy table and real (evaluated) run folders: pooling of reliability bins
against segbench.metrics, per-image scores, lambda sweeps, placeholders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segbench.metrics import reliability_bins
from segbench.reporting.figures import (
    image_scores,
    lambda_ablation,
    miou_vs_fraction,
    placeholder_figure,
    pool_reliability,
    pooled_ece,
    reliability_diagram,
    score_violins,
)
from segbench.reporting.runs import load_image_scores, load_reliability
from segbench.reporting.sweeps import lambda_sweeps
from tests.reporting.conftest import make_tidy

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 2000


def test_pooled_reliability_equals_bins_of_all_pixels(fake_runs, tmp_path):
    from segbench.data.io import load_prepared

    frames, diverged = load_reliability(fake_runs["metrics"], fake_runs["reliability"])
    assert diverged == 1 and len(frames) == len(fake_runs["metrics"]) - 1
    pooled = pool_reliability(frames)
    # independent check: the bins of every test pixel of the completed (vessels, good) runs
    data = load_prepared(fake_runs["root"] / "data/prepared/synth_vessels.npz")
    probs, targets = [], []
    for p, r in zip(fake_runs["probs"], fake_runs["runs"], strict=True):
        if r.dataset == "synth_vessels" and r.loss == "good":
            z = np.load(p)
            probs += list(z["probs"].astype(np.float32))
            targets += list(data.masks[data.indices([str(i) for i in z["ids"]])].astype(np.int64))
    ref = reliability_bins(probs, targets, n_bins=10)
    got = pooled[(pooled["dataset"] == "synth_vessels") & (pooled["loss"] == "good")]
    assert got["count"].to_numpy() == pytest.approx(ref["count"].to_numpy())
    assert np.allclose(got["accuracy"], ref["accuracy"], equal_nan=True)
    assert np.allclose(got["confidence"], ref["confidence"], equal_nan=True, atol=1e-6)
    ece = pooled_ece(pooled)
    filled = ref["count"] > 0
    want = ((ref["accuracy"] - ref["confidence"]).abs() * ref["count"])[filled].sum()
    assert ece[("synth_vessels", "good")] == pytest.approx(want / ref["count"].sum(), abs=1e-6)
    reliability_diagram(pooled, tmp_path / "rel.png", ["good", "mid", "bad"])
    assert _is_png(tmp_path / "rel.png")


def test_image_scores_follow_the_run_convention(fake_runs):
    pi = pd.read_csv(fake_runs["per_image"][0], dtype={"image": str})
    fg = image_scores(pi, include_background=False)
    both = image_scores(pi, include_background=True)
    img = fg["image"].iloc[0]
    rows = pi[(pi["image"] == img) & ~(pi["empty_gt"] & pi["empty_pred"])]
    assert fg["value"].iloc[0] == pytest.approx(rows[rows["class"] != 0]["dice"].mean())
    assert both["value"].iloc[0] == pytest.approx(rows["dice"].mean())


def test_score_violins_and_placeholder(fake_runs, tmp_path):
    scores, diverged = load_image_scores(fake_runs["metrics"], fake_runs["per_image"])
    assert diverged == 1 and scores["value"].between(0, 1).all()
    assert set(scores["dataset"]) == {"synth_vessels", "synth_organs"}
    score_violins(scores, tmp_path / "v.png", loss_order=["good", "mid", "bad"])
    assert _is_png(tmp_path / "v.png")
    score_violins(scores.iloc[:0], tmp_path / "empty.png")
    assert _is_png(tmp_path / "empty.png")


def test_lambda_sweeps_resolve_defaults():
    losses = {
        "ce": {"name": "ce"},
        "rce_05": {"name": "rce", "lam": 0.5},
        "rce": {"name": "rce"},  # default lam for L1 = 1.0
        "rce_kl": {"name": "rce", "penalty": "kl"},  # a family of its own, one value
        "dbce": {"name": "dbce"},
    }
    sw = lambda_sweeps(losses)
    assert sorted(sw["loss"]) == ["rce", "rce_05"]
    assert set(sw["lam"]) == {0.5, 1.0} and sw["family"].nunique() == 1
    assert lambda_sweeps({"ce": {"name": "ce"}, "dice": {"name": "dice"}}).empty


def test_lambda_ablation_and_fraction_figures(tmp_path):
    tidy = make_tidy(
        datasets={"dsA": ["bg", "fg"]}, losses={"rce_05": 0.01, "rce_1": 0.02, "ce": 0.0}
    )
    losses = {"rce_05": {"name": "rce", "lam": 0.5}, "rce_1": {"name": "rce", "lam": 1.0},
              "ce": {"name": "ce"}}  # fmt: skip
    lambda_ablation(tidy, lambda_sweeps(losses), tmp_path / "lam.png")
    assert _is_png(tmp_path / "lam.png")
    lambda_ablation(tidy, lambda_sweeps({"ce": {"name": "ce"}}), tmp_path / "none.png")
    assert _is_png(tmp_path / "none.png")  # placeholder
    miou_vs_fraction(tidy, tmp_path / "frac.png")
    assert _is_png(tmp_path / "frac.png")
    placeholder_figure(tmp_path / "p.png", "title", "why " * 50)
    assert _is_png(tmp_path / "p.png")
