"""Input checks and the numerical constants shared by every metric module.

All metric functions take the saved softmax probabilities of ONE image, ``prob`` with shape
``[C, *spatial]`` (float16/32/64), and its integer label map ``target`` with shape ``[*spatial]``.
The hard prediction is always ``prob.argmax(axis=0)`` (ties go to the lower class index, numpy's
rule; float16 storage can create ties that float32 would not).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-7
"""Probability floor for log-based metrics (NLL): ``log(max(p, EPS))``. One place per package."""


def check_prob_target(
    prob: np.ndarray, target: np.ndarray, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one image's probabilities and labels; return them as numpy arrays.

    Args:
        prob: class probabilities ``[C, *spatial]``.
        target: integer labels ``[*spatial]`` with values in ``[0, C)``.
        num_classes: expected ``C``; ``None`` takes it from ``prob``.

    Returns:
        ``(prob, target)`` as numpy arrays (``prob`` keeps its float dtype, ``target`` is int64).

    Raises:
        ValueError: on a shape mismatch, a non-float ``prob``, a non-integer ``target``,
            ``C != num_classes`` or labels outside ``[0, C)``.
    """
    prob = np.asarray(prob)
    target = np.asarray(target)
    if not np.issubdtype(prob.dtype, np.floating):
        raise ValueError(f"prob must be a float array of probabilities, got dtype {prob.dtype}")
    if not (np.issubdtype(target.dtype, np.integer) or target.dtype == bool):
        raise ValueError(f"target must be an integer label array, got dtype {target.dtype}")
    if prob.ndim != target.ndim + 1 or prob.shape[1:] != target.shape:
        raise ValueError(
            f"prob must have shape [C, *target.shape]; got prob {tuple(prob.shape)} and "
            f"target {tuple(target.shape)}"
        )
    if target.ndim not in (2, 3):
        raise ValueError(f"target must be 2D [H, W] or 3D [D, H, W], got shape {target.shape}")
    n_classes = prob.shape[0]
    if num_classes is not None and num_classes != n_classes:
        raise ValueError(f"num_classes={num_classes} does not match prob.shape[0]={n_classes}")
    if n_classes < 2:
        raise ValueError(f"prob must have at least 2 classes (channels), got {n_classes}")
    target = target.astype(np.int64, copy=False)
    if target.size and (target.min() < 0 or target.max() >= n_classes):
        raise ValueError(
            f"target labels must lie in [0, {n_classes}), got range "
            f"[{int(target.min())}, {int(target.max())}]"
        )
    return prob, target


def check_n_bins(n_bins: int) -> int:
    """Raise ``ValueError`` unless ``n_bins`` is a positive integer; return it as ``int``."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def resolve_spacing(spacing: float | Sequence[float] | None, ndim: int) -> np.ndarray:
    """Per-axis pixel/voxel spacing as a float64 array of length ``ndim``.

    Args:
        spacing: ``None`` (unit spacing: distances in pixels), one number (isotropic) or one
            number per spatial axis (same axis order as the arrays, e.g. ``[D, H, W]``).
        ndim: number of spatial axes.

    Raises:
        ValueError: on a wrong length or a non-positive value.
    """
    if spacing is None:
        return np.ones(ndim, dtype=np.float64)
    arr = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if arr.size == 1:
        arr = np.repeat(arr, ndim)
    if arr.shape != (ndim,):
        raise ValueError(f"spacing must be one number or {ndim} numbers, got {spacing!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"spacing values must be positive and finite, got {spacing!r}")
    return arr
