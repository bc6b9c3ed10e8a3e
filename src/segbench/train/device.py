"""Device choice and determinism of a training process: ``training.device`` -> a
``torch.device``, claiming a GPU slot (:mod:`segbench.train.gpu_slots`) when GPUs are visible;
``training.deterministic`` -> seeded generators and deterministic kernels."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from segbench.train.gpu_slots import acquire_slot, visible_devices_for

log = logging.getLogger("segbench.train")

_SLOT: Any = None  # the GPU slot this process holds (released by the kernel at exit)
_PINNED = False  # CUDA_VISIBLE_DEVICES narrowed to the slot's GPU (then it is cuda:0)


def resolve_device(pref: str = "auto", jobs_per_gpu: int = 1) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU raises ValueError.

    With several visible GPUs, the process claims a GPU slot (see ``gpu_slots``) so that
    concurrently running jobs get different GPUs, ``jobs_per_gpu`` at most on each. If CUDA is
    not initialised yet, the process then narrows ``CUDA_VISIBLE_DEVICES`` to that GPU (it sees
    ``cuda:0`` only, and creates no context on the others); otherwise it selects the GPU with
    ``torch.cuda.set_device``. The slot is held for the life of the process (module state).
    """
    global _SLOT, _PINNED
    if pref == "cpu":
        return torch.device("cpu")
    if _SLOT is None and not torch.cuda.is_initialized():
        # torch counts devices through NVML here, without initialising CUDA, so the visible
        # set can still be narrowed before the first CUDA call.
        n = torch.cuda.device_count()
        if n >= 1:
            _SLOT = acquire_slot(n, jobs_per_gpu)
            if not torch.cuda.is_initialized():
                os.environ["CUDA_VISIBLE_DEVICES"] = visible_devices_for(
                    _SLOT.gpu, n, os.environ.get("CUDA_VISIBLE_DEVICES")
                )
                _PINNED = True
            log.info(
                "using GPU %d (slot %d; CUDA_VISIBLE_DEVICES=%s)",
                _SLOT.gpu,
                _SLOT.index,
                os.environ.get("CUDA_VISIBLE_DEVICES"),
            )
    if not torch.cuda.is_available():
        if pref == "auto":
            return torch.device("cpu")
        raise ValueError("training.device is 'cuda' but no CUDA device is available")
    if _SLOT is None:
        _SLOT = acquire_slot(torch.cuda.device_count(), jobs_per_gpu)
        log.info("using GPU %d (slot %d)", _SLOT.gpu, _SLOT.index)
    index = 0 if _PINNED else _SLOT.gpu
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed torch's and numpy's global generators; in deterministic mode also ask for
    deterministic kernels (``warn_only``: an op without one warns instead of failing)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
