"""A run whose training loss becomes non-finite stops early and is recorded as diverged, with the
epoch; the aggregation counts and shows such runs instead of dropping them or crashing.

The study's ``blowup`` loss (Dice+CE with a CE weight of 3e38: the loss overflows float32 at the
first step) diverges at epoch 1 in every fold, deterministically.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

from tests.reliability.conftest import STUDY, run_dir, runs_of, smk

pytestmark = pytest.mark.slow


def test_diverged_runs_are_recorded_with_their_epoch(reference):
    runs = runs_of(STUDY)
    diverged = [r for r in runs if r["loss"] == "blowup"]
    assert len(diverged) == 2
    for run in runs:
        d = run_dir(reference, run)
        info = json.loads((d / "run.json").read_text())["result"]
        metrics = json.loads((d / "metrics.json").read_text())
        if run["loss"] != "blowup":
            assert info["status"] == metrics["status"] == "completed"
            assert info["diverged_epoch"] is None and info["epochs_run"] == 3
            continue
        # stopped at once (3 epochs were asked for), status and epoch recorded everywhere
        assert info["status"] == metrics["status"] == "diverged"
        assert info["diverged_epoch"] == 1 and info["epochs_run"] == 1
        rows = list(csv.DictReader((d / "history.csv").open()))
        assert len(rows) == 1 and not math.isfinite(float(rows[0]["train_loss"]))
        with np.load(d / "probs.npz") as z:  # still a complete, finite output for evaluation
            assert np.isfinite(z["probs"].astype(np.float32)).all()
        assert not (d / "checkpoint.pt").exists()

    tidy = pd.read_csv(reference / "results/tables/tidy.csv", dtype={"fraction": str})
    per_run = tidy.drop_duplicates(["dataset", "model", "loss", "fraction", "seed", "fold"])
    assert len(per_run) == len(runs)  # nothing dropped
    assert per_run["status"].value_counts().to_dict() == {"completed": 6, "diverged": 2}
    blow = per_run[per_run["loss"] == "blowup"]
    assert set(blow["status"]) == {"diverged"} and set(blow["diverged_epoch"]) == {1}


def test_paper_table_counts_diverged_runs(reference):
    table = pd.read_csv(reference / "results/tables/synth_organs_table.csv", dtype=str)
    rows = {r["loss"]: r for _, r in table.iterrows()}
    # a cell whose runs all diverged stays in the table, counted, without a mean
    assert set(rows) == {"ce", "dicece", "blowup"}, table
    assert (rows["blowup"]["runs"], rows["blowup"]["diverged"]) == ("2", "2")
    for loss in ("ce", "dicece"):
        assert (rows[loss]["runs"], rows[loss]["diverged"]) == ("2", "0")
    md = (reference / "results/tables/synth_organs_table.md").read_text()
    assert "| blowup |" in md


def test_whole_report_stage_runs_with_diverged_runs(fresh_copy):
    """Every rule of the reporting stage (rule all) completes on a study with diverged runs."""
    out = smk(fresh_copy).stdout
    assert "(100%) done" in out, out[-3000:]


def test_figure_of_a_study_where_every_run_diverged(reference, tmp_path):
    """No completed run at all: the figure is still written (it used to crash in seaborn)."""
    from segbench.reporting.figures import miou_vs_fraction

    tidy = pd.read_csv(reference / "results/tables/tidy.csv", dtype={"fraction": str})
    only_diverged = tidy[tidy["status"] == "diverged"]
    miou_vs_fraction(only_diverged, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
