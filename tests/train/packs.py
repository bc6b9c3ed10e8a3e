"""The packs of the pack tests (stacked, interleaved, their resume): specs of K folds of the tiny
run, the (model, training) cases compared with the sequential pack, and readers of run folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segbench.train import RunSpec, TrainResult, train_pack
from tests.helpers import TINY_UNET, tiny_spec
from tests.helpers import TRAINING as TINY_TRAINING

TRAINING = {**TINY_TRAINING, "vflip": True, "pack_mode": "stacked"}
UNET = TINY_UNET

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
# same as stacked vs sequential), by <= 2.4e-4 after 3, so only 3 epochs sit under
# test_stacked's TOL with float32 noise as the sole difference. Exact equality of a step is
# tested in float64 there.
PACK_CASES = [
    (UNET, {"epochs": 3}),
    (UNET, PLATEAU_EARLY_STOP),
    ({**UNET, "norm": "batch"}, {"scheduler": "poly"}),
]
PACK_CASE_IDS = ["adam", "plateau_early_stop", "batchnorm_poly"]


def pack_specs(model_cfg: dict = UNET, k: int = 3, **training) -> list[RunSpec]:
    """Folds 0 .. k-1 (seed 1) of the tiny run, stacked, with ``training`` on top."""
    return [
        tiny_spec(seed=1, fold=fold, model_cfg=dict(model_cfg), training={**TRAINING, **training})
        for fold in range(k)
    ]


@dataclass
class Pack:
    """A trained pack: each run's result and run folder, in fold order."""

    results: list[TrainResult]
    dirs: list[Path]


def train_beside_sequential(
    npz: Path, splits: Path, root: Path, model_cfg: dict, training: dict, mode: str
) -> tuple[Pack, Pack]:
    """The runs of ``pack_specs(model_cfg, **training)`` trained as a sequential pack (run
    folders ``root/sequential<k>``) and as a ``mode`` pack (``root/<mode><k>``)."""
    packs = []
    for m in ("sequential", mode):
        specs = pack_specs(model_cfg, pack_mode=m, **training)
        dirs = [root / f"{m}{k}" for k in range(len(specs))]
        packs.append(Pack(train_pack(specs, npz, splits, dirs), dirs))
    return packs[0], packs[1]


def outcomes(results: list[TrainResult], names: tuple[str, ...]) -> list[tuple]:
    """The fields ``names`` of each run's result, in run order."""
    return [tuple(getattr(r, n) for n in names) for r in results]


def probs(run_dir: Path) -> np.ndarray:
    """The run's stored test probabilities (float16 on disk) as float32."""
    with np.load(run_dir / "probs.npz") as z:
        return z["probs"].astype(np.float32)


def history(run_dir: Path) -> list[list[str]]:
    """``history.csv`` of the run as text cells, header row first."""
    return [line.split(",") for line in (run_dir / "history.csv").read_text().split()]
