"""Cost estimate (scripts/estimate.py): run and job counts, images per run, throughput."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

from segbench.config import expand_runs, load_study
from segbench.reporting.estimate import (
    H100_THROUGHPUT,
    DatasetFacts,
    estimate,
    format_report,
    pixels,
    run_table_for,
    split_sizes,
    table_throughput,
    time_model_cpu,
)
from tests.conftest import REPO

TINY = REPO / ".test" / "config.yaml"


@pytest.fixture
def tiny():
    return load_study(TINY)


def test_counts_and_images_per_run(tiny, tmp_path):
    table, totals = estimate(tiny, tmp_path, img_per_s=100.0, startup_s=0.0)
    n_runs = len(expand_runs(tiny))
    assert totals["runs"] == n_runs == 24 and totals["train_rule"] == "train_pack"
    assert totals["jobs"] == n_runs // tiny["folds"]  # one job per cell, all folds packed
    tr = tiny["training"]
    per_run = tr["epochs"] * tr["steps_per_epoch"] * tr["batch_size"]
    assert (table["images_per_run"] == per_run).all()
    runs = run_table_for(tiny, tmp_path)
    evals = runs["eval_images"].sum()
    want = (n_runs * per_run + evals / 3) / 100.0 / 3600
    assert totals["hours"] == pytest.approx(want) and "hours at 100 img/s" in totals["unit"]
    unpacked = dict(tiny, training=dict(tr, pack="none"))
    assert estimate(unpacked, tmp_path, img_per_s=100.0)[1]["jobs"] == n_runs
    assert "24 runs in 12 train_pack jobs" in format_report(table, totals, "ci_tiny")


def test_null_steps_use_the_splits_file(tiny, tmp_path):
    cfg = dict(tiny, training=dict(tiny["training"], steps_per_epoch=None, batch_size=4))
    n_train, n_val, n_test = split_sizes(12, 2, 0.25, 0.5)
    assert (n_train, n_val, n_test) == (2, 2, 6)  # test 6, val ceil(0.25*6)=2, train 4/2
    runs = run_table_for(cfg, tmp_path)
    r = runs[(runs["fraction"] == "0.5") & (runs["dataset"] == "synth_vessels")].iloc[0]
    assert r["train_images"] == cfg["training"]["epochs"] * math.ceil(2 / 4) * 4
    # an existing splits file wins (exact counts)
    fold = {"train": ["a"] * 9, "val": ["v"], "test": ["t"] * 2}
    fold["fractions"] = {"1": ["a"] * 9, "0.5": ["a"] * 5}
    split = {"dataset": "synth_vessels", "folds": [{"fold": k, **fold} for k in (0, 1)]}
    (tmp_path / "results/splits").mkdir(parents=True)
    (tmp_path / "results/splits/synth_vessels.json").write_text(json.dumps(split))
    runs = run_table_for(cfg, tmp_path)
    r = runs[(runs["fraction"] == "0.5") & (runs["dataset"] == "synth_vessels")].iloc[0]
    assert r["n_train"] == 5 and r["train_images"] == cfg["training"]["epochs"] * 2 * 4


def test_gpu_table_and_scaling():
    eager, graphs, _ = H100_THROUGHPUT["unet"]
    assert table_throughput("unet", False, 256 * 256)[0] == eager
    assert table_throughput("unet", True, 256 * 256)[0] == graphs
    assert table_throughput("unet", False, 512 * 512)[0] == pytest.approx(eager / 4)
    assert table_throughput("unet", False, 64 * 64)[0] == eager  # small inputs: no speed-up
    assert math.isnan(table_throughput("nope", False, None)[0])
    unknown = DatasetFacts(None, None, 1, 2, "unknown")
    assert pixels(unknown, 128, dims=3) == 128**3 and pixels(unknown, None) is None


def test_gpu_estimate_for_registry_datasets(tiny, tmp_path):
    cfg = dict(tiny, datasets={"covid19_ct": {"source": "registry"},
                               "inbreast_x": {"source": "registry"}})  # fmt: skip
    cfg["models"] = {"unet": {"name": "unet"}}
    table, totals = estimate(cfg, tmp_path, device="cuda:NVIDIA H200", n_images={"inbreast_x": 50})
    assert totals["unit"] == "GPU-hours" and totals["runs"] == len(expand_runs(cfg))
    assert any("H200 not measured" in n for n in totals["notes"])
    row = table.set_index("dataset").loc["covid19_ct"]
    assert row["size_source"].startswith("reference") and row["img_per_s"] == 381.0
    assert table.set_index("dataset").loc["inbreast_x", "size_source"] == "--n-images"
    assert totals["hours"] > 0


def test_cpu_timing_and_script(tmp_path):
    ips = time_model_cpu("unet", {"base_channels": 4, "depth": 2}, 1, 2, 32, batch=2, steps=1)
    assert ips > 0
    cfg = yaml.safe_load(TINY.read_text())
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    script = [sys.executable, str(REPO / "scripts/estimate.py"), "--configfile"]
    proc = subprocess.run(
        [*script, str(tmp_path / "c.yaml"), "--img-per-s", "50", "--json", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["runs"] == 24 and out["jobs"] == 12 and out["hours"] > 0
    bad = subprocess.run([*script, str(tmp_path / "x.yaml")], capture_output=True, text=True)
    assert bad.returncode == 1 and "does not exist" in bad.stderr
