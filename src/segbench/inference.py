"""Sliding-window inference for 3D volumes (MONAI ``sliding_window_inference``).

Papers 002 and 003 evaluate their 3D models as nnU-Net does (Isensee et al., 2021): the volume
is covered by patch-sized windows overlapping by half a patch, each window's logits are weighted
by a Gaussian centred on the window (standard deviation 1/8 of the window side, nnU-Net's
``sigma_scale``) and the weighted logits are averaged voxel-wise (paper 002 test time:
``config/studies/paper002_3d.yaml``; paper 003 l.746: "3D nnUNet"). This module is a thin,
checked wrapper around :func:`monai.inferers.sliding_window_inference` (MONAI 1.6) with those
defaults, plus :func:`crop_to_shape` to drop the zero padding of the prepared arrays
(recipe ``volumes_3d``) before the metrics.

With ``mode="constant"`` every window has weight 1 and the result at a voxel is the plain mean
of the logits of the windows covering it; with ``mode="gaussian"`` it is
``sum_w g_w(v) f_w(v) / sum_w g_w(v)``. Where one window covers the whole volume
(``roi_size`` equal to the volume's shape) both reduce to the model applied to the whole
volume (tested in tests/three_d/test_inference.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

BLEND_MODES = ("gaussian", "constant")
PAD_MODES = ("constant", "reflect", "replicate", "circular")

DEFAULT_OVERLAP = 0.5
"""Window overlap (fraction of the window side), nnU-Net's ``tile_step_size = 0.5``."""
DEFAULT_SIGMA_SCALE = 0.125
"""Gaussian standard deviation as a fraction of the window side (nnU-Net: 1/8)."""


def _roi(roi_size: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    roi = (roi_size,) * ndim if isinstance(roi_size, int) else tuple(roi_size)
    if len(roi) != ndim or not all(
        isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in roi
    ):
        raise ValueError(
            f"roi_size must be {ndim} positive ints (one per spatial axis), got {roi_size!r}"
        )
    return roi


@torch.no_grad()
def sliding_window_logits(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    roi_size: Sequence[int] | int,
    *,
    overlap: float = DEFAULT_OVERLAP,
    mode: str = "gaussian",
    sigma_scale: float = DEFAULT_SIGMA_SCALE,
    sw_batch_size: int = 2,
    padding_mode: str = "constant",
) -> torch.Tensor:
    """Logits of ``model`` over ``image`` by overlapping windows, blended per ``mode``.

    Args:
        model: maps ``[b, C_in, *roi_size]`` to ``[b, C, *roi_size]`` logits.
        image: ``[B, C_in, *spatial]`` (2 or 3 spatial axes).
        roi_size: window size per spatial axis (one int: the same on every axis); axes where the
            image is smaller are padded up to it (``padding_mode``) and cropped back after.
        overlap: fraction of the window shared by neighbours (default 0.5), in [0, 1).
        mode: ``"gaussian"`` (default) or ``"constant"`` blending.
        sigma_scale: Gaussian standard deviation / window side (default 0.125).
        sw_batch_size: windows per forward pass (default 2).
        padding_mode: how the image is padded where smaller than the window (default
            ``"constant"``, zeros).

    Shape:
        returns ``[B, C, *spatial]`` float logits, same spatial shape as ``image``.

    Raises:
        ValueError: bad ``roi_size``, ``overlap``, ``mode``, ``sigma_scale``, ``sw_batch_size``
            or ``padding_mode``, naming the value and the valid ones.
    """
    from monai.inferers import sliding_window_inference

    if image.ndim not in (4, 5):
        raise ValueError(
            f"image must be [B, C, H, W] or [B, C, D, H, W], got shape {tuple(image.shape)}"
        )
    roi = _roi(roi_size, image.ndim - 2)
    if not (isinstance(overlap, int | float) and 0 <= overlap < 1):
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    if mode not in BLEND_MODES:
        raise ValueError(f"mode must be one of {list(BLEND_MODES)}, got {mode!r}")
    if not (isinstance(sigma_scale, int | float) and sigma_scale > 0):
        raise ValueError(f"sigma_scale must be a positive number, got {sigma_scale!r}")
    if not (isinstance(sw_batch_size, int) and sw_batch_size >= 1):
        raise ValueError(f"sw_batch_size must be a positive int, got {sw_batch_size!r}")
    if padding_mode not in PAD_MODES:
        raise ValueError(f"padding_mode must be one of {list(PAD_MODES)}, got {padding_mode!r}")
    out = sliding_window_inference(
        image,
        roi_size=roi,
        sw_batch_size=sw_batch_size,
        predictor=model,
        overlap=float(overlap),
        mode=mode,
        sigma_scale=float(sigma_scale),
        padding_mode=padding_mode,
        cval=0.0,
    )
    assert isinstance(out, torch.Tensor)
    return out.as_tensor() if hasattr(out, "as_tensor") else out


def sliding_window_probs(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    roi_size: Sequence[int] | int,
    **kwargs: object,
) -> torch.Tensor:
    """Softmax of :func:`sliding_window_logits` over the class axis (nnU-Net blends logits,
    then applies the softmax). Same arguments; returns ``[B, C, *spatial]`` probabilities."""
    return torch.softmax(sliding_window_logits(model, image, roi_size, **kwargs).float(), dim=1)


def crop_to_shape(
    array: np.ndarray | torch.Tensor, shape: Sequence[int]
) -> np.ndarray | torch.Tensor:
    """The leading ``shape`` corner of the last ``len(shape)`` axes: removes the zero padding
    that recipe ``volumes_3d`` adds after each volume (``recipe.volumes.<id>.shape`` in the
    prepared sidecar).

    Raises:
        ValueError: if ``shape`` is larger than the array on some axis.
    """
    shape = tuple(int(s) for s in shape)
    have = tuple(array.shape[-len(shape) :])
    if any(s > h for s, h in zip(shape, have, strict=True)):
        raise ValueError(f"shape {list(shape)} is larger than the array's last axes {list(have)}")
    index = (Ellipsis, *(slice(0, s) for s in shape))
    return array[index]


def volume_metrics(
    prob: np.ndarray,
    target: np.ndarray,
    volume_info: dict,
    *,
    nsd_tolerance: float = 1.0,
    surface: bool = True,
) -> list[dict]:
    """Per-class metrics of one prepared 3D volume in physical units (mm).

    Crops the zero padding (``volume_info["shape"]``) and passes ``volume_info["spacing"]`` (mm
    per array axis, recipe ``volumes_3d``) to :func:`segbench.metrics.image_metrics`, so HD95,
    HD and the NSD tolerance are in millimetres (paper 003 Table 5 NSD; docs/3d.md).

    Args:
        prob: ``[C, *padded spatial]`` probabilities.
        target: ``[*padded spatial]`` labels.
        volume_info: the sidecar's ``recipe.volumes.<id>`` (keys ``shape``, ``spacing``).
        nsd_tolerance: NSD tolerance in mm (default 1.0).
        surface: compute the surface metrics (default True).

    Raises:
        ValueError: when ``volume_info`` lacks ``shape`` / ``spacing``, or from the metrics.
    """
    from segbench.metrics import image_metrics

    missing = [k for k in ("shape", "spacing") if k not in volume_info]
    if missing:
        raise ValueError(
            f"volume_info lacks {missing} (a recipe volumes_3d sidecar entry has both)"
        )
    shape = volume_info["shape"]
    p = np.asarray(crop_to_shape(prob, shape))
    t = np.asarray(crop_to_shape(target, shape))
    return image_metrics(
        p,
        t,
        p.shape[0],
        spacing=[float(s) for s in volume_info["spacing"]],
        nsd_tolerance=nsd_tolerance,
        surface=surface,
    )
