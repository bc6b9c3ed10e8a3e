"""Qualitative panel: pairing of runs, choice of the most-disagreeing image, loss pair."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segbench import paths
from segbench.config import Run
from segbench.reporting.pairs import pair_run_files, resolve_pair
from segbench.reporting.qualitative import (
    choose_image,
    disagreement,
    match_runs,
    qualitative_figure,
)


def _write_run(tmp_path, name, probs, ids, status="completed", fold=0):
    d = tmp_path / name
    d.mkdir()
    run = {"dataset": "d", "model": "m", "loss": name.split("_")[0], "fraction": "1", "seed": 0,
           "fold": fold}  # fmt: skip
    (d / "run.json").write_text(json.dumps({"run": run, "result": {"status": status}}))
    np.savez(d / "probs.npz", probs=probs.astype(np.float16), ids=np.asarray(ids))
    return str(d / "run.json"), str(d / "probs.npz")


def test_choice_is_the_image_with_most_disagreement(tmp_path):
    rng = np.random.default_rng(0)
    pa = rng.random((3, 2, 8, 8))
    pb = pa.copy()
    pb[1, :, :4] = pb[1, ::-1, :4]  # image 1: top half flipped (about half the pixels differ)
    pb[2, :, :1] = pb[2, ::-1, :1]  # image 2: one row flipped
    a = _write_run(tmp_path, "a_0", pa, ["i0", "i1", "i2"])
    b = _write_run(tmp_path, "b_0", pb, ["i0", "i1", "i2"])
    a_div = _write_run(tmp_path, "a_1", pa, ["i0", "i1", "i2"], status="diverged", fold=1)
    b_1 = _write_run(tmp_path, "b_1", 1 - pa, ["i0", "i1", "i2"], fold=1)
    pairs = match_runs([a, a_div], [b, b_1])
    assert len(pairs) == 1 and pairs[0][0]["fold"] == "0"  # the diverged run's cell is dropped
    choice = choose_image(pairs)
    d = disagreement(pa.argmax(1), pb.argmax(1))
    assert choice.image_id == "i1" and choice.disagreement == pytest.approx(d.max())
    assert choose_image([]) is None


def test_qualitative_figure_on_real_runs(fake_runs, tmp_path):
    runs = fake_runs["runs"]
    pair = resolve_pair(runs, "synth_organs", None, ["good", "mid", "bad"])
    assert pair == ("good", "mid")
    assert resolve_pair(runs, "synth_organs", ["bad", "good"], ["good", "mid", "bad"]) == (
        "bad",
        "good",
    )
    with pytest.raises(ValueError, match="qualitative_pair: unknown loss"):
        resolve_pair(runs, "synth_organs", ["good", "zzz"], ["good", "mid", "bad"])
    templates = {k: str(fake_runs["root"] / t) for k, t in paths.RUN_FILES.items()}
    files = pair_run_files(runs, "synth_organs", pair, templates)
    assert len(files["run_a"]) == len(files["probs_b"]) == 4  # 2 fractions x 2 folds
    choice = qualitative_figure(
        list(zip(files["run_a"], files["probs_a"], strict=True)),
        list(zip(files["run_b"], files["probs_b"], strict=True)),
        fake_runs["root"] / "data/prepared/synth_organs.npz",
        pair,
        tmp_path / "q.png",
        dataset="synth_organs",
    )
    assert choice is not None and 0 < choice.disagreement <= 1
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


def test_no_shared_cell_gives_no_pair():
    runs = [Run("d", "m", "a", "1", 0, 0), Run("d", "m", "b", "0.5", 0, 0)]
    assert resolve_pair(runs, "d", None, ["a", "b"]) is None
    assert resolve_pair(runs, "d", ["a", "b"], ["a", "b"]) is None
