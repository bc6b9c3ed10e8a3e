"""Concurrent ("stacked") packing: K runs stepped as one vmapped model.

Independent references: K separate models stepped one by one (float64, every 2-D and 3-D model,
tiny configurations); the same pack trained sequentially (float32, CPU); an uninterrupted stacked
pack for the resume-after-SIGKILL test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from segbench.models import MODEL_INFO, build_model
from segbench.train import RunSpec, StackedSteps, TrainingRun, train_pack, train_runs
from segbench.train.stacked import (
    meta_template,
    stack_state,
    stacked_forward,
    unstack_buffers,
)
from tests.train.test_engine import TRAINING as ENGINE_TRAINING

TRAINING = {**ENGINE_TRAINING, "vflip": True, "pack_mode": "stacked"}
UNET = {"name": "unet", "base_channels": 4, "depth": 2}
# Probabilities are stored as float16; stacked and sequential kernels sum in another order, so
# after 5 epochs they may differ by a few float16 steps (2^-11 near 0.5). Stated tolerance: 2e-3.
TOL = 2e-3


def _specs(model_cfg=UNET, k=3, **training) -> list[RunSpec]:
    return [
        RunSpec(
            dataset="tiny",
            model="m",
            loss="dice_ce",
            fraction="1",
            seed=1,
            fold=fold,
            model_cfg=dict(model_cfg),
            loss_cfg={"name": "dice_ce", "w_dice": 0.5, "w_ce": 0.5},
            training={**TRAINING, **training},
            evaluation={"include_background": True},
        )
        for fold in range(k)
    ]


def _probs(run_dir: Path) -> np.ndarray:
    with np.load(run_dir / "probs.npz") as z:
        return z["probs"].astype(np.float32)


def _no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.0
    return model


@pytest.mark.parametrize("name", sorted(MODEL_INFO))
def test_one_stacked_step_equals_separate_steps_float64(name):
    """Forward, every parameter gradient and every BatchNorm running statistic of K=3 models
    stepped together equal K separate steps to 1e-10 (float64; dropout off, since the masks
    are drawn differently)."""
    info = MODEL_INFO[name]
    torch.manual_seed(0)
    models = [
        _no_dropout(build_model(name, in_channels=2, classes=3, **info.tiny).double().train())
        for _ in range(3)
    ]
    refs = [copy.deepcopy(m) for m in models]
    shape = (2, 2) + (16 if info.spatial_dims == 3 else 64,) * info.spatial_dims
    x = torch.randn(3, *shape, dtype=torch.float64)
    target = torch.randn(3, shape[0], 3, *shape[2:], dtype=torch.float64)

    params, buffers = stack_state(models)
    out = stacked_forward(meta_template(models[0]))(params, buffers, x)
    unstack_buffers(models, buffers)
    ((out - target) ** 2).sum().backward()

    for k, ref in enumerate(refs):
        ref_out = ref(x[k])
        ((ref_out - target[k]) ** 2).sum().backward()
        scale = float(ref_out.detach().abs().max()) + 1.0
        assert torch.allclose(out[k], ref_out, rtol=1e-10, atol=1e-10 * scale), name
        got = dict(models[k].named_parameters())
        for pname, p in ref.named_parameters():
            g = got[pname].grad
            assert g is not None, (name, pname)
            gscale = float(p.grad.abs().max()) + 1.0
            assert torch.allclose(g, p.grad, rtol=1e-9, atol=1e-9 * gscale), (name, pname)
        got_buf = dict(models[k].named_buffers())
        for bname, b in ref.named_buffers():
            assert torch.allclose(got_buf[bname].double(), b.double(), rtol=1e-10, atol=1e-10), (
                name,
                bname,
            )


def test_stacked_runs_are_independent():
    """Each model's gradient is the gradient of its own loss only: a NaN loss of one model
    leaves the other models' gradients finite and unchanged."""
    torch.manual_seed(0)
    models = [build_model("unet", in_channels=1, classes=2, **UNET_TINY).double() for _ in range(3)]
    x = torch.randn(3, 2, 1, 32, 32, dtype=torch.float64)
    params, buffers = stack_state(models)
    out = stacked_forward(meta_template(models[0]))(params, buffers, x)
    losses = [out[0].sum() * float("nan"), out[1].square().sum(), out[2].square().sum()]
    torch.stack(losses).sum().backward()
    assert all(torch.isnan(p.grad).any() for p in models[0].parameters() if p.grad is not None)
    ref = copy.deepcopy(models[1])
    ref.zero_grad()
    ref(x[1]).square().sum().backward()
    for p, q in zip(models[1].parameters(), ref.parameters(), strict=True):
        assert torch.isfinite(p.grad).all() and torch.allclose(p.grad, q.grad, atol=1e-10)


UNET_TINY = {"base_channels": 4, "depth": 2}


PLATEAU_EARLY_STOP = {
    "scheduler": "plateau",
    "scheduler_patience": 1,
    "early_stopping": 2,
    "steps_per_epoch": None,
    "optimizer": "sgd",
    "lr": 0.05,
}
# (model, training) cases compared with the sequential pack: plain Adam; plateau + early
# stopping (per-run lr and stop epochs must match); BatchNorm (running statistics) + poly.
# Plain Adam runs 3 epochs, not 5: Adam divides each gradient by its running RMS, so float32
# reordering differences in near-zero gradients grow into full-lr steps. Measured here (2-core
# x86_64): the *sequential* pack alone, threads 1 vs 2, differs by 4.4e-3 after 5 epochs (the
# same as stacked vs sequential), by <= 2.4e-4 after 3, so only 3 epochs sit under TOL with
# float32 noise as the sole difference. Exact equality of a step is tested in float64 above.
PACK_CASES = [
    (UNET, {"epochs": 3}),
    (UNET, PLATEAU_EARLY_STOP),
    ({**UNET, "norm": "batch"}, {"scheduler": "poly"}),
]
PACK_CASE_IDS = ["adam", "plateau_early_stop", "batchnorm_poly"]


@pytest.mark.parametrize("model_cfg,training", PACK_CASES, ids=PACK_CASE_IDS)
def test_stacked_pack_matches_sequential_pack(
    tiny_prepared, split_file, tmp_path, model_cfg, training
):
    seq = _specs(model_cfg, pack_mode="sequential", **training)
    stk = _specs(model_cfg, **training)
    r_seq = train_pack(seq, tiny_prepared, split_file, [tmp_path / f"seq{k}" for k in range(3)])
    r_stk = train_pack(stk, tiny_prepared, split_file, [tmp_path / f"stk{k}" for k in range(3)])
    for k in range(3):
        assert (r_seq[k].status, r_seq[k].epochs_run, r_seq[k].best_epoch) == (
            r_stk[k].status,
            r_stk[k].epochs_run,
            r_stk[k].best_epoch,
        )
        a, b = _probs(tmp_path / f"seq{k}"), _probs(tmp_path / f"stk{k}")
        assert np.abs(a - b).max() <= TOL
        hs = [line.split(",") for line in (tmp_path / f"seq{k}/history.csv").read_text().split()]
        ht = [line.split(",") for line in (tmp_path / f"stk{k}/history.csv").read_text().split()]
        assert [h[0] for h in hs] == [h[0] for h in ht]
        for rs, rt in zip(hs[1:], ht[1:], strict=True):
            assert float(rs[1]) == pytest.approx(float(rt[1]), rel=1e-3, abs=1e-4)  # train loss
            assert float(rs[3]) == pytest.approx(float(rt[3]), rel=1e-6)  # lr (plateau steps)
        run = json.loads((tmp_path / f"stk{k}/run.json").read_text())
        assert run["config"]["training"]["pack_mode"] == "stacked"
        assert not (tmp_path / f"stk{k}/checkpoint.pt").exists()


def test_stacked_pack_is_reproducible_with_dropout(tiny_prepared, split_file, tmp_path):
    specs = _specs({**UNET, "dropout": 0.2})
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"a{k}" for k in range(3)])
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"b{k}" for k in range(3)])
    for k in range(3):
        assert np.array_equal(_probs(tmp_path / f"a{k}"), _probs(tmp_path / f"b{k}"))


def test_diverging_run_stops_alone(tiny_prepared, split_file, tmp_path):
    """One run of the stack diverges (its lr is made huge after construction); it is recorded
    as diverged and the others finish as they do in a stack without it."""
    specs = _specs()
    runs = [
        TrainingRun(s, tiny_prepared, split_file, tmp_path / f"r{k}") for k, s in enumerate(specs)
    ]
    for g in runs[0].opt.param_groups:
        g["lr"] = 1e36
    res = train_runs(runs, StackedSteps())
    assert res[0].status == "diverged" and res[0].diverged_epoch is not None
    assert [r.status for r in res[1:]] == ["completed", "completed"]
    alone = [
        TrainingRun(s, tiny_prepared, split_file, tmp_path / f"q{k}")
        for k, s in enumerate(specs[1:])
    ]
    train_runs(alone, StackedSteps())
    for k in (1, 2):
        assert np.abs(_probs(tmp_path / f"r{k}") - _probs(tmp_path / f"q{k - 1}")).max() <= TOL


def test_stacked_pack_refuses_mixed_models(tiny_prepared, split_file, tmp_path):
    specs = _specs()
    specs[1] = dataclasses.replace(specs[1], model_cfg={**UNET, "base_channels": 8})
    with pytest.raises(ValueError, match="one model configuration per pack"):
        train_pack(specs, tiny_prepared, split_file, [tmp_path / f"x{k}" for k in range(3)])
    with pytest.raises(ValueError, match=r"training\.pack_mode'.*'vmap' is not one of \['sequential', 'stacked', 'interleaved'\]"):
        train_pack(
            _specs(pack_mode="vmap"),
            tiny_prepared,
            split_file,
            [tmp_path / f"y{k}" for k in range(3)],
        )
