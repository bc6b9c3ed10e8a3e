"""Shared pieces of the preparation recipes: label mapping, resizing, tiling, file matching."""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry


class RecipeError(ValueError):
    """A recipe's parameters are invalid, or the raw files do not look as the recipe expects."""


@dataclass
class PreparedArrays:
    """What a recipe returns (before it is written).

    Shape:
        images float32 [N, C, H, W] in [0, 1]; masks uint8 [N, H, W]; ids and groups length N.
    """

    images: np.ndarray
    masks: np.ndarray
    ids: list[str]
    groups: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    """Recipe facts for the sidecar's ``recipe`` dict (e.g. source sizes, official splits)."""
    raw_values: dict[int, str] = field(default_factory=dict)
    """Raw mask values met before the label map, each with the first file it was seen in (for
    the messages of :func:`check_classes_present`; not written to the sidecar)."""

    @classmethod
    def from_samples(
        cls,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        ids: list[str],
        groups: list[str] | None,
        *,
        info: dict[str, Any],
        raw_values: dict[int, str],
        what: str,
        where: str,
    ) -> PreparedArrays:
        """Stack per-sample images ``[C, H, W]`` (to float32) and masks ``[H, W]`` (to uint8).

        Raises:
            RecipeError: when the samples (``what``: "slices", "images", ...) differ in size,
                naming up to five sizes; the recipe's ``size`` parameter makes them equal.
        """
        shapes = {a.shape for a in images}
        if len(shapes) != 1:
            raise RecipeError(
                f"{where}: {what} differ in size {sorted(shapes)[:5]}; set the 'size' parameter"
            )
        return cls(
            images=np.stack(images).astype(np.float32),
            masks=np.stack(masks).astype(np.uint8),
            ids=ids,
            groups=groups,
            info=info,
            raw_values=raw_values,
        )


# ----------------------------------------------------------------------------- parameters


def param_size(params: Mapping[str, Any], key: str, where: str) -> tuple[int, int] | None:
    """Read ``params[key]`` as ``[H, W]`` (or one int for a square); None when absent/null.

    Raises:
        RecipeError: naming the dataset, key and value, for anything but positive ints.
    """
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise RecipeError(
            f"{where}: recipe parameter {key!r} must be [H, W] positive ints, got {value!r}"
        )
    return int(value[0]), int(value[1])


def param_choice(
    params: Mapping[str, Any], key: str, choices: Sequence[Any], default: Any, where: str
) -> Any:
    """Read ``params[key]`` (``default`` when absent), which must be one of ``choices``.

    Raises:
        RecipeError: naming the dataset, key, the allowed values and the value given.
    """
    value = params.get(key, default)
    if value not in choices:
        *head, last = [repr(c) for c in choices]
        allowed = f"{', '.join(head)} or {last}" if head else last
        raise RecipeError(f"{where}: {key} must be {allowed}, got {value!r}")
    return value


def param_list(
    params: Mapping[str, Any],
    key: str,
    where: str,
    *,
    default: list[Any] | None = None,
    of: type | None = None,
) -> list[Any]:
    """Read ``params[key]`` (``default`` when absent) as a non-empty list, every item an
    instance of ``of`` when given (``of=str``: a list of strings).

    Raises:
        RecipeError: naming the dataset, key and value.
    """
    value = params.get(key, default)
    if (
        not isinstance(value, list)
        or not value
        or (of is not None and not all(isinstance(v, of) for v in value))
    ):
        items = "" if of is None else " of strings" if of is str else f" of {of.__name__}"
        raise RecipeError(f"{where}: {key} must be a non-empty list{items}, got {value!r}")
    return value


def check_params(params: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    """Raise RecipeError naming unknown parameter keys and the allowed ones."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise RecipeError(
            f"{where}: unknown recipe parameter(s) {unknown}; allowed: {sorted(allowed)}"
        )


# ----------------------------------------------------------------------------- labels


def map_labels(
    raw: np.ndarray,
    label_map: Mapping[str, Any],
    num_classes: int,
    where: str,
    *,
    seen: dict[int, str] | None = None,
    file: str = "",
) -> np.ndarray:
    """Map raw label values to class indices ``0..num_classes-1`` (uint8).

    ``label_map`` is the registry's parsed form: ``{"values": {"<raw>": index}}`` (every value
    present must be listed), ``{"threshold": T}`` (``raw >= T`` -> 1, else 0), or ``{}`` (raw
    values already are class indices).

    Args:
        seen: when given, each raw value of ``raw`` not yet in it is added with ``file`` (the
            first file it occurs in), for :func:`check_classes_present`.
        file: the mask file ``raw`` was read from.

    Raises:
        RecipeError: naming ``where`` and the unexpected raw values.
    """
    values = np.unique(raw) if seen is not None or "threshold" not in label_map else None
    if seen is not None and values is not None:
        for v in values.tolist():
            seen.setdefault(int(v) if float(v).is_integer() else v, file)
    if "threshold" in label_map:
        return (raw >= label_map["threshold"]).astype(np.uint8)
    assert values is not None
    if "values" in label_map:
        table = {int(k): int(v) for k, v in label_map["values"].items()}
        bad = [int(v) for v in values if int(v) not in table]
        if bad:
            raise RecipeError(
                f"{where}: label values {bad[:10]} are not in the registry's label_map "
                f"(known raw values: {sorted(table)})"
            )
        out = np.zeros(raw.shape, dtype=np.uint8)
        for v in values:
            out[raw == v] = table[int(v)]
        return out
    bad = [v.item() for v in values if not (0 <= v < num_classes) or v != int(v)]
    if bad:
        raise RecipeError(
            f"{where}: label values {bad[:10]} are not class indices 0..{num_classes - 1}; "
            "add a label_map to the registry entry"
        )
    return raw.astype(np.uint8)


def entry_labels(
    entry: DatasetEntry, raw: np.ndarray, file: str | Path, where: str, seen: dict[int, str]
) -> np.ndarray:
    """:func:`map_labels` of one mask through ``entry``'s label map and classes: errors name
    ``where`` and the mask ``file``; the raw values met are recorded in ``seen``."""
    return map_labels(
        raw, entry.label_map, entry.num_classes, f"{where}: {file}", seen=seen, file=str(file)
    )


def mask_array(img: Image.Image) -> np.ndarray:
    """Raw label values of a mask image: colour masks reduce to the channel maximum (so a red or
    white object on black stays non-zero); palette/bilevel images give their luminance."""
    if img.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB")).max(axis=-1)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return np.asarray(img)
    return np.asarray(img.convert("L"))


def image_array(img: Image.Image, mode: str) -> np.ndarray:
    """Image as float32 ``[C, H, W]`` in [0, 1]; ``mode`` is ``"L"`` (1 channel) or ``"RGB"``."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I") and mode == "L":
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if arr.max() > 255 else 255.0
        return (arr / top)[None]
    arr = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)


# ----------------------------------------------------------------------------- geometry


def resize_image(chw: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize float ``[C, H, W]`` to ``size`` ([H, W]) per channel, bilinear (antialiased when
    shrinking, as PIL does); values stay in [0, 1]."""
    if size is None or tuple(chw.shape[1:]) == tuple(size):
        return chw
    h, w = size
    out = [
        np.asarray(
            Image.fromarray(c.astype(np.float32), mode="F").resize(
                (w, h), Image.Resampling.BILINEAR
            )
        )
        for c in chw
    ]
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def resize_mask(mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize a uint8 class-index mask by nearest neighbour (keeps labels valid; class
    proportions are preserved in expectation)."""
    if size is None or tuple(mask.shape) == tuple(size):
        return mask
    h, w = size
    return np.asarray(Image.fromarray(mask, mode="L").resize((w, h), Image.Resampling.NEAREST))


def center_crop(arr: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Crop the last two axes to ``size`` around the centre.

    Raises:
        RecipeError: if the array is smaller than ``size``.
    """
    if size is None:
        return arr
    h, w = arr.shape[-2:]
    ch, cw = size
    if ch > h or cw > w:
        raise RecipeError(f"centre crop {list(size)} is larger than the image {[h, w]}")
    top, left = (h - ch) // 2, (w - cw) // 2
    return arr[..., top : top + ch, left : left + cw]


def tile_grid(shape: tuple[int, int], tile: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping tiles that fit in ``shape``, row-major.

    Raises:
        RecipeError: if not even one tile fits.
    """
    h, w = shape
    th, tw = tile
    if th > h or tw > w:
        raise RecipeError(f"tile {list(tile)} is larger than the image {[h, w]}")
    return [(r, c) for r in range(0, h - th + 1, th) for c in range(0, w - tw + 1, tw)]


# ----------------------------------------------------------------------------- file matching


@dataclass
class Match:
    """One matched source file and the fields its path yielded."""

    path: Path
    rel: str
    fields: dict[str, str]


def match_files(raw_dir: Path, pattern: str, regex: str | None, where: str) -> list[Match]:
    """Glob ``pattern`` under ``raw_dir``; keep paths whose relative POSIX path matches
    ``regex`` (``re.search``); fields = the regex's named groups plus ``stem``, ``name``
    (file name), ``dir`` (relative parent folder, ``.`` at the top).

    Raises:
        RecipeError: for an invalid regex.
    """
    try:
        rx = re.compile(regex) if regex else None
    except re.error as err:
        raise RecipeError(f"{where}: invalid regex {regex!r}: {err}") from None
    out = []
    for hit in sorted(glob.glob(str(raw_dir / pattern), recursive=True)):
        path = Path(hit)
        if not path.is_file():
            continue
        rel = path.relative_to(raw_dir).as_posix()
        fields = {"stem": path.stem, "name": path.name, "dir": Path(rel).parent.as_posix()}
        if rx is not None:
            m = rx.search(rel)
            if m is None:
                continue
            fields.update({k: v for k, v in m.groupdict().items() if v is not None})
        out.append(Match(path, rel, fields))
    return out


def fill(template: str, fields: Mapping[str, str], where: str, *, escape: bool = False) -> str:
    """``template.format(**fields)``; with ``escape`` the values are glob-escaped.

    Raises:
        RecipeError: naming the template and the available fields, for an unknown field.
    """
    values = {k: glob.escape(v) if escape else v for k, v in fields.items()}
    try:
        return template.format(**values)
    except (KeyError, IndexError) as err:
        raise RecipeError(
            f"{where}: template {template!r} uses field {err} which the file path did not give; "
            f"available: {sorted(fields)}"
        ) from None


# ----------------------------------------------------------------------------- driver


def check_classes_present(entry: DatasetEntry, arrays: PreparedArrays, where: str) -> None:
    """Every declared class must occur somewhere in the prepared masks.

    Checked over the whole prepared dataset (one image may legitimately lack a class; the whole
    dataset may not): a class that never occurs means the registry's ``label_map`` does not fit
    the masks, e.g. masks stored as 0/1 with ``{threshold: 128}`` (meant for 0/255), which would
    otherwise prepare a dataset that is 100 % background.

    Raises:
        RecipeError: naming the dataset, the missing classes, the label map, the raw mask values
            met and the first file each was seen in.
    """
    counts = np.bincount(arrays.masks.reshape(-1), minlength=entry.num_classes)
    missing = [k for k in range(entry.num_classes) if counts[k] == 0]
    if not missing:
        return
    names = ", ".join(f"{k} ({entry.classes[k]!r})" for k in missing)
    lm = dict(entry.label_map)
    mapping = (
        f"threshold {lm['threshold']} (raw >= {lm['threshold']} -> 1)"
        if "threshold" in lm
        else f"values {lm['values']}"
        if "values" in lm
        else "none (raw values are used as class indices)"
    )
    raw = sorted(arrays.raw_values.items(), key=lambda kv: float(kv[0]))
    shown = "; ".join(f"{v} (first in {f})" for v, f in raw[:10])
    more = f" and {len(raw) - 10} more" if len(raw) > 10 else ""
    raise RecipeError(
        f"{where}: class {names} never occurs in the {len(arrays.ids)} prepared masks "
        f"(pixels per class: {counts.tolist()}); the registry's label_map ({mapping}) does not "
        "fit the masks"
        + (f": raw mask values met: {shown}{more}" if raw else "")
        + ". Fix the entry's label_map (e.g. masks stored as 0/1 need {threshold: 1}, not the "
        "{threshold: 128} meant for 0/255) or its classes."
    )


def prepare_dataset(
    entry: DatasetEntry,
    raw_dir: str | Path,
    out_npz: str | Path,
    *,
    source: Mapping[str, Any] | None = None,
) -> PreparedArrays:
    """Run ``entry``'s recipe on ``raw_dir`` and write ``out_npz`` + its ``.json`` sidecar.

    Args:
        entry: the registry entry (classes, label map, recipe name and parameters).
        raw_dir: the verified raw folder (``data/raw/{raw_id}``).
        out_npz: output path; the sidecar goes next to it with suffix ``.json``.
        source: provenance for the sidecar's ``source`` dict (archive and manifest sha256s).

    Returns:
        The arrays written.

    Raises:
        RecipeError: the entry has no recipe, the raw files do not fit the recipe, or a
            declared class never occurs in the prepared masks (:func:`check_classes_present`).
        segbench.data.io.DatasetFormatError: the result violates the prepared format.
    """
    from segbench import __version__
    from segbench.data.io import save_prepared
    from segbench.data.recipes.registry import RECIPES

    if entry.recipe is None:
        raise RecipeError(
            f"dataset {entry.id!r} has no preparation recipe in the registry (a registration-only "
            "entry: the workflow fetches and verifies it, but nothing prepares it yet)"
        )
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise RecipeError(f"dataset {entry.id!r}: raw folder {raw_dir} does not exist")
    fn = RECIPES.get(entry.recipe_name or "")
    arrays = fn(entry, raw_dir, entry.recipe_params)
    check_classes_present(entry, arrays, f"dataset {entry.id!r} (recipe {entry.recipe_name})")
    order = np.argsort(np.asarray(arrays.ids, dtype=str), kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        arrays = PreparedArrays(
            images=arrays.images[order],
            masks=arrays.masks[order],
            ids=[arrays.ids[i] for i in order],
            groups=None if arrays.groups is None else [arrays.groups[i] for i in order],
            info=arrays.info,
            raw_values=arrays.raw_values,
        )
    meta = {
        "name": entry.id,
        "title": entry.title,
        "num_classes": entry.num_classes,
        "class_names": list(entry.classes),
        "in_channels": int(arrays.images.shape[1]),
        "licence": entry.licence,
        "citation": entry.citation,
        "source": dict(source or {}),
        "recipe": {
            "name": entry.recipe_name,
            "params": entry.recipe_params,
            "label_map": dict(entry.label_map),
            "segbench_version": __version__,
            **arrays.info,
        },
    }
    save_prepared(out_npz, arrays.images, arrays.masks, arrays.ids, meta, groups=arrays.groups)
    return arrays
