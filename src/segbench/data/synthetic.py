"""Embedded synthetic benchmark: three 2D datasets and one tiny 3D one, generated from a seed
(no network).

Each mimics one regime of the studies (hand-written because no library generates
segmentation benchmarks with controlled class proportions and intensity overlap):

- ``synth_vessels``: thin curvilinear binary foreground (~5-10 % of pixels), like retinal
  vessels (CHASE-DB1, DRIVE, FIVES).
- ``synth_cells``: 5-class cellular texture (membrane, glia/extracellular, mitochondria,
  synapse, intracellular) with a rare small class (synapse), like the Drosophila ssTEM data.
- ``synth_organs``: 4 classes, a large organ plus two lesion classes of which one is small and
  rare, like the COVID-19 CT data (background, lungs, ground glass, consolidation).

3D (:data:`VOLUME_GENERATORS`, tests of the 3D path, docs/3d.md):

- ``synth_vol3d``: 2 classes, one blurred ball ("lesion") per volume in noise; every volume has
  its own extent (at most ``size`` per axis) and is zero-padded at the end of each axis to
  ``size``, and the sidecar's ``recipe.volumes.<id>`` gives its ``shape`` and ``spacing`` (mm,
  anisotropic by default), the layout recipe ``volumes_3d`` writes for the real 3D datasets.

Class intensities overlap, and images are blurred and noised, so the task is not trivial.
Every array is a pure function of ``(name, n, size, seed, params)``.

Generators are registered like losses and models, ``@GENERATORS.register("synth_vessels")``; a
generator is ``fn(rng, size, *, <its parameters with defaults>) -> (image, mask)``, so its
parameters are its keyword-only arguments and an unknown one raises ``ValueError`` naming it,
its value and the allowed ones (:func:`check_params`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from segbench.registry import Registry

GENERATOR_VERSION = 1

CLASS_NAMES: dict[str, list[str]] = {
    "synth_vessels": ["background", "vessel"],
    "synth_cells": ["membrane", "glia_extracellular", "mitochondria", "synapse", "intracellular"],
    "synth_organs": ["background", "organ", "ground_glass", "consolidation"],
}


GENERATORS: Registry[tuple[np.ndarray, np.ndarray]] = Registry(
    "synthetic generator", fixed=("rng", "size")
)
"""Generator name -> ``fn(rng, size, **params) -> (image float [size, size], mask uint8)``."""


def _finish(
    rng: np.random.Generator, intensity: np.ndarray, noise: float, blur: float
) -> np.ndarray:
    img = ndimage.gaussian_filter(intensity, blur) if blur > 0 else intensity
    img = img + rng.normal(0.0, noise, img.shape)
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


@GENERATORS.register("synth_vessels")
def _vessels(
    rng: np.random.Generator,
    size: int,
    *,
    foreground: float = 0.07,
    contrast: float = 0.22,
    noise: float = 0.06,
    blur: float = 0.7,
) -> tuple[np.ndarray, np.ndarray]:
    """Random smooth curves (vessel trees) drawn 1-2 px thick on a shaded background.

    ``foreground``: target vessel share of the pixels; ``contrast``: how much darker vessels are.
    """
    target_fg = float(foreground)
    mask = np.zeros((size, size), dtype=bool)
    yy, xx = np.mgrid[0:size, 0:size]
    # Draw curves until the foreground share reaches the target.
    for _ in range(200):
        if mask.mean() >= target_fg:
            break
        y, x = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * np.pi)
        width = rng.choice([0.6, 0.9, 1.3])
        steps = int(rng.integers(size // 2, size * 2))
        for _ in range(steps):
            angle += rng.normal(0, 0.25)
            y += np.sin(angle)
            x += np.cos(angle)
            if not (0 <= y < size and 0 <= x < size):
                break
            r = int(np.ceil(width)) + 1
            y0, y1 = max(0, int(y) - r), min(size, int(y) + r + 1)
            x0, x1 = max(0, int(x) - r), min(size, int(x) + r + 1)
            d2 = (yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2
            mask[y0:y1, x0:x1] |= d2 <= width**2
    shade = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), size / 6)
    shade = 0.5 + 0.15 * shade / (np.abs(shade).max() + 1e-6)
    intensity = shade - float(contrast) * mask
    # Dark blobs (like haemorrhages / the optic-disc rim) that are NOT vessels: distractors.
    for _ in range(int(rng.integers(2, 5))):
        cy, cx = rng.uniform(0, size, 2)
        rad = rng.uniform(size / 30, size / 12)
        intensity -= 0.18 * (((yy - cy) ** 2 + (xx - cx) ** 2) <= rad**2)
    img = _finish(rng, intensity, float(noise), float(blur))
    return img, mask.astype(np.uint8)


@GENERATORS.register("synth_cells")
def _cells(
    rng: np.random.Generator,
    size: int,
    *,
    cells: int | None = None,
    membrane_width: float = 1.6,
    extracellular_share: float = 0.25,
    mitochondria: int | None = None,
    synapses: int = 2,
    noise: float = 0.07,
    blur: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi cells: membranes between cells, some extracellular cells, mitochondria, synapses.

    ``cells`` (default ``max(6, size // 6)``) and ``mitochondria`` (default ``max(4, size // 5)``)
    are counts; ``synapses`` the number of rare tiny spots.
    """
    n_cells = int(max(6, size // 6) if cells is None else cells)
    seeds = rng.uniform(0, size, (n_cells, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    d = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    order = np.sort(d, axis=0)
    owner = np.argmin(d, axis=0)
    membrane = (np.sqrt(order[1]) - np.sqrt(order[0])) < float(membrane_width)
    label = np.full((size, size), 4, dtype=np.uint8)  # intracellular
    extracellular = rng.random(n_cells) < float(extracellular_share)
    label[extracellular[owner]] = 1
    # Mitochondria: small ellipses inside intracellular cells.
    for _ in range(int(max(4, size // 5) if mitochondria is None else mitochondria)):
        cy, cx = rng.uniform(0, size, 2)
        a, b = rng.uniform(size / 40, size / 16), rng.uniform(size / 60, size / 30)
        t = rng.uniform(0, np.pi)
        u = (yy - cy) * np.cos(t) + (xx - cx) * np.sin(t)
        v = -(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)
        blob = (u / a) ** 2 + (v / b) ** 2 <= 1
        label[blob & (label == 4)] = 2
    label[membrane] = 0
    # Synapses: rare tiny dark spots on membranes.
    mem_idx = np.flatnonzero(membrane)
    for _ in range(int(synapses)):
        if mem_idx.size == 0:
            break
        k = rng.choice(mem_idx)
        cy, cx = divmod(int(k), size)
        rad = rng.uniform(1.2, 2.2)
        label[((yy - cy) ** 2 + (xx - cx) ** 2) <= rad**2] = 3
    means = np.array([0.22, 0.62, 0.38, 0.12, 0.55])  # overlapping class intensities
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 1.5)
    intensity = means[label] + 0.08 * texture / (np.abs(texture).max() + 1e-6)
    img = _finish(rng, intensity, float(noise), float(blur))
    return img, label


@GENERATORS.register("synth_organs")
def _organs(
    rng: np.random.Generator,
    size: int,
    *,
    ground_glass: int = 3,
    consolidation_rate: float = 0.7,
    noise: float = 0.06,
    blur: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two large 'lungs' with ground-glass patches and small rare consolidations inside.

    ``ground_glass``: at most this many patches; ``consolidation_rate``: share of images with
    consolidations.
    """
    yy, xx = np.mgrid[0:size, 0:size] / size
    label = np.zeros((size, size), dtype=np.uint8)
    for side in (-1, 1):
        cy = 0.5 + rng.normal(0, 0.03)
        cx = 0.5 + side * rng.uniform(0.18, 0.24)
        a, b = rng.uniform(0.28, 0.36), rng.uniform(0.12, 0.17)
        label[((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2 <= 1] = 1
    organ = label == 1
    coords = np.argwhere(organ)

    def _blob(scale: tuple[float, float]) -> np.ndarray:
        cy, cx = coords[rng.integers(len(coords))] / size
        r = rng.uniform(*scale)
        wobble = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), size / 16)
        wobble = wobble / (np.abs(wobble).max() + 1e-6)
        return (((yy - cy) ** 2 + (xx - cx) ** 2) <= (r * (1 + 0.3 * wobble)) ** 2) & organ

    if coords.size:
        for _ in range(int(rng.integers(1, int(ground_glass) + 1))):
            label[_blob((0.07, 0.13))] = 2
        if rng.random() < float(consolidation_rate):
            for _ in range(int(rng.integers(1, 3))):
                label[_blob((0.03, 0.06))] = 3
    means = np.array([0.55, 0.15, 0.32, 0.5])  # consolidation overlaps the body's intensity
    body = (((yy - 0.5) / 0.48) ** 2 + ((xx - 0.5) / 0.46) ** 2) <= 1
    intensity = np.where(body, means[label], 0.05)
    intensity = intensity + 0.06 * ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 2)
    img = _finish(rng, intensity, float(noise), float(blur))
    return img, label


VOLUME_CLASS_NAMES: dict[str, list[str]] = {"synth_vol3d": ["background", "lesion"]}

VOLUME_GENERATORS: Registry[tuple[np.ndarray, np.ndarray, list[float]]] = Registry(
    "synthetic 3D generator", fixed=("rng", "size")
)
"""3D generator name -> ``fn(rng, size, **params) -> (image float [X, Y, Z], mask uint8
[X, Y, Z], spacing [3] mm)``; each axis at most ``size`` (the volume's own, unpadded extent)."""

MIN_VOLUME_SIZE = 8


@VOLUME_GENERATORS.register("synth_vol3d")
def _vol3d(
    rng: np.random.Generator,
    size: int,
    *,
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
    min_extent: float = 0.75,
    contrast: float = 1.0,
    noise: float = 0.6,
    blur: float = 0.7,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """One volume of extent ``U(min_extent * size, size)`` per axis, holding a ball (label 1)
    of radius ``U(0.2, 0.3) * min(extent)`` at a random centre, ``contrast`` brighter than the
    background; Gaussian blur ``blur`` (voxels), then noise of std ``noise``. The image is
    z-scored over the volume (as recipe ``volumes_3d`` z-scores MR), so not in [0, 1]."""
    lo = max(MIN_VOLUME_SIZE // 2, int(np.ceil(float(min_extent) * size)))
    shape = tuple(int(rng.integers(lo, size + 1)) for _ in range(3))
    radius = rng.uniform(0.2, 0.3) * min(shape)
    centre = [
        rng.uniform(radius, n - 1 - radius) if n - 1 > 2 * radius else (n - 1) / 2 for n in shape
    ]
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    mask = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2
    intensity = float(contrast) * mask.astype(np.float64)
    if blur > 0:
        intensity = ndimage.gaussian_filter(intensity, float(blur))
    img = intensity + rng.normal(0.0, float(noise), shape)
    img = (img - img.mean()) / max(float(img.std()), 1e-6)
    return img.astype(np.float32), mask.astype(np.uint8), [float(s) for s in spacing]


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for an unknown generator or a parameter it does not take.

    The message names the parameter, its value and the generator's parameters.
    """
    if name in VOLUME_GENERATORS:
        VOLUME_GENERATORS.bind(name, params, rng=None, size=0)
        return
    GENERATORS.bind(name, params, rng=None, size=0)


def is_volumetric(name: str) -> bool:
    """Whether synthetic generator ``name`` makes 3D volumes (:data:`VOLUME_GENERATORS`)."""
    return name in VOLUME_GENERATORS


def _generate_volumes(
    name: str, n: int, size: int, seed: int, params: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """:func:`generate` for a 3D generator (module docstring)."""
    if size < MIN_VOLUME_SIZE:
        raise ValueError(
            f"synthetic dataset {name!r}: size must be >= {MIN_VOLUME_SIZE}, got {size}"
        )
    make = VOLUME_GENERATORS.get(name)
    tag = sum(name.encode())
    images = np.zeros((n, 1, size, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size, size), dtype=np.uint8)
    ids = [f"{name}_{k:04d}" for k in range(n)]
    volumes: dict[str, dict[str, Any]] = {}
    for k in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, k, tag]))
        img, mask, spacing = make(rng, size, **params)
        x, y, z = img.shape
        images[k, 0, :x, :y, :z] = img
        masks[k, :x, :y, :z] = mask
        volumes[ids[k]] = {"shape": [x, y, z], "spacing": spacing}
    meta = _meta(name, VOLUME_CLASS_NAMES[name], n, size, seed, params)
    meta["recipe"]["volumes"] = volumes
    return images, masks, ids, meta


def _meta(
    name: str, classes: list[str], n: int, size: int, seed: int, params: dict[str, Any]
) -> dict[str, Any]:
    """The sidecar of a generated dataset (2D or 3D): classes, generator and its arguments."""
    return {
        "name": name,
        "num_classes": len(classes),
        "class_names": classes,
        "in_channels": 1,
        "source": {
            "generator": "segbench.data.synthetic",
            "version": GENERATOR_VERSION,
            "n": n,
            "size": size,
            "seed": seed,
            "params": params,
        },
        "recipe": {"kind": "synthetic"},
    }


def generate(
    name: str, n: int = 40, size: int = 64, seed: int = 0, **params: Any
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """Generate a synthetic dataset.

    Args:
        name: one of ``synth_vessels``, ``synth_cells``, ``synth_organs`` (2D) or
            ``synth_vol3d`` (3D).
        n: number of images (>= 2).
        size: image side in pixels (>= 32; 3D: the padded volume side, >= 8).
        seed: base seed; image ``k`` uses ``SeedSequence([seed, k, name-hash])``.
        **params: generator parameters (class proportions, noise, blur, contrast; see the
            generator functions).

    Returns:
        ``images`` float32 [n, 1, size, size], ``masks`` uint8 [n, size, size], ``ids``, ``meta``
        (3D: ``[n, 1, size, size, size]`` / ``[n, size, size, size]``, zero-padded, and
        ``meta["recipe"]["volumes"]``).

    Raises:
        ValueError: unknown name, an unknown parameter, or ``n``/``size`` out of range.
    """
    if name not in GENERATORS and name not in VOLUME_GENERATORS:
        known = sorted([*GENERATORS, *VOLUME_GENERATORS])
        raise ValueError(f"unknown synthetic dataset {name!r}; known: {', '.join(known)}")
    check_params(name, params)
    if n < 2:
        raise ValueError(f"synthetic dataset {name!r}: n must be >= 2, got {n}")
    if name in VOLUME_GENERATORS:
        return _generate_volumes(name, n, size, seed, params)
    make = GENERATORS.get(name)
    if size < 32:
        raise ValueError(f"synthetic dataset {name!r}: size must be >= 32, got {size}")
    tag = sum(name.encode())
    images = np.empty((n, 1, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=np.uint8)
    for k in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, k, tag]))
        img, mask = make(rng, size, **params)
        images[k, 0] = img
        masks[k] = mask
    ids = [f"{name}_{k:04d}" for k in range(n)]
    meta = _meta(name, CLASS_NAMES[name], n, size, seed, params)
    return images, masks, ids, meta
