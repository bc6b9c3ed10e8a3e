"""``training.scheduler_monitor: val_loss`` (paper 003: lr halved when the validation loss does
not decrease) and the resume of stateful losses (paper 004's sticky balance stage)."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn.functional as F

from segbench.losses import build_loss
from segbench.models import build_model
from segbench.train import RunSpec, TrainingRun, train_run
from segbench.train.validate import validation_loss
from tests.helpers import TRAINING, tiny_spec
from tests.train.helpers import kill_run


def _spec(**training) -> RunSpec:
    return tiny_spec(loss="ce", loss_cfg={"name": "ce"}, training={**TRAINING, **training})


def test_validation_loss_is_the_mean_loss_over_the_validation_set():
    torch.manual_seed(0)
    model = build_model("unet", in_channels=1, classes=3, base_channels=4, depth=2)
    x, y = torch.rand(10, 1, 16, 16), torch.randint(0, 3, (10, 16, 16))
    got = validation_loss(model, build_loss("ce"), x, y, torch.device("cpu"), False, batch=4)
    model.eval()
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y).item()  # mean over every pixel of the set
    assert got == pytest.approx(expected, rel=1e-5)


def test_validation_loss_leaves_a_stateful_loss_untouched():
    torch.manual_seed(0)
    model = build_model("unet", in_channels=1, classes=2, base_channels=4, depth=2)
    loss = build_loss("balance", t=0.0)  # t = 0: the switch rule holds on any batch
    x, y = torch.rand(4, 1, 16, 16), torch.randint(0, 2, (4, 16, 16))
    validation_loss(model, loss, x, y, torch.device("cpu"), False)
    assert int(loss.stage) == 1
    loss(model(x), y)
    assert int(loss.stage) == 2  # the same call on the loss itself does switch


def test_plateau_on_validation_loss_replays_exactly(tiny_prepared, split_file, tmp_path):
    """The lr column equals a fresh ReduceLROnPlateau(mode="min") fed the recorded val_loss
    column, and differs from watching the validation score."""
    tr = {"scheduler": "plateau", "scheduler_patience": 0, "scheduler_factor": 0.5, "epochs": 8}
    train_run(_spec(scheduler_monitor="val_loss", **tr), tiny_prepared, split_file, tmp_path / "l")
    rows = list(csv.DictReader((tmp_path / "l" / "history.csv").open()))
    assert all(r["val_loss"] != "" for r in rows)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=TRAINING["lr"])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0)
    for r in rows:
        assert float(r["lr"]) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        sched.step(float(r["val_loss"]))
    assert float(rows[-1]["lr"]) < TRAINING["lr"]  # it did reduce at least once
    train_run(_spec(**tr), tiny_prepared, split_file, tmp_path / "s")
    score_rows = list(csv.DictReader((tmp_path / "s" / "history.csv").open()))
    assert all(r["val_loss"] == "" for r in score_rows)
    assert [r["lr"] for r in rows] != [r["lr"] for r in score_rows]


def test_bad_monitor_is_refused(tiny_prepared, split_file, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"training\.scheduler_monitor'.*'loss' is not one of \['val_score', 'val_loss'\]",
    ):
        train_run(
            _spec(scheduler="plateau", scheduler_monitor="loss"),
            tiny_prepared,
            split_file,
            tmp_path / "x",
        )


def test_resume_restores_the_balance_stage(tiny_prepared, split_file, tmp_path):
    """Binary data; the balance loss switches to stage 2 in epoch 1 (t = 0); after a SIGKILL at
    epoch 3 the resumed run is in stage 2 (the stage is in the checkpoint), not back in 1."""
    from segbench.data.io import load_prepared, save_prepared

    d = load_prepared(tiny_prepared)
    binary = tiny_prepared.parent / "binary.npz"
    meta = {"name": "tiny", "num_classes": 2, "class_names": ["bg", "fg"], "in_channels": 1}
    save_prepared(binary, d.images, (d.masks > 0).astype("uint8"), list(d.ids), meta)
    spec = tiny_spec(loss="balance", loss_cfg={"name": "balance", "t": 0.0})
    out = tmp_path / "run"
    kill_run(spec, binary, split_file, out, "step@3")
    run = TrainingRun(spec, binary, split_file, out)
    assert run.resumed_from == 2 and int(run.loss_fn.stage) == 2
