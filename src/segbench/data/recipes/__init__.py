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

:func:`prepare_dataset` runs a recipe and writes the result through
:func:`segbench.data.io.save_prepared` (format in docs/CONVENTIONS.md).
"""

from __future__ import annotations

from segbench.data.recipes._common import (
    PreparedArrays,
    RecipeError,
    prepare_dataset,
)
from segbench.data.recipes.nifti_slices import nifti_slices
from segbench.data.recipes.paired_2d import paired_2d
from segbench.registry import Registry

RECIPES: Registry[PreparedArrays] = Registry("recipe")
RECIPES.register("paired_2d", paired_2d)
RECIPES.register("nifti_slices", nifti_slices)

__all__ = ["RECIPES", "PreparedArrays", "RecipeError", "prepare_dataset"]
