"""Recipe ``nifti_slices``: 2D slices of NIfTI volumes (CT), with their label volumes.

Parameters (``recipe.params`` in config/datasets.yaml):

- ``volumes`` (required): list of ``{image, regex, label, id}``: ``image`` a glob under the raw
  folder; ``regex`` (optional) filter/field extraction as in ``paired_2d``; ``label`` a template
  for the label volume (fields ``{stem}``, ``{name}``, ``{dir}``, regex groups; ``{stem}`` drops
  only ``.gz``); ``id`` a template for the volume id (default ``{stem}`` without ``.nii``).
- ``axis``: the slice axis of the stored array (default 2, NIfTI's z).
- ``window``: ``[lo, hi]`` intensity window (e.g. Hounsfield units): values are clipped to it and
  scaled to [0, 1]; null (default) scales each volume from its own min to max.
- ``size``: ``[H, W]`` to resize each slice to (bilinear image, nearest labels), or null.
- ``channels``: 1 (default) or 3 (the slice repeated, as paper 004 does for KiTS19/NIH).
- ``slices``: which slices to keep: ``"all"`` (default), ``"foreground"`` (slices whose labels
  after ``label_map`` are not all 0) or ``{contains: [raw label values]}`` (slices whose raw
  label slice holds at least one of these values, before ``label_map``; e.g. KiTS19 raw 1 =
  kidney, 2 = tumour: ``{contains: [1, 2]}`` = every kidney slice, also for the tumour task).
  Paper 004 (Xu et al.) does not state its slice selection; Table 1's %FG (l.132-136) is the
  check, see docs/datasets.md.
- ``keep``: older spelling of ``slices: all | foreground`` (give one of the two).
- ``group_by``: ``"volume"`` (default: slices of one volume share a group) or ``"slice"`` (each
  slice its own group, for collections of unrelated slices such as the COVID-19 set).
- ``transpose``: default true: slices are transposed so rows run along NIfTI's y axis.
- ``count``: number of slices expected after the selection, or null.

Slice ids are ``<volume id>_s<index:03d>`` with the index in the original volume.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segbench.data.recipes import _common as common
from segbench.data.recipes._common import PreparedArrays, RecipeError
from segbench.data.recipes.registry import RECIPES

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

PARAMS = (
    "volumes",
    "axis",
    "window",
    "size",
    "channels",
    "slices",
    "keep",
    "group_by",
    "transpose",
    "count",
)
VOLUME_KEYS = ("image", "regex", "label", "id")


def _load(path: Path, where: str) -> np.ndarray:
    import nibabel as nib

    try:
        return np.asanyarray(nib.load(str(path)).dataobj)
    except Exception as err:  # nibabel raises several unrelated types for bad files
        raise RecipeError(
            f"{where}: cannot read NIfTI volume {path} ({type(err).__name__}: {err})"
        ) from None


def _slice_rule(params: dict[str, Any], where: str) -> tuple[str, list[int] | None]:
    """``(keep, contains)`` from ``slices`` / ``keep``: keep is ``"all"`` or ``"foreground"``;
    contains the raw label values of ``{contains: [...]}`` (None otherwise)."""
    if "slices" in params and "keep" in params:
        raise RecipeError(f"{where}: give 'slices' or its older spelling 'keep', not both")
    rule = params.get("slices", params.get("keep", "all"))
    if isinstance(rule, dict):
        common.check_params(rule, ("contains",), f"{where}, slices")
        values = rule.get("contains")
        if isinstance(values, int) and not isinstance(values, bool):
            values = [values]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        ):
            raise RecipeError(
                f"{where}: slices.contains must be a non-empty list of raw label values, got {values!r}"
            )
        return "contains", [int(v) for v in values]
    if rule not in ("all", "foreground"):
        raise RecipeError(
            f"{where}: slices must be 'all', 'foreground' or {{contains: [raw label values]}}, got {rule!r}"
        )
    return str(rule), None


@RECIPES.register("nifti_slices")
def nifti_slices(entry: DatasetEntry, raw_dir: Path, params: dict[str, Any]) -> PreparedArrays:
    """Prepare 2D slices of NIfTI volumes (see the module docstring).

    Raises:
        RecipeError: bad parameters, missing volumes, image/label shape mismatch, unexpected
            label values, or a ``count`` that does not match.
    """
    where = f"dataset {entry.id!r} (recipe nifti_slices)"
    common.check_params(params, PARAMS, where)
    volumes = common.param_list(params, "volumes", where)
    axis = common.param_choice(params, "axis", (0, 1, 2), 2, where)
    window = params.get("window")
    if window is not None and (
        not isinstance(window, list) or len(window) != 2 or not window[0] < window[1]
    ):
        raise RecipeError(f"{where}: window must be [lo, hi] with lo < hi, got {window!r}")
    size = common.param_size(params, "size", where)
    channels = common.param_choice(params, "channels", (1, 3), 1, where)
    keep, contains = _slice_rule(params, where)
    group_by = common.param_choice(params, "group_by", ("volume", "slice"), "volume", where)
    transpose = bool(params.get("transpose", True))

    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    ids: list[str] = []
    groups: list[str] = []
    info_vol: dict[str, Any] = {}
    raw_values: dict[int, str] = {}
    for spec in volumes:
        if not isinstance(spec, dict) or "image" not in spec or "label" not in spec:
            raise RecipeError(f"{where}: each volume spec needs 'image' and 'label', got {spec!r}")
        common.check_params(spec, VOLUME_KEYS, where)
        matches = common.match_files(raw_dir, spec["image"], spec.get("regex"), where)
        if not matches:
            raise RecipeError(f"{where}: no volume matches {spec['image']!r} under {raw_dir}")
        for m in matches:
            fields = dict(m.fields)
            base = m.path.name.removesuffix(".gz").removesuffix(".nii")
            fields["stem"] = base
            label_path = raw_dir / common.fill(spec["label"], fields, where)
            if not label_path.is_file():
                raise RecipeError(f"{where}: volume {m.rel} has no label volume at {label_path}")
            vol_id = common.fill(spec.get("id") or "{stem}", fields, where)
            img = _load(m.path, where).astype(np.float32)
            lab = _load(label_path, where)
            if img.shape != lab.shape or img.ndim != 3:
                raise RecipeError(
                    f"{where}: image {m.rel} {list(img.shape)} and label {label_path.name} "
                    f"{list(lab.shape)} must be 3D arrays of the same shape"
                )
            if np.issubdtype(lab.dtype, np.floating):
                lab = np.rint(lab)
            raw_lab = lab.astype(np.int64)
            lab = common.entry_labels(entry, raw_lab, label_path, where, raw_values)
            lo, hi = (
                (float(window[0]), float(window[1]))
                if window
                else (float(img.min()), float(img.max()))
            )
            img = (np.clip(img, lo, hi) - lo) / max(hi - lo, 1e-6)
            img = np.moveaxis(img, axis, 0)
            lab = np.moveaxis(lab, axis, 0)
            if contains is not None:
                raw_lab = np.moveaxis(raw_lab, axis, 0)
                selected = np.isin(raw_lab, contains).reshape(raw_lab.shape[0], -1).any(axis=1)
            elif keep == "foreground":
                selected = lab.reshape(lab.shape[0], -1).any(axis=1)
            else:
                selected = np.ones(lab.shape[0], dtype=bool)
            if transpose:
                img = np.swapaxes(img, 1, 2)
                lab = np.swapaxes(lab, 1, 2)
            kept = 0
            for k in range(img.shape[0]):
                if not selected[k]:
                    continue
                chw = common.resize_image(img[k][None].astype(np.float32), size)
                if channels == 3:
                    chw = np.repeat(chw, 3, axis=0)
                sid = f"{vol_id}_s{k:03d}"
                images.append(chw)
                masks.append(common.resize_mask(np.ascontiguousarray(lab[k]), size))
                ids.append(sid)
                groups.append(sid if group_by == "slice" else vol_id)
                kept += 1
            info_vol[vol_id] = {
                "image": m.rel,
                "label": label_path.relative_to(raw_dir).as_posix(),
                "shape": list(img.shape),
                "slices_kept": kept,
                "intensity_window": [lo, hi],
            }
    count = params.get("count")
    if count is not None and count != len(ids):
        raise RecipeError(f"{where}: expected {count} slices, got {len(ids)}")
    if not ids:
        raise RecipeError(f"{where}: no slices kept (slices={params.get('slices', keep)!r})")
    info = {"volumes": info_vol}
    return PreparedArrays.from_samples(
        images, masks, ids, groups, info=info, raw_values=raw_values, what="slices", where=where
    )
