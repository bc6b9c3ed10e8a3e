"""Training engine: one grid cell (dataset, model, loss, fraction, seed, fold) -> one run folder,
or the runs of a pack in one process.

One epoch loop (:func:`train_runs`) drives one or several :class:`TrainingRun` objects; how the
runs of the loop take a training step is the step strategy, one per ``training.pack_mode``:

* ``sequential`` (:class:`SequentialSteps`): each run does its own step; a sequential pack runs
  the loop once per run, one run after another (each run built just before it trains, so its
  seeding is that of the run trained alone);
* ``stacked`` (:class:`~segbench.train.stacked.StackedSteps`): the runs of the pack take each
  step together as one vmapped model;
* ``interleaved`` (:class:`~segbench.train.interleaved.InterleavedSteps`): the runs take turns,
  step by step, each on its own CUDA stream.

Per epoch the loop: lets every run still training draw its sample order
(:meth:`TrainingRun.begin_epoch`), has the strategy take the epoch's steps (a run with fewer
steps drops out of the later ones), hits the ``step`` fault point half-way (tests), then lets
every run validate, schedule, checkpoint and decide to stop (:meth:`TrainingRun.end_epoch`);
finally every run writes its outputs (:meth:`TrainingRun.finish`). See docs/training.md.

3D datasets (5D prepared arrays) train through the same loop with patch batches and
sliding-window validation (:mod:`segbench.train.run`, docs/3d.md), in ``pack_mode:
sequential`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from segbench import faults
from segbench.data.io import PreparedDataset, load_prepared
from segbench.train.interleaved import InterleavedSteps
from segbench.train.run import TrainingRun
from segbench.train.spec import RunSpec, TrainResult
from segbench.train.stacked import StackedSteps

log = logging.getLogger("segbench.train")


class StepStrategy(Protocol):
    """How the runs of one loop take their training steps."""

    use_compile: bool  # whether runs built for this strategy apply ``training.compile``
    names_fold: bool  # whether the epoch log lines name the fold (runs sharing one log)

    def prepare(self, runs: Sequence[TrainingRun]) -> None:
        """Check the runs and set up (streams, the stacked forward) before the first epoch."""

    def begin_epoch(self, runs: Sequence[TrainingRun]) -> None:
        """After every active run's :meth:`TrainingRun.begin_epoch`."""

    def step(self, group: Sequence[TrainingRun], s: int) -> None:
        """Training step ``s`` of every run of ``group`` (the active runs with > s steps)."""

    def end_epoch(self, runs: Sequence[TrainingRun]) -> None:
        """Before every active run's :meth:`TrainingRun.end_epoch`."""


class SequentialSteps:
    """Step strategy ``sequential``: each run's own step (:meth:`TrainingRun.train_step`), in
    turn, on the current stream."""

    use_compile = True
    names_fold = False

    def prepare(self, runs: Sequence[TrainingRun]) -> None:
        pass

    def begin_epoch(self, runs: Sequence[TrainingRun]) -> None:
        pass

    def step(self, group: Sequence[TrainingRun], s: int) -> None:
        for r in group:
            r.train_step(s)

    def end_epoch(self, runs: Sequence[TrainingRun]) -> None:
        pass


STRATEGIES: dict[str, Callable[[], StepStrategy]] = {
    "sequential": SequentialSteps,
    "stacked": StackedSteps,
    "interleaved": InterleavedSteps,
}


def strategy_for(mode: str) -> StepStrategy:
    """The step strategy of ``training.pack_mode`` ``mode`` (the schema's allowed values are
    the keys of :data:`STRATEGIES`; a resolved spec holds one of them)."""
    return STRATEGIES[mode]()


def train_runs(runs: Sequence[TrainingRun], strategy: StepStrategy) -> list[TrainResult]:
    """The epoch loop: train ``runs`` in lockstep, each step taken by ``strategy``; each run
    keeps its own epochs, validation, scheduler, early stopping, divergence, checkpoints and
    folder. Returns one :class:`TrainResult` per run, in order."""
    if not runs:
        return []
    strategy.prepare(runs)
    for r in runs:
        r.log_fold = strategy.names_fold
    for epoch in range(min(r.start_epoch for r in runs), max(r.epochs for r in runs)):
        active = [r for r in runs if r.alive and r.start_epoch <= epoch < r.epochs]
        if not active:
            break
        for r in active:
            r.begin_epoch(epoch)
        strategy.begin_epoch(active)
        max_steps = max(r.steps for r in active)
        for s in range(max_steps):
            strategy.step([r for r in active if s < r.steps], s)
            if s == max_steps // 2:
                faults.point("step", epoch + 1)
        strategy.end_epoch(active)
        for r in active:
            r.end_epoch(epoch)
    return [r.finish() for r in runs]


def train_run(
    spec: RunSpec,
    prepared_npz: str | Path,
    splits_json: str | Path,
    out_dir: str | Path,
    data: PreparedDataset | None = None,
) -> TrainResult:
    """Train one run and write its folder.

    Writes (atomically): ``best.pt`` (weights of the best validation epoch), ``history.csv``,
    ``probs.npz`` (test-set softmax, float16, with ids), ``run.json`` (provenance) and, during
    training, ``checkpoint.pt`` (resume state).

    Args:
        spec: run identity and resolved configuration.
        prepared_npz: prepared dataset file.
        splits_json: split file of the dataset.
        out_dir: run folder.
        data: an already loaded dataset (packing several runs in one process shares it).

    Returns:
        A :class:`TrainResult`.
    """
    run = TrainingRun(spec, prepared_npz, splits_json, out_dir, data)
    return train_runs([run], SequentialSteps())[0]


def train_pack(
    specs: list[RunSpec],
    prepared_npz: str | Path,
    splits_json: str | Path,
    out_dirs: list[str | Path],
) -> list[TrainResult]:
    """Train several runs of one dataset in this process (shared imports, dataset load and
    device context); each run writes its own folder exactly as :func:`train_run`.

    ``training.pack_mode`` (the first spec's) picks the step strategy: ``sequential`` (default)
    trains the runs one after another; ``stacked`` steps them together as one batched model
    (:mod:`segbench.train.stacked`); ``interleaved`` lets them take turns step by step, each on
    its own CUDA stream (:mod:`segbench.train.interleaved`).
    """
    if len(specs) != len(out_dirs):
        raise ValueError(f"{len(specs)} run specs for {len(out_dirs)} output folders")
    data = load_prepared(prepared_npz)
    if not specs:
        return []
    mode = specs[0].training["pack_mode"]
    if data.images.ndim == 5 and mode != "sequential":
        raise ValueError(
            f"training.pack_mode = {mode!r} is not supported for the 3D dataset "
            f"{specs[0].dataset!r} (patch sampling and sliding-window validation are per run); "
            "use pack_mode: sequential (docs/3d.md)"
        )
    strategy = strategy_for(mode)
    if mode == "sequential":
        return [
            train_run(s, prepared_npz, splits_json, d, data=data)
            for s, d in zip(specs, out_dirs, strict=True)
        ]
    if not strategy.use_compile and specs[0].training["compile"] != "none":
        log.info("training.compile is not applied in pack_mode %r", mode)
    runs = [
        TrainingRun(s, prepared_npz, splits_json, d, data=data, use_compile=strategy.use_compile)
        for s, d in zip(specs, out_dirs, strict=True)
    ]
    return train_runs(runs, strategy)
