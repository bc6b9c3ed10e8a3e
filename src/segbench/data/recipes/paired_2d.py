"""Recipe ``paired_2d``: 2D images paired with 2D label images.

Parameters (``recipe.params`` in config/datasets.yaml):

- ``sets`` (required): list of ``{images, regex, mask, id, group}``:
  ``images`` a glob under the raw folder (``**`` allowed); ``regex`` (optional) filters the
  matches by their relative path and names fields with ``(?P<field>...)``; ``mask`` a template
  for the label file built from the fields (``{stem}``, ``{name}``, ``{dir}`` and the regex
  groups); if it contains ``*`` all matching files are merged by taking the maximum label (BUSI
  has several masks for some images); ``id`` a template for the sample id (default ``{stem}``);
  ``group`` a template for the group (default: the id, or the image id when tiling).
- ``image_mode``: ``"RGB"`` (default, 3 channels) or ``"L"`` (1 channel).
- ``size``: ``[H, W]`` to resize to (bilinear for images, nearest for masks), or null.
- ``crop``: ``[H, W]`` centre crop after resizing, or null.
- ``tile``: ``[H, W]``: cut each image into non-overlapping tiles (row-major, border remainder
  dropped); tile ids are ``<id>_r<row>c<col>`` and the group is the image id.
- ``train_crops``: ``{per_image, size, seed}``: besides the samples above, cut ``per_image``
  random ``size`` crops (top-left corner uniform over the valid positions, drawn with
  ``numpy.random.default_rng([seed, crc32(image id)])``, so an image's crops do not depend on
  the other images) from every image after resize/centre crop. Crop ids are
  ``<id>_crop<j>`` (``j`` zero-padded), their group is the image's group, and they are listed in
  the sidecar's ``recipe.train_only`` (with their positions in ``recipe.train_crops``): the split
  step (:mod:`segbench.splits`) may use them for training only, and validates and tests on the
  other samples. Paper 000 (Yokoi & Hotta, l.127): "48 training patches (multiple random crops
  per image), 16 validation patches (each image divided into 16 non-overlapping patches)".
- ``split``: split options of the dataset (``test_groups``, ``val_groups``, ``train_samples``,
  :func:`segbench.splits.check_split_options`), recorded in the sidecar's ``recipe.split`` and
  applied by the split step.
- ``count``: the number of image/mask pairs expected (a layout check), or null.
"""

from __future__ import annotations

import glob
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from segbench.data.recipes import _common as common
from segbench.data.recipes._common import PreparedArrays, RecipeError
from segbench.data.recipes.registry import RECIPES
from segbench.splits import SplitError, check_split_options

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

PARAMS = ("sets", "image_mode", "size", "crop", "tile", "train_crops", "split", "count")
CROP_KEYS = ("per_image", "size", "seed")
SET_KEYS = ("images", "regex", "mask", "id", "group")


def _read(path: Path, convert: Callable[[Image.Image], np.ndarray], what: str) -> np.ndarray:
    """Open and decode one image file; a corrupt or truncated file raises RecipeError naming it."""
    try:
        with Image.open(path) as img:
            return convert(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # PIL: UnidentifiedImageError (an OSError) for garbage, OSError "image file is
        # truncated" on decoding a cut file (that one does not say which file).
        raise RecipeError(f"cannot read {what} file {path}: {type(err).__name__}: {err}") from None


def _load_mask(paths: list[Path]) -> np.ndarray:
    arrays = [_read(p, common.mask_array, "mask") for p in paths]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise RecipeError(f"masks {[str(p) for p in paths]} differ in size: {sorted(shapes)}")
    return np.maximum.reduce(arrays) if len(arrays) > 1 else arrays[0]


def _crop_spec(params: dict[str, Any], where: str) -> tuple[int, tuple[int, int], int] | None:
    """``train_crops`` as ``(per_image, (h, w), seed)``, or None when absent."""
    spec = params.get("train_crops")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise RecipeError(f"{where}: train_crops must be {{per_image, size, seed}}, got {spec!r}")
    common.check_params(spec, CROP_KEYS, f"{where}, train_crops")
    per, seed = spec.get("per_image"), spec.get("seed", 0)
    for key, value, low in (("per_image", per, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise RecipeError(f"{where}: train_crops.{key} must be an int >= {low}, got {value!r}")
    size = common.param_size(spec, "size", f"{where}, train_crops")
    if size is None:
        raise RecipeError(f"{where}: train_crops needs 'size' ([H, W])")
    return int(per), size, int(seed)


def crop_positions(
    shape: tuple[int, int], size: tuple[int, int], n: int, seed: int, image_id: str
) -> list[tuple[int, int]]:
    """Top-left corners of ``n`` random ``size`` crops of a ``shape`` image, uniform over the
    valid positions and seeded by ``(seed, crc32(image_id))`` (independent of other images).

    Raises:
        RecipeError: if the crop is larger than the image.
    """
    h, w = shape
    ch, cw = size
    if ch > h or cw > w:
        raise RecipeError(f"train crop {list(size)} is larger than the image {[h, w]}")
    rng = np.random.default_rng([seed, zlib.crc32(image_id.encode())])
    tops = rng.integers(0, h - ch + 1, size=n)
    lefts = rng.integers(0, w - cw + 1, size=n)
    return [(int(t), int(c)) for t, c in zip(tops, lefts, strict=True)]


@RECIPES.register("paired_2d")
def paired_2d(entry: DatasetEntry, raw_dir: Path, params: dict[str, Any]) -> PreparedArrays:
    """Prepare a dataset of 2D image/label-image pairs (see the module docstring).

    Returns:
        :class:`PreparedArrays` with images ``[N, C, H, W]`` and masks ``[N, H, W]``; ``info``
        records each sample's source files and original size range.

    Raises:
        RecipeError: bad parameters, no or missing files, size mismatch between an image and
            its mask, samples of different sizes without ``size``, duplicate ids, unexpected
            label values, or a ``count`` that does not match.
    """
    where = f"dataset {entry.id!r} (recipe paired_2d)"
    common.check_params(params, PARAMS, where)
    sets = common.param_list(params, "sets", where)
    mode = common.param_choice(params, "image_mode", ("RGB", "L"), "RGB", where)
    size = common.param_size(params, "size", where)
    crop = common.param_size(params, "crop", where)
    tile = common.param_size(params, "tile", where)
    crops = _crop_spec(params, where)
    try:
        split = check_split_options(params.get("split"), where)
    except SplitError as err:
        raise RecipeError(str(err)) from None

    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    ids: list[str] = []
    groups: list[str] = []
    sources: dict[str, list[str]] = {}
    orig_sizes: set[tuple[int, int]] = set()
    train_only: list[str] = []
    positions: dict[str, list[int]] = {}
    raw_values: dict[int, str] = {}
    n_pairs = n_tiles = 0
    for spec in sets:
        if not isinstance(spec, dict) or "images" not in spec or "mask" not in spec:
            raise RecipeError(f"{where}: each set needs 'images' and 'mask', got {spec!r}")
        common.check_params(spec, SET_KEYS, f"{where}, set {spec.get('images')!r}")
        matches = common.match_files(raw_dir, spec["images"], spec.get("regex"), where)
        if not matches:
            raise RecipeError(
                f"{where}: no image matches {spec['images']!r}"
                + (f" with regex {spec['regex']!r}" if spec.get("regex") else "")
                + f" under {raw_dir}"
            )
        for m in matches:
            mask_tpl = spec["mask"]
            if "*" in mask_tpl:
                mask_paths = sorted(
                    Path(p)
                    for p in glob.glob(
                        str(raw_dir / common.fill(mask_tpl, m.fields, where, escape=True))
                    )
                )
            else:
                mask_paths = [raw_dir / common.fill(mask_tpl, m.fields, where)]
            if not mask_paths or not all(p.is_file() for p in mask_paths):
                raise RecipeError(
                    f"{where}: image {m.rel} has no mask at {common.fill(mask_tpl, m.fields, where)!r}"
                )
            sample_id = common.fill(spec.get("id") or "{stem}", m.fields, where)
            group = common.fill(spec["group"], m.fields, where) if spec.get("group") else None
            try:
                chw = _read(m.path, lambda img: common.image_array(img, mode), "image")
                raw_mask = _load_mask(mask_paths)
            except RecipeError as err:
                raise RecipeError(f"{where}: {err}") from None
            if raw_mask.shape != chw.shape[1:]:
                raise RecipeError(
                    f"{where}: image {m.rel} is {list(chw.shape[1:])} but its mask "
                    f"{mask_paths[0].relative_to(raw_dir)} is {list(raw_mask.shape)}"
                )
            orig_sizes.add((int(chw.shape[1]), int(chw.shape[2])))
            label = common.entry_labels(entry, raw_mask, mask_paths[0], where, raw_values)
            chw = common.center_crop(common.resize_image(chw, size), crop)
            label = common.center_crop(common.resize_mask(label, size), crop)
            n_pairs += 1
            src = [m.rel] + [p.relative_to(raw_dir).as_posix() for p in mask_paths]
            if crops is not None:
                per, csize, cseed = crops
                width = len(str(per - 1))
                for j, (r, c) in enumerate(
                    crop_positions(label.shape, csize, per, cseed, sample_id)
                ):
                    cid = f"{sample_id}_crop{j:0{width}d}"
                    images.append(chw[:, r : r + csize[0], c : c + csize[1]])
                    masks.append(label[r : r + csize[0], c : c + csize[1]])
                    ids.append(cid)
                    groups.append(group or sample_id)
                    train_only.append(cid)
                    positions[cid] = [r, c]
            if tile is None:
                images.append(chw)
                masks.append(label)
                ids.append(sample_id)
                groups.append(group or sample_id)
                sources[sample_id] = src
                continue
            for r, c in common.tile_grid(label.shape, tile):
                tid = f"{sample_id}_r{r // tile[0]}c{c // tile[1]}"
                images.append(chw[:, r : r + tile[0], c : c + tile[1]])
                masks.append(label[r : r + tile[0], c : c + tile[1]])
                ids.append(tid)
                groups.append(group or sample_id)
                n_tiles += 1
            sources[sample_id] = src

    count = params.get("count")
    if count is not None and count != n_pairs:
        raise RecipeError(
            f"{where}: expected {count} image/mask pairs, found {n_pairs} under {raw_dir}"
        )
    dupes = sorted(k for k, v in Counter(ids).items() if v > 1)
    if dupes:
        raise RecipeError(
            f"{where}: sample ids are not unique: {dupes[:5]}; adjust the 'id' template"
        )
    info: dict[str, Any] = {
        "pairs": n_pairs,
        "source_sizes_hw": sorted([list(s) for s in orig_sizes]),
        "source_files": dict(sorted(sources.items())),
    }
    if tile is not None:
        info["tiles_per_image"] = n_tiles // max(n_pairs, 1)
    if crops is not None:
        info["train_crops"] = {
            "per_image": crops[0],
            "size": list(crops[1]),
            "seed": crops[2],
            "positions": dict(sorted(positions.items())),
        }
        info["train_only"] = sorted(train_only)
    if split:
        info["split"] = split
    return PreparedArrays.from_samples(
        images, masks, ids, groups, info=info, raw_values=raw_values, what="samples", where=where
    )
