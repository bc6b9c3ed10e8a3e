"""Recipe ``inbreast_dicom``: INbreast mammograms (DICOM) with OsiriX plist XML mass outlines.

The layout as the INbreast owners distribute it on request (Moreira et al. 2012):

- ``AllDICOMs/<file id>_<patient hash>_MG_<L|R>_<CC|ML>_ANON.dcm``: 410 full-field digital
  mammograms, one per file, uint16 pixels;
- ``AllXML/<file id>.xml``: an Apple property list (OsiriX export) per annotated image,
  ``Images[] > ROIs[]`` with ``Name`` (``"Mass"``, ``"Calcification"``, ``"Cluster"``, ...) and
  ``Point_px``, a list of ``"(x, y)"`` strings in pixel units of the DICOM (x = column, y = row);
- ``INbreast.xls`` / ``.csv`` (case metadata: laterality, view, ACR, BI-RADS): not read here.

Paper 002, App. D (l.317): "The INbreast dataset (Moreira et al., 2012) contains 107 images with
Masses. We separate 22 (~20% of total) images for the test set. Validation metrics for model
selection are calculated on 17 (= 20% of remaining) of the remaining images. We resize the images
to a resolution of 512x512 for model training." Our reading: the samples are the images with at
least one ROI named ``Mass`` (images without an XML, or whose XML has only other findings, are
dropped; ``count: 107`` checks the result); the mask is the union of the image's mass polygons
(class 1, everything else class 0); each image and mask is resized to 512x512 without keeping the
aspect ratio (the paper says resize, not crop or pad). The 22 / 17 split is not a recipe option:
the study (config/studies/paper002.yaml: fold 0 of 5 folds, val_fraction 0.2) gives 22 test and
17 validation images of 107. The paper does not group by patient, flip right breasts or say how
intensities are scaled; the defaults below follow its text and are options.

Parameters (``recipe.params`` in config/datasets.yaml):

- ``dicoms``: glob of the DICOM files under the raw folder (default ``AllDICOMs/*.dcm``); file
  names must match :data:`NAME_RE`.
- ``xml``: template of an image's XML from the name fields ``{file_id}``, ``{patient}``,
  ``{side}``, ``{view}`` (default ``AllXML/{file_id}.xml``).
- ``roi_names``: ROI names that count as foreground (default ``["Mass"]``; compared after
  stripping spaces, case-insensitively).
- ``size``: ``[H, W]`` to resize to (bilinear for images, nearest for masks), or null.
- ``flip_right``: mirror right-breast (``R``) images and masks left-right so every breast lies on
  the same side (default false: paper 002 does not say it flips).
- ``group_by``: ``image`` (default; the paper counts images) or ``patient`` (the hash in the file
  name, so the views of one patient are never split across train / val / test).
- ``count``: the number of images with a foreground ROI expected (layout check), or null.

Intensities: ``pixel / (2**BitsStored - 1)`` clipped to [0, 1] (fixed, not per image), inverted
for ``MONOCHROME1``. Polygons are rasterised at the DICOM's resolution by the even-odd rule on
pixel centres, pixel ``(r, c)`` having its centre at ``(x, y) = (c, r)`` (:func:`rasterize_polygon`).
"""

from __future__ import annotations

import math
import plistlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.parsers.expat import ExpatError

import numpy as np

from segbench.data.recipes import _common as common
from segbench.data.recipes._common import PreparedArrays, RecipeError
from segbench.data.recipes.registry import RECIPES

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

PARAMS = ("dicoms", "xml", "roi_names", "size", "flip_right", "group_by", "count")
NAME_RE = (
    r"(?P<file_id>\d+)_(?P<patient>[0-9A-Za-z]+)_MG_(?P<side>[LR])_(?P<view>[A-Z]+)_ANON\.dcm$"
)
"""INbreast DICOM file names, e.g. ``20586908_6c613a14b80a8591_MG_R_CC_ANON.dcm``."""
_POINT = re.compile(r"^\s*\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*(?:,\s*[-+0-9.eE]+\s*)?\)\s*$")


def rasterize_polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies inside a polygon (even-odd rule).

    Pixel ``(r, c)`` has its centre at ``(x, y) = (c, r)``. A row ``r`` meets edge
    ``(x1, y1)-(x2, y2)`` when ``min(y1, y2) <= r < max(y1, y2)`` (half-open, so a vertex on a row
    is counted once); between the sorted crossings ``a_0 < b_0 < a_1 < ...`` the columns
    ``a_k <= c < b_k`` are inside. So a polygon with integer corners ``(x0, y0)``, ``(x1, y1)``
    covers rows ``y0 .. y1 - 1`` and columns ``x0 .. x1 - 1`` (a top-left common.fill rule: tiling
    polygons never share a pixel). Points outside the image are allowed (clipped).

    Args:
        points: ``[K, 2]`` float ``(x, y)`` vertices, K >= 3 (the closing edge is implied).
        shape: ``(H, W)`` of the mask.

    Returns:
        bool ``[H, W]``.
    """
    h, w = shape
    out = np.zeros((h, w), dtype=bool)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 3 or pts.shape[1] != 2:
        return out
    x1, y1 = pts[:, 0], pts[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    lo, hi = np.minimum(y1, y2), np.maximum(y1, y2)
    r0 = max(0, math.ceil(float(lo.min())))
    r1 = min(h - 1, math.ceil(float(hi.max())) - 1)
    for r in range(r0, r1 + 1):
        hit = (lo <= r) & (r < hi)
        if not hit.any():
            continue
        xs = np.sort(x1[hit] + (r - y1[hit]) * (x2[hit] - x1[hit]) / (y2[hit] - y1[hit]))
        for a, b in zip(xs[0::2], xs[1::2], strict=False):
            c0, c1 = max(0, math.ceil(a)), min(w, math.ceil(b))
            if c1 > c0:
                out[r, c0:c1] = True
    return out


def parse_point(text: str, where: str) -> tuple[float, float]:
    """``"(x, y)"`` (OsiriX ``Point_px``; a third coordinate, if any, is ignored) -> ``(x, y)``."""
    m = _POINT.match(str(text))
    if m is None:
        raise RecipeError(f"{where}: cannot read point {text!r} (expected '(x, y)')")
    return float(m.group(1)), float(m.group(2))


def read_rois(path: Path, names: set[str]) -> tuple[list[np.ndarray], list[str]]:
    """The polygons of the ROIs of an OsiriX plist XML whose name is in ``names``.

    Args:
        path: the XML file.
        names: ROI names to keep, lower-case and stripped.

    Returns:
        ``(polygons, all_names)``: each kept polygon ``[K, 2]`` ``(x, y)``, and the names of all
        ROIs met (for the sidecar).

    Raises:
        RecipeError: naming the file, when it is not a plist with ``Images > ROIs``.
    """
    try:
        with path.open("rb") as fh:
            plist = plistlib.load(fh)
    except (OSError, plistlib.InvalidFileException, ValueError, ExpatError) as err:
        raise RecipeError(f"cannot read INbreast XML {path}: {type(err).__name__}: {err}") from None
    images = plist.get("Images") if isinstance(plist, dict) else None
    if not isinstance(images, list):
        raise RecipeError(f"INbreast XML {path} has no 'Images' list (keys: {sorted(plist)[:10]})")
    polygons: list[np.ndarray] = []
    met: list[str] = []
    for image in images:
        for roi in (image or {}).get("ROIs") or []:
            name = str(roi.get("Name", ""))
            met.append(name)
            if name.strip().lower() not in names:
                continue
            pts = [parse_point(p, str(path)) for p in roi.get("Point_px") or []]
            if len(pts) >= 3:
                polygons.append(np.asarray(pts, dtype=np.float64))
    return polygons, met


def read_dicom(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Pixels of a DICOM as float32 ``[H, W]`` in [0, 1] (see the module docstring), and facts.

    Raises:
        RecipeError: naming the file, when pydicom cannot read or decode it.
    """
    import pydicom  # lazy: only this recipe needs it

    try:
        ds = pydicom.dcmread(path)
        raw = ds.pixel_array
    except Exception as err:  # pydicom raises many types (InvalidDicomError, decoder errors)
        raise RecipeError(f"cannot read DICOM {path}: {type(err).__name__}: {err}") from None
    if raw.ndim != 2:
        raise RecipeError(f"DICOM {path} has pixel array shape {list(raw.shape)}, expected [H, W]")
    bits = int(getattr(ds, "BitsStored", 16) or 16)
    img = np.clip(raw.astype(np.float32) / float(2**bits - 1), 0.0, 1.0)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        img = 1.0 - img
    return img, {"bits_stored": bits, "photometric": photometric}


@RECIPES.register("inbreast_dicom")
def inbreast_dicom(entry: DatasetEntry, raw_dir: Path, params: dict[str, Any]) -> PreparedArrays:
    """Prepare INbreast's images with mass outlines (see the module docstring).

    Returns:
        :class:`PreparedArrays`: images ``[N, 1, H, W]``, masks ``[N, H, W]`` (0 background, 1
        foreground ROI), ids = the INbreast file ids; ``info`` lists each sample's files,
        laterality, view, patient, ROI count and source size, and the images dropped.

    Raises:
        RecipeError: bad parameters, no DICOMs, a file name not in the INbreast form, an
            unreadable DICOM or XML, images of different sizes without ``size``, or a ``count``
            that does not match.
    """
    where = f"dataset {entry.id!r} (recipe inbreast_dicom)"
    common.check_params(params, PARAMS, where)
    size = common.param_size(params, "size", where)
    names = common.param_list(params, "roi_names", where, default=["Mass"], of=str)
    wanted = {n.strip().lower() for n in names}
    flip = params.get("flip_right", False)
    if not isinstance(flip, bool):
        raise RecipeError(f"{where}: flip_right must be true or false, got {flip!r}")
    group_by = common.param_choice(params, "group_by", ("image", "patient"), "image", where)
    xml_tpl = str(params.get("xml", "AllXML/{file_id}.xml"))
    pattern = str(params.get("dicoms", "AllDICOMs/*.dcm"))

    files = common.match_files(raw_dir, pattern, None, where)
    if not files:
        raise RecipeError(f"{where}: no DICOM matches {pattern!r} under {raw_dir}")
    name_rx = re.compile(NAME_RE)
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    ids: list[str] = []
    groups: list[str] = []
    samples: dict[str, dict[str, Any]] = {}
    dropped: dict[str, str] = {}
    roi_names: dict[str, int] = {}
    sizes: set[tuple[int, int]] = set()
    raw_values: dict[int, str] = {}
    for m in files:
        hit = name_rx.search(m.path.name)
        if hit is None:
            raise RecipeError(
                f"{where}: DICOM name {m.rel!r} is not in the INbreast form "
                "<file id>_<patient>_MG_<L|R>_<view>_ANON.dcm"
            )
        fields = {**m.fields, **hit.groupdict()}
        fid = fields["file_id"]
        xml_path = raw_dir / common.fill(xml_tpl, fields, where)
        if not xml_path.is_file():
            dropped[fid] = "no XML"
            continue
        polygons, met = read_rois(xml_path, wanted)
        for n in met:
            roi_names[n] = roi_names.get(n, 0) + 1
        if not polygons:
            dropped[fid] = "no ROI named " + " / ".join(sorted(names))
            continue
        img, facts = read_dicom(m.path)
        shape = (int(img.shape[0]), int(img.shape[1]))
        sizes.add(shape)
        fg = np.zeros(shape, dtype=bool)
        for poly in polygons:
            fg |= rasterize_polygon(poly, shape)
        label = common.entry_labels(entry, fg.astype(np.uint8), xml_path, where, raw_values)
        if flip and fields["side"] == "R":
            img, label = img[:, ::-1], label[:, ::-1]
        chw = common.resize_image(np.ascontiguousarray(img)[None], size)
        label = common.resize_mask(np.ascontiguousarray(label), size)
        images.append(chw)
        masks.append(label)
        ids.append(fid)
        groups.append(fid if group_by == "image" else fields["patient"])
        samples[fid] = {
            "files": [m.rel, xml_path.relative_to(raw_dir).as_posix()],
            "patient": fields["patient"],
            "side": fields["side"],
            "view": fields["view"],
            "rois": len(polygons),
            "flipped": bool(flip and fields["side"] == "R"),
            "source_hw": list(shape),
            **facts,
        }
    count = params.get("count")
    if count is not None and count != len(ids):
        raise RecipeError(
            f"{where}: expected {count} images with a {' / '.join(names)} ROI, found {len(ids)} "
            f"of {len(files)} DICOMs under {raw_dir} ({len(dropped)} dropped)"
        )
    if not ids:
        raise RecipeError(f"{where}: none of the {len(files)} DICOMs has a {names} ROI")
    if len(set(ids)) != len(ids):
        raise RecipeError(f"{where}: INbreast file ids are not unique")
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    info: dict[str, Any] = {
        "dicoms": len(files),
        "kept": len(ids),
        "dropped": dict(sorted(dropped.items())),
        "roi_names_met": dict(sorted(roi_names.items())),
        "source_sizes_hw": sorted([list(s) for s in sizes]),
        "samples": dict(sorted(samples.items())),
        "group_by": group_by,
    }
    return PreparedArrays.from_samples(
        [images[i] for i in order],
        [masks[i] for i in order],
        [ids[i] for i in order],
        [groups[i] for i in order],
        info=info,
        raw_values=raw_values,
        what="images",
        where=where,
    )
