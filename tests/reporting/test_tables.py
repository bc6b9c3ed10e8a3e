"""Paper-layout tables: cell statistics against numpy, ranks by direction, diverged runs,
rendering (Markdown emphasis, booktabs LaTeX)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segbench.reporting.tables import (
    latex_escape,
    metrics_table,
    paper_table,
    to_csv,
    to_latex,
    to_markdown,
)
from tests.reporting.conftest import make_tidy


def _cell(long: pd.DataFrame, column: str, fraction: str, loss: str) -> pd.Series:
    sel = (long["column"] == column) & (long["fraction"] == fraction) & (long["loss"] == loss)
    assert sel.sum() == 1
    return long[sel].iloc[0]


def test_paper_table_matches_numpy_and_counts_diverged(tidy):
    long = paper_table(tidy, "dsA", "iou", 100.0, loss_order=["good", "mid", "bad"])
    runs = tidy.drop_duplicates(["dataset", "loss", "fraction", "seed", "fold"])
    ok = runs[(runs["dataset"] == "dsA") & (runs["status"] == "completed")]
    vals = ok[(ok["fraction"] == "0.5") & (ok["loss"] == "bad")]["miou"].to_numpy() * 100
    cell = _cell(long, "mIoU", "0.5", "bad")
    assert cell["n"] == 5 and cell["n_runs"] == 6 and cell["n_diverged"] == 1  # 1 of 6 excluded
    assert cell["mean"] == pytest.approx(vals.mean()) and cell["std"] == pytest.approx(
        vals.std(ddof=1)
    )
    # per-class column of the foreground class
    cls = tidy[(tidy["dataset"] == "dsA") & (tidy["class_name"] == "fg")]
    cls = cls[(cls["status"] == "completed") & (cls["fraction"] == "1") & (cls["loss"] == "good")]
    assert _cell(long, "fg", "1", "good")["mean"] == pytest.approx(cls["iou"].mean() * 100)
    # rows: fraction 1 before 0.5, losses in the given order
    rows = long.drop_duplicates(["fraction", "loss"])[["fraction", "loss"]].values.tolist()
    assert rows[:3] == [["1", "good"], ["1", "mid"], ["1", "bad"]] and rows[3][0] == "0.5"
    # the best loss (largest effect) ranks first in every block
    assert (long[long["loss"] == "good"]["rank"] == 1).all()


def test_replicate_seed_averages_folds_first(tidy):
    long = paper_table(tidy, "dsB", "iou", 100.0, replicate="seed")
    runs = tidy.drop_duplicates(["dataset", "loss", "fraction", "seed", "fold"])
    sel = runs[(runs["dataset"] == "dsB") & (runs["fraction"] == "1") & (runs["loss"] == "mid")]
    per_seed = sel.groupby("seed")["miou"].mean().to_numpy() * 100
    cell = _cell(long, "mIoU", "1", "mid")
    assert cell["n"] == 2 and cell["std"] == pytest.approx(per_seed.std(ddof=1))


def test_metrics_table_direction_and_units(tidy):
    long = metrics_table(tidy, "dsA", None, 100.0)
    cols = list(dict.fromkeys(long["column"]))
    assert cols[:3] == ["mIoU (%) ↑", "mDSC (%) ↑", "mHD95 (px) ↓"]
    assert cols[3:] == ["NLL ↓", "ECE ↓", "MCE ↓", "Brier ↓"]
    # lower-is-better columns: the best loss (smallest NLL / HD95) still ranks first
    for col in ("NLL ↓", "mHD95 (px) ↓", "mIoU (%) ↑"):
        sub = long[(long["column"] == col) & (long["fraction"] == "1")]
        assert sub.set_index("loss")["rank"]["good"] == 1
    # HD95 is not scaled by 100, calibration keeps 4 digits
    hd = _cell(long, "mHD95 (px) ↓", "1", "good")
    assert 10 < hd["mean"] < 25 and int(_cell(long, "NLL ↓", "1", "good")["digits"]) == 4
    only = metrics_table(tidy, "dsA", ["ece", "miou"], 100.0)
    assert list(dict.fromkeys(only["column"])) == ["ECE ↓", "mIoU (%) ↑"]  # as asked


def test_rendering_markdown_latex_csv(tidy):
    long = paper_table(tidy, "dsB", "iou", 100.0)
    md = to_markdown(long, "title")
    assert md.startswith("### title") and "**" in md and "<u>" in md and "| good |" in md
    assert "| runs | diverged |" in md
    tex = to_latex(long, "caption_with_underscore 50%")
    assert "\\toprule" in tex and "\\textbf{" in tex and "\\underline{" in tex
    assert "caption\\_with\\_underscore 50\\%" in tex and tex.count("\\midrule") == 2
    csv = to_csv(long)
    assert "**" not in csv and csv.splitlines()[0].startswith("model,fraction,loss,mIoU")
    assert latex_escape("NLL ↓") == "NLL $\\downarrow$"


def test_cell_whose_runs_all_diverged_shows_na():
    div = {("dsA", "bad", "1", s, k) for s in (0, 1) for k in (0, 1, 2)}
    tidy = make_tidy(datasets={"dsA": ["background", "fg"]}, diverged=div)
    long = paper_table(tidy, "dsA")
    md = to_markdown(long, "t")
    row = next(line for line in md.splitlines() if "| bad |" in line and "| 1 |" in line)
    assert "n/a" in row and row.rstrip().endswith("| 6 | 6 |")
    assert np.isnan(long[(long["loss"] == "bad") & (long["fraction"] == "1")]["mean"]).all()


def test_unknown_dataset_raises(tidy):
    with pytest.raises(ValueError, match="no runs of dataset 'nope'"):
        paper_table(tidy, "nope")


def test_every_run_diverged_gives_na_not_a_crash(tmp_path):
    from segbench.reporting.comparison import claims_table
    from segbench.reporting.figures import miou_vs_fraction
    from segbench.reporting.statistics import friedman_analysis, paired_table, summary_table

    cells = [("dsA", loss, f) for loss in ("good", "mid", "bad") for f in ("1", "0.5")]
    div = {(*cell, s, k) for cell in cells for s in (0, 1) for k in (0, 1, 2)}
    tidy = make_tidy(datasets={"dsA": ["background", "fg"]}, diverged=div)
    for long in (paper_table(tidy, "dsA"), metrics_table(tidy, "dsA")):
        assert long["mean"].isna().all() and (long["n_diverged"] == 6).all()
        assert "n/a" in to_markdown(long, "t") and "\\toprule" in to_latex(long, "t")
    assert summary_table(tidy)["mean"].isna().all()
    assert paired_table(tidy).empty
    assert "no completed run" in friedman_analysis(tidy, "miou").reason
    claim = {"id": "c", "better": "good", "than": "mid", "metric": "miou"}
    assert claims_table(tidy, [claim]).iloc[0]["note"] == "no completed run"
    miou_vs_fraction(tidy, tmp_path / "f.png")  # placeholder panel
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------- issue #15: aggregation choice and its note
def test_tidy_dataset_aggregation_from_real_runs(fake_runs):
    """``aggregate="image"`` is today's tidy table unchanged; ``"dataset"`` takes iou/dice and
    their means from one confusion matrix pooled over the run's test pixels (checked against
    scikit-learn on the concatenated pixels) and keeps the rest."""
    import json

    from sklearn.metrics import jaccard_score

    from segbench.data.io import load_prepared
    from segbench.evaluate import load_probs
    from segbench.reporting.aggregate import tidy_from_metrics

    image = tidy_from_metrics(fake_runs["metrics"], "image")
    pd.testing.assert_frame_equal(image, fake_runs["tidy"])
    assert image.equals(tidy_from_metrics(fake_runs["metrics"]))
    pooled = tidy_from_metrics(fake_runs["metrics"], "dataset")
    assert list(pooled.columns) == list(image.columns)
    keep = ["n_valid", "status", "class_name"]
    pd.testing.assert_frame_equal(pooled[keep], image[keep])
    assert not np.allclose(pooled["miou"], image["miou"])  # the two really differ here
    metrics_json, probs_npz = fake_runs["metrics"][3], fake_runs["probs"][3]
    run = json.loads(Path(metrics_json).read_text())["run"]
    data = load_prepared(fake_runs["root"] / f"data/prepared/{run['dataset']}.npz")
    probs, ids = load_probs(probs_npz)
    masks = data.masks[data.indices(ids)]
    labels = list(range(data.num_classes))
    pred = probs.argmax(1)
    assert all(((masks == c) | (pred == c)).any() for c in labels)  # no 0/0 class in this run
    ref = jaccard_score(masks.ravel(), pred.ravel(), labels=labels, average=None)
    sel = pooled[
        (pooled["dataset"] == run["dataset"]) & (pooled["loss"] == run["loss"])
        & (pooled["fraction"] == str(run["fraction"])) & (pooled["fold"] == run["fold"])
    ]  # fmt: skip
    np.testing.assert_allclose(sel["iou"].to_numpy(), ref, rtol=1e-12)
    assert sel["miou"].iloc[0] == pytest.approx(np.nanmean(ref), rel=1e-12)


def test_tidy_dataset_aggregation_needs_the_block(fake_runs, tmp_path):
    import json

    from segbench.reporting.aggregate import tidy_from_metrics

    m = json.loads(Path(fake_runs["metrics"][0]).read_text())
    del m["dataset"]
    old = tmp_path / "metrics.json"
    old.write_text(json.dumps(m))
    assert len(tidy_from_metrics([old], "image")) == len(m["classes"])
    with pytest.raises(ValueError, match="no 'dataset' block"):
        tidy_from_metrics([old], "dataset")
    with pytest.raises(ValueError, match="evaluation.aggregate"):
        tidy_from_metrics([old], "pixel")


def test_headers_carry_the_aggregation_note(tidy):
    from segbench.reporting.notes import aggregation_note, header_note

    long = paper_table(tidy, "dsA")
    for agg in ("image", "dataset"):
        note = header_note(agg)
        md = to_markdown(long, "title", note)
        assert md.startswith(f"### title\n\n{note}\n\n| model")
        assert aggregation_note(agg) in md
        assert "Means: " in to_latex(long, "cap", note).split("\\caption{")[1].split("\n")[0]
    assert "absent from both truth and prediction" in header_note("image")
    assert "one confusion matrix" in header_note("dataset")
    assert to_markdown(long, "title") == to_markdown(long, "title", None)  # default: no note
    with pytest.raises(ValueError, match="evaluation.aggregate"):
        header_note("pixel")
