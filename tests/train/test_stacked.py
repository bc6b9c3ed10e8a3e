"""Concurrent ("stacked") packing: K runs stepped as one vmapped model.

Independent references: K separate models stepped one by one (float64, every 2-D and 3-D model,
tiny configurations); the same pack trained sequentially (float32, CPU); an uninterrupted stacked
pack for the resume-after-SIGKILL test.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from segbench.models import MODEL_INFO, build_model
from segbench.train import StackedSteps, TrainingRun, train_pack, train_runs
from segbench.train.stacked import (
    meta_template,
    stack_state,
    stacked_forward,
    unstack_buffers,
)
from tests.train.packs import UNET, history, outcomes, pack_specs, probs

# Probabilities are stored as float16; stacked and sequential kernels sum in another order, so
# after 5 epochs they may differ by a few float16 steps (2^-11 near 0.5). Stated tolerance: 2e-3.
TOL = 2e-3


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


def test_stacked_pack_matches_sequential_pack(pack_beside_sequential):
    """Each case of ``PACK_CASES`` (tests/train/packs.py), stacked vs sequential."""
    seq, stk = pack_beside_sequential("stacked")
    same = ("status", "epochs_run", "best_epoch")
    assert outcomes(seq.results, same) == outcomes(stk.results, same)
    for a, b in zip(seq.dirs, stk.dirs, strict=True):
        assert np.abs(probs(a) - probs(b)).max() <= TOL
        hs, ht = history(a), history(b)
        assert [h[0] for h in hs] == [h[0] for h in ht]
        for rs, rt in zip(hs[1:], ht[1:], strict=True):
            assert float(rs[1]) == pytest.approx(float(rt[1]), rel=1e-3, abs=1e-4)  # train loss
            assert float(rs[3]) == pytest.approx(float(rt[3]), rel=1e-6)  # lr (plateau steps)
        run = json.loads((b / "run.json").read_text())
        assert run["config"]["training"]["pack_mode"] == "stacked"
        assert not (b / "checkpoint.pt").exists()


def test_stacked_pack_is_reproducible_with_dropout(tiny_prepared, split_file, tmp_path):
    specs = pack_specs({**UNET, "dropout": 0.2})
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"a{k}" for k in range(3)])
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"b{k}" for k in range(3)])
    for k in range(3):
        assert np.array_equal(probs(tmp_path / f"a{k}"), probs(tmp_path / f"b{k}"))


def test_diverging_run_stops_alone(tiny_prepared, split_file, tmp_path):
    """One run of the stack diverges (its lr is made huge after construction); it is recorded
    as diverged and the others finish as they do in a stack without it."""
    specs = pack_specs()
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
        assert np.abs(probs(tmp_path / f"r{k}") - probs(tmp_path / f"q{k - 1}")).max() <= TOL


def test_stacked_pack_refuses_mixed_models(tiny_prepared, split_file, tmp_path):
    specs = pack_specs()
    specs[1] = dataclasses.replace(specs[1], model_cfg={**UNET, "base_channels": 8})
    with pytest.raises(ValueError, match="one model configuration per pack"):
        train_pack(specs, tiny_prepared, split_file, [tmp_path / f"x{k}" for k in range(3)])
    with pytest.raises(
        ValueError,
        match=r"training\.pack_mode'.*'vmap' is not one of \['sequential', 'stacked', 'interleaved'\]",
    ):
        train_pack(
            pack_specs(pack_mode="vmap"),
            tiny_prepared,
            split_file,
            [tmp_path / f"y{k}" for k in range(3)],
        )
