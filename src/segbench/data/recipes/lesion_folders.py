"""Recipe ``lesion_folders``: images with a folder of per-lesion binary masks (Retinal Lesions).

The layout of Retinal-Lesions (Wei et al., ICPR 2020, https://github.com/WeiQijie/retinal-lesions,
distributed on request as ``retinal-lesions-v20191227``):

- ``images_896x896/<image>.jpg``: 1593 colour fundus images (Kaggle DR ids ``<patient>_<eye>``),
  cropped to the field of view and resized to 896x896 by the distributors;
- ``lesion_segs_896x896/<image>/<lesion>.png``: one grey mask per lesion class present in the
  image, ``<lesion>`` one of microaneurysm, retinal_hemorrhage, hard_exudate, cotton_wool_spots,
  vitreous_hemorrhage, preretinal_hemorrhage, fibrous_proliferation, neovascularization. A lesion
  absent from an image has no file; an image without lesions may have no folder. Grey 255 marks a
  lesion, 127 a lesion "not complied to the AAO guidelines" (the distributors' README);
- ``dr_grades.csv`` (image-level DR grades): not read here.

Paper 003 (Liu et al. 2024), Sec. 4.1 (l.690-697): "In our experiments, we employ its public
version, consisting of 1,593 samples and conduct our experiments in the binary scenario (i.e.
segmenting the lesion region versus background). The data set is randomly divided into training
(70%), validation (10%) and testing (20%) sets, with the images being resized to 512x512."
Table 3's caption (l.760-763): "Dice1 is implemented for all the Dice related losses for the
binary setting on this dataset" (a loss option, not part of this recipe). Our reading: every
image is a sample (1593, ``count``); its mask is the union of all eight lesion classes (class 1,
"lesion region") against background (class 0); images and masks are resized to 512x512
(bilinear / nearest). The paper does not say what happens to the grey-127 lesions; the authors'
public code (github.com/by-liu/SegLossBias, configs/retinal-lesions/*_512x512.yaml:
``LABEL_VALUES: [127, 255]``, ``BINARY: True``) counts both as lesion, so the registry's
``label_map`` maps 0 -> 0, 127 -> 1, 255 -> 1 (any other grey value stops the recipe). The 70 / 10
/ 20 split is not a recipe option: the study gives it (config/studies/paper003.yaml:
``retinal_lesions`` fold 0 of 5 folds with val_fraction 0.125 = 1114 / 160 / 319 images).

Parameters (``recipe.params`` in config/datasets.yaml):

- ``images`` (required): glob of the images under the raw folder; ``regex`` (optional) filters
  them by relative path and names fields (``(?P<name>...)``) for the templates.
- ``masks`` (required): template of one lesion mask from the image's fields (``{stem}``,
  ``{name}``, ``{dir}``, the regex groups) and ``{lesion}``, e.g.
  ``lesion_segs_896x896/{stem}/{lesion}.png``.
- ``lesions`` (required): the lesion names (``{lesion}`` values) whose masks are merged; a file
  of the image's mask folder that is not listed raises (a layout check).
- ``id`` / ``group``: templates of the sample id (default ``{stem}``) and group (default the id).
- ``image_mode``: ``"RGB"`` (default) or ``"L"``; ``size``: ``[H, W]`` to resize to, or null.
- ``count``: the number of images expected (layout check), or null.

Each lesion mask is mapped through the entry's ``label_map`` and the lesions are merged by the
maximum class index.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from segbench.data.recipes import _common as common
from segbench.data.recipes._common import PreparedArrays, RecipeError
from segbench.data.recipes.registry import RECIPES

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

PARAMS = ("images", "regex", "masks", "lesions", "id", "group", "image_mode", "size", "count")
RETINAL_LESIONS = (
    "microaneurysm",
    "retinal_hemorrhage",
    "hard_exudate",
    "cotton_wool_spots",
    "vitreous_hemorrhage",
    "preretinal_hemorrhage",
    "fibrous_proliferation",
    "neovascularization",
)
"""The eight lesion mask names of Retinal-Lesions v20191227."""


def _read(path: Path, mode: str | None) -> np.ndarray:
    """An image as ``[C, H, W]`` float (``mode`` given) or a mask's raw values ``[H, W]``."""
    try:
        with Image.open(path) as img:
            return common.image_array(img, mode) if mode else common.mask_array(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise RecipeError(f"cannot read {path}: {type(err).__name__}: {err}") from None


@RECIPES.register("lesion_folders")
def lesion_folders(entry: DatasetEntry, raw_dir: Path, params: dict[str, Any]) -> PreparedArrays:
    """Prepare images whose labels are per-lesion mask files (see the module docstring).

    Returns:
        :class:`PreparedArrays` with images ``[N, C, H, W]`` and masks ``[N, H, W]``; ``info``
        counts the images without any lesion file and the mask files per lesion.

    Raises:
        RecipeError: bad parameters, no images, an unlisted lesion file, a mask whose size
            differs from its image, unexpected grey values, images of different sizes without
            ``size``, duplicate ids, or a ``count`` that does not match.
    """
    where = f"dataset {entry.id!r} (recipe lesion_folders)"
    common.check_params(params, PARAMS, where)
    for key in ("images", "masks"):
        if not isinstance(params.get(key), str) or not params[key]:
            raise RecipeError(f"{where}: parameter {key!r} must be a non-empty string")
    lesions = common.param_list(params, "lesions", where, of=str)
    if "{lesion}" not in params["masks"]:
        raise RecipeError(f"{where}: the 'masks' template must contain {{lesion}}")
    mode = common.param_choice(params, "image_mode", ("RGB", "L"), "RGB", where)
    size = common.param_size(params, "size", where)

    matches = common.match_files(raw_dir, params["images"], params.get("regex"), where)
    if not matches:
        raise RecipeError(f"{where}: no image matches {params['images']!r} under {raw_dir}")
    count = params.get("count")
    if count is not None and count != len(matches):
        raise RecipeError(f"{where}: expected {count} images, found {len(matches)} under {raw_dir}")
    ids = [common.fill(params.get("id") or "{stem}", m.fields, where) for m in matches]
    dupes = sorted(k for k, v in Counter(ids).items() if v > 1)
    if dupes:
        raise RecipeError(f"{where}: sample ids are not unique: {dupes[:5]}")
    order = sorted(range(len(ids)), key=lambda i: ids[i])

    images: np.ndarray | None = None  # allocated once (1593 x 3 x 512 x 512 float32 = 5 GB)
    masks: np.ndarray | None = None
    groups: list[str] = []
    per_lesion: Counter[str] = Counter()
    no_lesion: list[str] = []
    sizes: set[tuple[int, int]] = set()
    raw_values: dict[int, str] = {}
    for k, i in enumerate(order):
        m, sample_id = matches[i], ids[i]
        chw = _read(m.path, mode)
        shape = (int(chw.shape[1]), int(chw.shape[2]))
        sizes.add(shape)
        folder = (raw_dir / common.fill(params["masks"], {**m.fields, "lesion": "_"}, where)).parent
        if folder.is_dir():
            known = {
                Path(common.fill(params["masks"], {**m.fields, "lesion": x}, where)).name
                for x in lesions
            }
            extra = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in known)
            if extra:
                raise RecipeError(
                    f"{where}: {folder.relative_to(raw_dir)} holds mask files {extra[:5]} that are "
                    f"not lesions of the 'lesions' parameter {lesions}"
                )
        label = np.zeros(shape, dtype=np.uint8)
        found = 0
        for lesion in lesions:
            path = raw_dir / common.fill(params["masks"], {**m.fields, "lesion": lesion}, where)
            if not path.is_file():
                continue
            raw = _read(path, None)
            if raw.shape != shape:
                raise RecipeError(
                    f"{where}: mask {path.relative_to(raw_dir)} is {list(raw.shape)} but its image "
                    f"{m.rel} is {list(shape)}"
                )
            mapped = common.entry_labels(entry, raw, path, where, raw_values)
            np.maximum(label, mapped, out=label)
            per_lesion[lesion] += 1
            found += 1
        if not found:
            no_lesion.append(sample_id)
        chw = common.resize_image(chw, size)
        label = common.resize_mask(label, size)
        if images is None or masks is None:
            images = np.empty((len(order), *chw.shape), dtype=np.float32)
            masks = np.empty((len(order), *label.shape), dtype=np.uint8)
        elif chw.shape != images.shape[1:]:
            raise RecipeError(
                f"{where}: {m.rel} is {list(chw.shape[1:])}, the first image "
                f"{list(images.shape[2:])}; set the 'size' parameter"
            )
        images[k] = chw
        masks[k] = label
        groups.append(
            common.fill(params["group"], m.fields, where) if params.get("group") else sample_id
        )
    assert images is not None and masks is not None
    info: dict[str, Any] = {
        "images": len(order),
        "source_sizes_hw": sorted([list(s) for s in sizes]),
        "mask_files_per_lesion": {x: per_lesion[x] for x in lesions},
        "without_lesion_files": sorted(no_lesion),
    }
    return PreparedArrays(
        images=images,
        masks=masks,
        ids=[ids[i] for i in order],
        groups=groups,
        info=info,
        raw_values=raw_values,
    )
