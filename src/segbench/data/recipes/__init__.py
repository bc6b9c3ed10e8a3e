"""Dataset preparation recipes: raw files -> ``data/prepared/{dataset}.npz`` + ``.json``.

A recipe is a function ``recipe(entry, raw_dir, params) -> PreparedArrays`` registered in
:data:`RECIPES` under the name used in ``config/datasets.yaml`` (``recipe: {name, params}``).
Recipes are generic and driven by the registry's parameters, so a dataset is added by writing
YAML, not code:

- ``paired_2d``: 2D image files paired with 2D label files (Drosophila ssTEM, DRIVE, CHASE-DB1,
  Kvasir-SEG, CVC-ClinicDB, BUSI, FIVES); optional resize, centre crop and non-overlapping
  tiling.
- ``nifti_slices``: 2D slices of NIfTI volumes (COVID-19 CT, KiTS19); optional HU window,
  resize and channel repetition.
- ``inbreast_dicom``: INbreast DICOM mammograms with OsiriX plist XML mass outlines (paper 002).
- ``lesion_folders``: images with a folder of per-lesion mask files, merged (Retinal Lesions,
  paper 003).
- ``volumes_3d``: whole 3D NIfTI volumes, nnU-Net-style MONAI preprocessing (RAS+, target
  spacing, CT clip + z-score / MR z-score, crop to the foreground; papers 002 and 003, 3D).

:func:`prepare_dataset` runs a recipe and writes the result through
:func:`segbench.data.io.save_prepared` (format in docs/CONVENTIONS.md).
"""

from __future__ import annotations

from segbench.data.recipes import (  # noqa: F401  (they register)
    inbreast,
    lesion_folders,
    nifti_slices,
    paired_2d,
    volumes_3d,
)
from segbench.data.recipes._common import (
    PreparedArrays,
    RecipeError,
    prepare_dataset,
)
from segbench.data.recipes.registry import RECIPES

__all__ = ["RECIPES", "PreparedArrays", "RecipeError", "prepare_dataset"]
