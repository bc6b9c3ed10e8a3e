"""Tiny synthetic NIfTI volumes for the 3D tests (written with nibabel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segbench.data.registry import DatasetEntry


def ball(shape: tuple[int, int, int], centre: tuple[float, ...], radius: float) -> np.ndarray:
    """Boolean ball in index space."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return ((grid - np.asarray(centre)) ** 2).sum(-1) <= radius**2


def write_case(
    folder: Path,
    case: str,
    image: np.ndarray,
    label: np.ndarray,
    affine: np.ndarray,
    *,
    image_name: str = "{case}_img.nii.gz",
    label_name: str = "{case}_seg.nii.gz",
) -> None:
    """Write one image/label pair with the same affine."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    nib.save(
        nib.Nifti1Image(image.astype(np.float32), affine), folder / image_name.format(case=case)
    )
    nib.save(nib.Nifti1Image(label.astype(np.uint8), affine), folder / label_name.format(case=case))


def ct_case(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like volume: air (-1000) around a body (0..60 HU) holding an organ (label 1,
    ~100 HU) with a tumour (label 2, ~200 HU)."""
    rng = np.random.default_rng(seed)
    c = tuple((n - 1) / 2 for n in shape)
    body = ball(shape, c, min(shape) * 0.45)
    organ = ball(shape, c, min(shape) * 0.3)
    tumour = ball(shape, tuple(v + 1 for v in c), min(shape) * 0.12)
    img = np.full(shape, -1000.0)
    img[body] = rng.normal(30.0, 15.0, size=int(body.sum()))
    img[organ] = rng.normal(100.0, 20.0, size=int(organ.sum()))
    img[tumour] = rng.normal(200.0, 40.0, size=int(tumour.sum()))
    lab = np.zeros(shape, dtype=np.uint8)
    lab[organ] = 1
    lab[tumour] = 2
    return img.astype(np.float32), lab


def entry(recipe: dict, **kw: object) -> DatasetEntry:
    """A registry entry around ``recipe`` (three classes, raw labels = class indices)."""
    base: dict = dict(
        id="vol3d", title="Tiny 3D", access="manual", licence="L", citation="C",
        classes=("background", "organ", "tumour"), recipe=recipe, instructions="none",
    )  # fmt: skip
    base.update(kw)
    return DatasetEntry(**base)
