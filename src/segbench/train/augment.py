"""Augmentation of the training batches on the device: random crop and flips
(:func:`crop_flip`, ``training.crop`` / ``hflip`` / ``vflip``, every study), then the spatial
and intensity transforms (rotation, scaling, elastic deformation, gamma, Gaussian noise;
:func:`apply`) for the studies that ask for more than crop + flip (paper 002: nnU-Net's
"heavy domain-specific augmentations"; paper 004: "random rotations, flips, and elastic
deformations").

Configured by ``training.augment`` (every transform off unless named)::

    augment:
      rotation: {degrees: [-180, 180], p: 0.2}   # angle uniform in the range, per sample
      scale: {range: [0.7, 1.4], p: 0.2}          # zoom factor (> 1 zooms in), per sample
      elastic: {magnitude: 0.05, grid: 8, p: 0.2} # control-point elastic deformation
      gamma: {range: [0.7, 1.5], p: 0.3}          # x_norm ** gamma on the sample's [min, max]
      noise: {std: 0.1, p: 0.1}                   # additive Gaussian noise

Conventions (named here and in docs/training.md, tested in tests/train/test_augment.py):

* Order: crop and flips (:func:`crop_flip`) first, then one resampling for rotation + scaling
  + elastic together, then gamma, then noise (nnU-Net's order: spatial, mirror, intensity).
* Rotation is counter-clockwise as the image is displayed (row 0 at the top), about the image
  centre; scaling is about the centre; 90 degrees on a square image is exactly ``torch.rot90``.
* Resampling: ``grid_sample`` with ``align_corners=False``; images bilinear, masks nearest
  (labels stay labels), both from one grid; outside the image: 0 for the image and background
  (0) for the mask. Only the samples that drew a spatial transform are resampled; the others
  are left bit-for-bit unchanged.
* Elastic deformation: a random displacement on a coarse ``grid x grid`` lattice of control
  points (uniform in ``[-magnitude, magnitude]`` of the image half-size, i.e. grid_sample's
  normalised units), upsampled bicubically to the image: a smooth field drawn with a few dozen
  random numbers per sample (torchio's control-point formulation). Simard's per-pixel Gaussian-
  smoothed field would need a per-pixel random field per step; this keeps the draws on the CPU
  generator and the work on the device.
* Random numbers: flags, angles, factors, control points and gammas come from the run's seeded
  CPU generator (reproducible, checkpointed, no device sync); the per-pixel noise comes from the
  device's global generator (seeded by the run seed, its state saved in the checkpoint).

No library does this on the device with a CPU generator: MONAI's ``RandAffined`` /
``Rand2DElasticd`` draw from numpy per sample and run per sample, which would bring back the
host-side data path the engine removes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

SPATIAL = ("rotation", "scale", "elastic")
INTENSITY = ("gamma", "noise")
KNOWN = SPATIAL + INTENSITY


def check_config(cfg: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Validate ``training.augment`` and return it with every named transform's defaults.

    Raises:
        ValueError: naming the key and value, for an unknown transform or a bad parameter.
    """
    if not cfg:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, params in cfg.items():
        if name not in KNOWN:
            raise ValueError(f"training.augment.{name}: unknown transform; allowed: {KNOWN}")
        if params is None:
            continue
        p = dict(params)
        prob = float(p.get("p", 1.0))
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"training.augment.{name}.p must be in [0, 1], got {prob}")
        p["p"] = prob
        if name == "rotation":
            lo, hi = (float(v) for v in p.get("degrees", (-180.0, 180.0)))
            if lo > hi:
                raise ValueError(f"training.augment.rotation.degrees: {lo} > {hi}")
            p["degrees"] = [lo, hi]
        elif name in ("scale", "gamma"):
            lo, hi = (
                float(v) for v in p.get("range", (0.7, 1.4) if name == "scale" else (0.7, 1.5))
            )
            if not 0 < lo <= hi:
                raise ValueError(
                    f"training.augment.{name}.range must be 0 < lo <= hi, got {[lo, hi]}"
                )
            p["range"] = [lo, hi]
        elif name == "elastic":
            p["magnitude"] = float(p.get("magnitude", 0.05))
            p["grid"] = int(p.get("grid", 8))
            if p["magnitude"] < 0 or p["grid"] < 2:
                raise ValueError(
                    f"training.augment.elastic needs magnitude >= 0 and grid >= 2, got {params}"
                )
        elif name == "noise":
            p["std"] = float(p.get("std", 0.1))
            if p["std"] < 0:
                raise ValueError(f"training.augment.noise.std must be >= 0, got {p['std']}")
        out[name] = p
    return out


def check_crop(crop: int | None, shape: tuple[int, ...], dataset: str) -> None:
    """``training.crop`` fits the images of ``dataset`` (``shape`` = ``(..., H, W)``).

    A crop larger than the image side was once skipped without a word (the whole image was
    trained on, or a smaller crop than asked for); the training job now refuses it.

    Raises:
        ValueError: naming the crop, the image size and the dataset.
    """
    if crop is None:
        return
    h, w = int(shape[-2]), int(shape[-1])
    if int(crop) > h or int(crop) > w:
        raise ValueError(
            f"training.crop = {crop} is larger than the {h}x{w} images of dataset {dataset!r}; "
            f"use crop <= {min(h, w)} or null (no crop)"
        )


def crop_flip(
    x: torch.Tensor,
    y: torch.Tensor,
    crop: int | None,
    hflip: bool,
    gen: torch.Generator,
    vflip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop (one offset per sample) and horizontal/vertical flips, on the tensors' device.

    Random numbers come from the CPU generator ``gen`` (no device sync, reproducible), drawn in
    this order: crop rows, crop columns (only when ``crop`` is smaller than the image), then
    the hflip and vflip coins (each 0.5, per sample).
    """
    b, _, h, w = x.shape
    if crop is not None and (crop < h or crop < w):
        ch, cw = min(crop, h), min(crop, w)
        oy = torch.randint(0, h - ch + 1, (b,), generator=gen).tolist()
        ox = torch.randint(0, w - cw + 1, (b,), generator=gen).tolist()
        x = torch.stack([x[i, :, oy[i] : oy[i] + ch, ox[i] : ox[i] + cw] for i in range(b)])
        y = torch.stack([y[i, oy[i] : oy[i] + ch, ox[i] : ox[i] + cw] for i in range(b)])
    for on, dim in ((hflip, -1), (vflip, -2)):  # horizontal: the last axis; vertical: rows
        if not on:
            continue
        flip = torch.rand(b, generator=gen) < 0.5
        if bool(flip.any()):
            f = flip.to(x.device)
            x = torch.where(f[:, None, None, None], x.flip(dim), x)
            y = torch.where(f[:, None, None], y.flip(dim), y)
    return x, y


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _draw(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def spatial_grid(
    b: int, h: int, w: int, cfg: Mapping[str, Mapping[str, Any]], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Which samples are resampled (bool ``[b]``) and their sampling grids ``[m, h, w, 2]``
    (CPU, float64; None when no sample drew a spatial transform). Draws, in this order and only
    for the configured transforms: rotation flags + angles, scale flags + factors, elastic flags
    + control points."""
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    chosen = torch.zeros(b, dtype=torch.bool)
    if "rotation" in cfg:
        r = cfg["rotation"]
        flag = _draw(b, r["p"], gen)
        ang = torch.deg2rad(_uniform(b, *r["degrees"], gen)) * flag
        # Counter-clockwise on the displayed image (x right, y down): output pixel (x, y)
        # samples the input at (c x - s y, s x + c y); at 90 degrees that is torch.rot90(k=1).
        c, s = torch.cos(ang), torch.sin(ang)
        rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        theta[:, :, :2] = rot @ theta[:, :, :2]
        chosen |= flag
    if "scale" in cfg:
        sc = cfg["scale"]
        flag = _draw(b, sc["p"], gen)
        f = torch.where(flag, _uniform(b, *sc["range"], gen), torch.ones(b, dtype=torch.float64))
        theta[:, :, :2] = theta[:, :, :2] / f[:, None, None]  # zoom in by f: sample 1/f as far
        chosen |= flag
    disp = None
    if "elastic" in cfg:
        el = cfg["elastic"]
        flag = _draw(b, el["p"], gen)
        g, m = el["grid"], el["magnitude"]
        ctrl = (2 * torch.rand(b, 2, g, g, generator=gen, dtype=torch.float64) - 1) * m
        disp = ctrl * flag[:, None, None, None]
        chosen |= flag & (m > 0)
    if not bool(chosen.any()):
        return chosen, None
    idx = chosen.nonzero().squeeze(1)
    grid = F.affine_grid(theta[idx], [len(idx), 1, h, w], align_corners=False)
    if disp is not None:
        field = F.interpolate(disp[idx], size=(h, w), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)
    return chosen, grid


def apply(
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: Mapping[str, Mapping[str, Any]],
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch ``x [B, C, H, W]`` (float), ``y [B, H, W]`` (int labels) on their
    device with the validated config ``cfg`` (:func:`check_config`); identity (no random draw)
    when ``cfg`` is empty."""
    if not cfg:
        return x, y
    b, _, h, w = x.shape
    if any(k in cfg for k in SPATIAL):
        chosen, grid = spatial_grid(b, h, w, cfg, gen)
        if grid is not None:
            idx = chosen.nonzero().squeeze(1).to(x.device)
            g = grid.to(device=x.device, dtype=x.dtype)
            xs = F.grid_sample(
                x[idx], g, mode="bilinear", padding_mode="zeros", align_corners=False
            )
            ys = F.grid_sample(
                y[idx][:, None].to(x.dtype),
                g,
                mode="nearest",
                padding_mode="zeros",
                align_corners=False,
            )
            x = x.index_copy(0, idx, xs)
            y = y.index_copy(0, idx, ys[:, 0].round().to(y.dtype))
    if "gamma" in cfg:
        gm = cfg["gamma"]
        flag = _draw(b, gm["p"], gen)
        gamma = _uniform(b, *gm["range"], gen)
        if bool(flag.any()):
            idx = flag.nonzero().squeeze(1).to(x.device)
            xs = x[idx]
            lo = xs.amin(dim=(1, 2, 3), keepdim=True)
            span = (xs.amax(dim=(1, 2, 3), keepdim=True) - lo).clamp_min(1e-8)
            gam = gamma[flag].to(device=x.device, dtype=x.dtype)[:, None, None, None]
            x = x.index_copy(0, idx, ((xs - lo) / span).clamp(0, 1) ** gam * span + lo)
    if "noise" in cfg:
        nz = cfg["noise"]
        flag = _draw(b, nz["p"], gen)
        if bool(flag.any()) and nz["std"] > 0:
            noise = torch.randn(x.shape, device=x.device, dtype=x.dtype) * nz["std"]
            x = x + noise * flag.to(x.device)[:, None, None, None].to(x.dtype)
    return x, y
