"""Shared helpers of the loss tests: tiny random inputs and the class count each loss accepts."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from segbench.losses import LOSSES


def num_classes_for(name: str, preferred: int = 3) -> int:
    """A class count the loss accepts (binary-only losses get 2)."""
    cls = LOSSES.get(name)
    lo = getattr(cls, "min_classes", 1)
    hi = getattr(cls, "max_classes", None)
    c = max(preferred, lo)
    return c if hi is None else min(c, hi)


def make_inputs(
    b: int = 2,
    c: int = 3,
    spatial: tuple[int, ...] = (5, 4),
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(b, c, *spatial, generator=g)).to(dtype)
    target = torch.randint(0, c, (b, *spatial), generator=g)
    target.view(-1)[:c] = torch.arange(c)  # every class present
    return logits, target


def monai_value(
    loss_cls: type, logits: torch.Tensor, target: torch.Tensor, smooth: float, **options: Any
) -> float:
    """MONAI's ``loss_cls`` on our ``(logits, index target)``: the option set every comparison shares.

    Softmax over the logits and a one-hot of the target (``softmax=True, to_onehot_y=True``),
    smoothing ``s`` in numerator and denominator (``smooth_nr = smooth_dr = s``), plus ``options``
    (``include_background`` defaults to True in MONAI, as ours).
    """
    ref = loss_cls(to_onehot_y=True, softmax=True, smooth_nr=smooth, smooth_dr=smooth, **options)
    return float(ref(logits, target.unsqueeze(1)).item())


@pytest.fixture
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return make_inputs()
