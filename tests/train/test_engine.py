"""Training engine on CPU: determinism, and resume after a real SIGKILL equals an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segbench.train import RunSpec, train_run
from segbench.train.augment import crop_flip
from segbench.train.validate import mean_iou
from tests.helpers import TINY_UNET, TRAINING, tiny_spec
from tests.train.helpers import kill_run


def _spec(**fields) -> RunSpec:
    """The tiny run, with dropout (the resume tests then also restore its generator)."""
    return tiny_spec(**{"model": "unet4", "model_cfg": {**TINY_UNET, "dropout": 0.1}, **fields})


def _probs(run_dir: Path) -> np.ndarray:
    with np.load(run_dir / "probs.npz") as z:
        return z["probs"]


def test_same_seed_same_result_and_outputs(tiny_prepared, split_file, tmp_path):
    r1 = train_run(_spec(), tiny_prepared, split_file, tmp_path / "a")
    train_run(_spec(), tiny_prepared, split_file, tmp_path / "b")
    assert r1.status == "completed" and r1.epochs_run == 5
    assert np.array_equal(_probs(tmp_path / "a"), _probs(tmp_path / "b"))
    assert (tmp_path / "a" / "history.csv").read_text().count("\n") == 6
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    for key in ("config", "git", "packages", "device", "seed", "outputs"):
        assert key in run
    assert "wall_seconds" not in run and "wall_seconds" not in run["result"]
    assert json.loads((tmp_path / "a" / "timings.json").read_text())["wall_seconds"] > 0
    for name in ("history.csv", "probs.npz", "best.pt"):  # no timings: byte-identical reruns
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert run["packages"]["torch"].startswith("2.")
    assert not (tmp_path / "a" / "checkpoint.pt").exists()  # removed once the run is complete
    r3 = train_run(_spec(seed=1), tiny_prepared, split_file, tmp_path / "c")
    assert r3.status == "completed"
    assert not np.array_equal(_probs(tmp_path / "a"), _probs(tmp_path / "c"))


@pytest.mark.parametrize("fault", ["step@3", "checkpoint_write@3", "probs_write@5"])
def test_resume_after_sigkill_equals_uninterrupted(tiny_prepared, split_file, tmp_path, fault):
    spec = _spec()
    ref = tmp_path / "ref"
    train_run(spec, tiny_prepared, split_file, ref)
    out = tmp_path / "killed"
    kill_run(spec, tiny_prepared, split_file, out, fault)
    assert not (out / "run.json").exists()  # a killed run never looks complete
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    if fault.startswith(("checkpoint", "probs")):
        assert leftovers, "the kill should have hit a half-written temp file"
    if fault.startswith("probs"):
        assert not (out / "probs.npz").exists()
    result = train_run(spec, tiny_prepared, split_file, out)
    expected_resume = {"step@3": 2, "checkpoint_write@3": 2, "probs_write@5": 4}[fault]
    assert result.resumed_from_epoch == expected_resume
    assert np.array_equal(_probs(ref), _probs(out))
    ref_hist = (ref / "history.csv").read_text().splitlines()
    out_hist = (out / "history.csv").read_text().splitlines()
    col = lambda lines, i: [line.split(",")[i] for line in lines]  # noqa: E731
    assert col(ref_hist, 1) == col(out_hist, 1) and col(ref_hist, 2) == col(out_hist, 2)
    assert ref_hist == out_hist  # byte for byte: the seconds are in timings.csv
    assert (ref / "best.pt").read_bytes() == (out / "best.pt").read_bytes()
    timings = (out / "timings.csv").read_text().splitlines()
    assert timings[0] == "epoch,seconds" and [t.split(",")[0] for t in timings[1:]] == [
        str(e) for e in range(1, 6)
    ]  # the epochs before the kill come from the checkpoint


def test_checkpoint_of_other_config_is_not_resumed(tiny_prepared, split_file, tmp_path):
    out = tmp_path / "run"
    kill_run(_spec(), tiny_prepared, split_file, out, "step@3")
    other = _spec(loss_cfg={"name": "dice_ce", "w_dice": 0.3, "w_ce": 0.7})
    assert train_run(other, tiny_prepared, split_file, out).resumed_from_epoch is None


def test_diverged_run_is_recorded(tiny_prepared, split_file, tmp_path):
    spec = _spec(training=dict(TRAINING, lr=1e38, optimizer="sgd"))
    result = train_run(spec, tiny_prepared, split_file, tmp_path / "d")
    assert result.status == "diverged" and result.diverged_epoch is not None
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert run["result"]["status"] == "diverged"
    assert np.isfinite(_probs(tmp_path / "d").astype(np.float32)).all()


def test_augment_is_reproducible_and_consistent():
    import torch

    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    y = x[:, 0].long()
    xa, ya = crop_flip(x, y, 4, True, torch.Generator().manual_seed(0))
    xb, yb = crop_flip(x, y, 4, True, torch.Generator().manual_seed(0))
    assert torch.equal(xa, xb) and xa.shape == (2, 1, 4, 4)
    assert torch.equal(xa[:, 0].long(), ya)  # image and mask cropped/flipped identically


def test_mean_iou_closed_form():
    import torch

    y = torch.tensor([[0, 0, 1, 1]])
    prob = torch.tensor([[[0.9, 0.2, 0.8, 0.1], [0.1, 0.8, 0.2, 0.9]]]).reshape(1, 2, 1, 4)
    # pred = [0, 1, 0, 1]: class 0 IoU = 1/3, class 1 IoU = 1/3
    assert mean_iou(prob, y.reshape(1, 1, 4), 2, True) == pytest.approx(1 / 3)
