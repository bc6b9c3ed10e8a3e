"""Concurrent packing without batching the models: the runs of a pack take turns step by step,
each issuing its work on its own CUDA stream (the step strategy :class:`InterleavedSteps` of
the loop in ``engine.py``), so that on a GPU the small kernels of one run's
batch-4 step can overlap with another's (one process, one import, one copy of the data on the
device, one CUDA context; optionally each run's model CUDA-graph-captured with
``training.compile: reduce-overhead``).

Why this as well as :mod:`segbench.train.stacked`: the H100 figures in
``../shared/measurements/h100-training-throughput.md`` found K models fused as grouped
convolutions (what ``vmap`` over convolutions becomes) slower than one CUDA-graph-captured model
(610-683 vs 1,173 img/s for a plain U-Net), and listed "several runs in one process, each
captured in its own CUDA graph and replayed on its own stream" as the thing to try. This module
is that. Whether it beats ``stacked`` or several processes per GPU (``jobs_per_gpu``) is for the
benchmark (``benchmarks/train_throughput.py``) on a GPU to say; it was not measured (no GPU lent to
the session that wrote this).

On CPU there are no streams and the turns run one after another: every run's arithmetic is then
exactly that of the run trained alone, and without dropout its outputs are bit-identical to the
sequential pack (tested). With dropout the masks come from the process's one global generator,
drawn in turn order: reproducible (same pack, same result; resumable bit-exactly), but not
equal to the sequential pack.

Stream rules kept (CUDA): every run's stream first waits for the default stream (the model,
optimiser and data were made there), and the default stream waits for every run's stream before
the per-epoch validation and checkpoint, which run on the default stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch

from segbench.train.run import TrainingRun


def _streams(runs: Sequence[TrainingRun]) -> list[torch.cuda.Stream | None]:
    if runs[0].device.type != "cuda":
        return [None] * len(runs)
    return [torch.cuda.Stream(device=r.device) for r in runs]


def _on(stream: torch.cuda.Stream | None) -> contextlib.AbstractContextManager:
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


class InterleavedSteps:
    """Step strategy ``interleaved``: at each step every run still training does its own step
    (forward, loss, backward, optimiser; :meth:`TrainingRun.train_step`) on its own CUDA
    stream; validation, schedulers, early stopping, checkpoints and outputs are the per-run
    code of :class:`TrainingRun`."""

    use_compile = True  # training.compile applies to each run's own model
    names_fold = True  # the runs share one log

    def prepare(self, runs: Sequence[TrainingRun]) -> None:
        self.streams = dict(zip(runs, _streams(runs), strict=True))

    def begin_epoch(self, runs: Sequence[TrainingRun]) -> None:
        """Each run's stream waits for the default stream (model, optimiser, data, the epoch's
        fresh loss accumulator were made there)."""
        for r in runs:
            st = self.streams[r]
            if st is not None:
                st.wait_stream(torch.cuda.current_stream(r.device))

    def step(self, group: Sequence[TrainingRun], s: int) -> None:
        for r in group:
            with _on(self.streams[r]):
                r.train_step(s)

    def end_epoch(self, runs: Sequence[TrainingRun]) -> None:
        """The default stream (validation, checkpoint) waits for every run's stream."""
        for r in runs:
            st = self.streams[r]
            if st is not None:
                torch.cuda.current_stream(r.device).wait_stream(st)
