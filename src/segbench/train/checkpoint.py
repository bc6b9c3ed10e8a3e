"""What a run writes to disk, atomically: the resume checkpoint, ``best.pt``, ``history.csv``,
``timings.csv``, ``probs.npz``; and the generator states a checkpoint holds.

``history.csv`` holds what training found and nothing that depends on the machine's speed, so
two runs of the same spec (or a run resumed after a kill) write it byte for byte again; the
seconds per epoch are in ``timings.csv``.

Every write goes through a temp file + fsync + rename (:func:`segbench.io_utils.atomic_open`),
so a killed write never leaves a partial output; ``fault`` names a :mod:`segbench.faults`
injection point hit after half the bytes (tests only).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from segbench import faults
from segbench.io_utils import atomic_open, atomic_write_text

CHECKPOINT = "checkpoint.pt"
HISTORY_FIELDS = ["epoch", "train_loss", "val_miou", "lr", "val_loss"]
TIMINGS_FIELDS = ["epoch", "seconds"]


def save_atomic(data: bytes, path: Path, fault: str | None = None, epoch: int = 0) -> None:
    """Atomic write of ``data``; ``fault`` is hit after half the bytes (tests only)."""
    with atomic_open(path, "wb") as fh:
        half = len(data) // 2
        fh.write(data[:half])
        if fault:
            faults.point(fault, epoch)
        fh.write(data[half:])


def torch_save_atomic(obj: Any, path: Path, fault: str | None = None, epoch: int = 0) -> None:
    """``torch.save`` through :func:`save_atomic`."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    save_atomic(buf.getvalue(), path, fault, epoch)


def _write_csv(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """``history.csv``: one row per epoch, columns :data:`HISTORY_FIELDS`."""
    _write_csv(path, HISTORY_FIELDS, rows)


def write_timings(path: Path, rows: list[dict[str, Any]]) -> None:
    """``timings.csv``: one row per epoch, columns :data:`TIMINGS_FIELDS` (wall seconds of
    the epoch's steps and validation)."""
    _write_csv(path, TIMINGS_FIELDS, rows)


def rng_state(gen: torch.Generator) -> dict[str, Any]:
    """The run's CPU generator, torch's global CPU generator and, once CUDA is initialised,
    this process's device generator (no context is created on other GPUs)."""
    state = {"gen": gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(gen: torch.Generator, state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (a list of per-device CUDA states: the first)."""
    gen.set_state(state["gen"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_initialized():
        cuda = state["cuda"]
        torch.cuda.set_rng_state(cuda[0] if isinstance(cuda, list | tuple) else cuda)
