"""Concurrent packing: several runs of one model architecture stepped together as one batched
("stacked") model with ``torch.func.vmap`` over ``torch.func.functional_call``.

Why: at the papers' batch size (4 images of 256 x 256) one training step leaves a GPU idle
(launch-bound; ``../shared/measurements``: 235 img/s eager, 656 img/s with CUDA graphs, 2,390 img/s
at batch 128 on an H100). Stacking K runs turns K small launches per layer into one launch over K
models (a convolution over K stacked weights is one grouped kernel), the model-ensembling recipe of
``torch.func`` applied to training. Nothing in a well-kept library does this for training with
per-run optimisers, schedulers, early stopping and checkpoints, hence this module.

How, per step, over the runs still training (:class:`~segbench.train.run.TrainingRun`; this is
the ``stacked`` step strategy, :class:`StackedSteps`, of the loop in ``engine.py``):
1. each run draws its own batch with its own seeded generator, exactly as a run trained alone;
2. parameters and buffers of the runs are stacked (``torch.stack``; gradients flow back to each
   run's own ``nn.Parameter``s), and one ``vmap(functional_call(...))`` forward gives logits
   ``[K, B, C, H, W]``; BatchNorm running statistics are updated in the stacked buffers under vmap
   and copied back to each run's model;
3. each run's loss function (its own object: stateful losses keep their own state) is applied to its
   slice; the sum of the K losses is back-propagated once (the runs share no parameter, so each
   run's gradient is exactly the gradient of its own loss);
4. each run's own optimiser steps; validation, schedulers (``plateau`` included), early stopping,
   divergence, checkpoints and outputs are the per-run code of ``TrainingRun``.

Equivalence (tested in ``tests/train/test_stacked.py``): in float64 one stacked step equals K
separate steps to 1e-10 for every 2-D model; a stacked pack draws the same batches, crops and flips
as the runs trained one after another, and on CPU in float32 ends with test probabilities within
the stated tolerance of them (not bit-identical: the batched kernels sum in another order). Dropout
masks come from the shared global generator (``randomness="different"``), so with dropout the
runs are reproducible (same seed, same pack -> same result) but not equal to sequential ones.

Not done: ``torch.compile`` / CUDA graphs of the stacked step (``training.compile`` is ignored in
stacked mode) and channels_last of the stacked input; GPU throughput unmeasured (no GPU lent to
the session that wrote this).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from segbench.train.run import TrainingRun


def stacked_forward(template: nn.Module) -> Callable[..., torch.Tensor]:
    """``f(params, buffers, x)`` -> logits of K models at once; ``params``/``buffers`` map
    names to tensors stacked on dim 0, ``x`` is ``[K, B, ...]``. ``template`` only supplies the
    architecture (its own tensors are never used; keep it in train mode for training)."""

    def one(
        p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        return functional_call(template, (p, b), (x,))

    return vmap(one, randomness="different")


def meta_template(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s architecture on the meta device (no memory), in train mode."""
    return copy.deepcopy(model).to("meta").train()


def stack_state(
    models: Sequence[nn.Module],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Parameters (differentiable ``torch.stack``: gradients reach each model's parameters) and
    buffers (plain copies) of ``models``, stacked on a new dim 0."""
    named = [dict(m.named_parameters()) for m in models]
    params = {n: torch.stack([p[n] for p in named]) for n in named[0]}
    bnamed = [dict(m.named_buffers()) for m in models]
    with torch.no_grad():
        buffers = {n: torch.stack([b[n] for b in bnamed]) for n in bnamed[0]}
    return params, buffers


@torch.no_grad()
def unstack_buffers(models: Sequence[nn.Module], buffers: dict[str, torch.Tensor]) -> None:
    """Copy the (BatchNorm-updated) stacked buffers back into each model."""
    for k, m in enumerate(models):
        for n, b in m.named_buffers():
            b.copy_(buffers[n][k])


def _check_same_architecture(runs: Sequence[TrainingRun]) -> None:
    first = runs[0].spec
    for r in runs[1:]:
        if r.spec.model_cfg != first.model_cfg:
            raise ValueError(
                "training.pack_mode 'stacked' needs one model configuration per pack; "
                f"fold {r.spec.fold} has {r.spec.model_cfg}, fold {first.fold} {first.model_cfg}"
            )
        if r.bs != runs[0].bs or r.x["train"].shape[1:] != runs[0].x["train"].shape[1:]:
            raise ValueError("training.pack_mode 'stacked' needs one batch size and image size")


class StackedSteps:
    """Step strategy ``stacked``: the runs (same model configuration, batch size and image size)
    take each step together, one stacked forward/backward; each run keeps its own optimiser,
    scheduler, validation, early stopping, checkpoints and output folder."""

    use_compile = False  # training.compile is not applied to the stacked step
    names_fold = True  # the runs share one log

    def prepare(self, runs: Sequence[TrainingRun]) -> None:
        _check_same_architecture(runs)
        self.device, self.amp = runs[0].device, runs[0].amp
        self.forward = stacked_forward(meta_template(runs[0].model))

    def begin_epoch(self, runs: Sequence[TrainingRun]) -> None:
        pass

    def step(self, group: Sequence[TrainingRun], s: int) -> None:
        """Step ``s`` of every run of ``group``: own batches, one vmapped forward, per-run
        losses, one backward of their sum, per-run optimiser steps."""
        batches = [r.batch(s) for r in group]
        models = [r.model for r in group]
        params, buffers = stack_state(models)
        xs = torch.stack([b[0] for b in batches])
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.forward(params, buffers, xs)
        unstack_buffers(models, buffers)
        losses = [r.loss_fn(logits[i].float(), batches[i][1]) for i, r in enumerate(group)]
        for r in group:
            r.opt.zero_grad(set_to_none=True)
        torch.stack(losses).sum().backward()
        for r, loss in zip(group, losses, strict=True):
            r.opt.step()
            r.running += loss.detach()

    def end_epoch(self, runs: Sequence[TrainingRun]) -> None:
        pass
