"""Recipe ``volumes_3d``: whole 3D NIfTI volumes, preprocessed nnU-Net-style with MONAI transforms.

The 3D parts of paper 002 (BraTS-METS, KiTS: App. D, ``/work/shared/papers/002_*.txt``
l.321-325) and paper 003 (MSD Pancreas / Liver, AMOS: Sec. 4.1, ``003_*.txt`` l.703-718, 746-749)
preprocess "in a nnUNet-style fashion (Isensee et al., 2021)": reorientation to RAS+, resampling
to a target spacing, intensity normalisation per modality (CT: clipping to the [0.5, 99.5]
foreground percentiles, then z-score with the foreground mean / std; MR: z-score per volume) and
cropping. Each step is one MONAI transform (``monai.transforms``, MONAI 1.6):

1. ``LoadImaged`` (nibabel) + ``EnsureChannelFirstd``: image and label as ``[1, X, Y, Z]``
   ``MetaTensor`` with their affine.
2. ``Orientationd(axcodes=orientation)`` (default ``"RAS"``): array axes become R, A, S.
3. ``Spacingd(pixdim=spacing, mode=("bilinear", "nearest"))``: the image trilinear, the label by
   nearest neighbour (nnU-Net uses cubic splines for images and linear interpolation of one-hot
   labels; documented difference, docs/3d.md).
4. ``CropForegroundd``: ``crop: nonzero`` (default; nnU-Net's crop to the non-zero region of the
   image), ``crop: {labels: [raw values], margin: m}`` (a box around those raw label values, e.g.
   KiTS "ROIs ... around both kidneys", 002 l.325) or ``crop: null``.
5. Intensity: ``clip`` ``[lo, hi]`` (fixed values, e.g. paper 002's KiTS ``[-58, 302]`` HU) or
   ``{percentiles: [0.5, 99.5]}`` of the foreground voxels (raw label > 0) of all volumes (nnU-Net
   ``CTNormalization``); then ``NormalizeIntensityd`` with ``zscore``: ``volume`` (per volume;
   with ``nonzero: true`` over the non-zero voxels only, nnU-Net's MR scheme) or ``foreground``
   (the mean / std of the clipped foreground voxels of all volumes, nnU-Net's CT scheme).
   ``modality`` sets the defaults: ``ct`` -> ``zscore: foreground``, ``mr`` -> ``zscore: volume,
   nonzero: true``.

The dataset-level statistics are computed over every volume the recipe prepares (train and test
alike: nnU-Net computes them over the training cases; the difference is a few HU, docs/3d.md).

Storage: the volumes are zero-padded at the end of each axis to one shape (the largest, or
``pad_to``), ``images`` ``[N, 1, X, Y, Z]`` float32 and ``masks`` ``[N, X, Y, Z]`` uint8 (axis
order after ``Orientationd``). The sidecar's ``recipe.volumes.<id>`` records each volume's own
``shape`` (the unpadded extent: evaluate only there), its ``spacing`` in mm (same axis order),
its source spacing and shape, and the intensity statistics; ``recipe.spacing`` is the target
spacing and ``recipe.official_split`` the official partition where the layout has one
(``split_from_dir``).

Parameters (``recipe.params`` in config/datasets.yaml):

- ``volumes`` (required): list of ``{image, regex, label, id}`` as in ``nifti_slices`` (``label``
  and ``id`` templates use the regex groups, ``{stem}`` and ``{dir}``).
- ``modality``: ``ct`` or ``mr`` (required; sets the intensity defaults above).
- ``orientation``: axis codes (default ``"RAS"``) or null (keep the stored orientation).
- ``spacing``: ``[sx, sy, sz]`` mm (one number: isotropic), or null (keep the source spacing).
- ``crop``, ``clip``, ``zscore``, ``nonzero``: see above.
- ``pad_to``: ``[X, Y, Z]`` common shape (each volume must fit), default the largest volume.
- ``split_from_dir``: ``{<folder of the image>: <part>}``, e.g. AMOS ``{imagesTr: train,
  imagesVa: test}``: recorded as ``recipe.official_split`` (ids per part).
- ``count``: number of volumes expected, or null.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segbench.data.recipes._common import (
    PreparedArrays,
    RecipeError,
    check_params,
    fill,
    map_labels,
    match_files,
)
from segbench.data.recipes.registry import RECIPES

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

PARAMS = (
    "volumes",
    "modality",
    "orientation",
    "spacing",
    "crop",
    "clip",
    "zscore",
    "nonzero",
    "pad_to",
    "split_from_dir",
    "count",
)
VOLUME_KEYS = ("image", "regex", "label", "id")
MODALITIES = ("ct", "mr")
ZSCORE_MODES = ("volume", "foreground")
_MODALITY_DEFAULTS = {"ct": ("foreground", False), "mr": ("volume", True)}


def _triple(value: Any, key: str, where: str, *, integer: bool = False) -> list[float] | None:
    """``value`` as three positive numbers (one number repeats); None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value] * 3
    kind = int if integer else int | float
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(v, kind) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        what = "positive integers" if integer else "positive numbers"
        raise RecipeError(f"{where}: parameter {key!r} must be three {what}, got {value!r}")
    return [int(v) if integer else float(v) for v in value]


def _clip_rule(value: Any, where: str) -> tuple[str, tuple[float, float]] | None:
    """``("values", (lo, hi))``, ``("percentiles", (lo, hi))`` or None."""
    if value is None:
        return None
    if isinstance(value, dict):
        check_params(value, ("percentiles",), f"{where}, clip")
        kind, pair = "percentiles", value.get("percentiles")
    else:
        kind, pair = "values", value
    ok = (
        isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
        and pair[0] < pair[1]
    )
    if ok and kind == "percentiles":
        ok = pair[0] >= 0 and pair[1] <= 100
    if not ok:
        raise RecipeError(
            f"{where}: clip must be [lo, hi] (lo < hi) or {{percentiles: [lo, hi]}} within "
            f"[0, 100], got {value!r}"
        )
    return kind, (float(pair[0]), float(pair[1]))


def _crop_fn(value: Any, where: str) -> tuple[str, Callable[[Any], Any] | None, int]:
    """``(source key, select_fn, margin)`` for ``CropForegroundd``; source ``""`` = no crop."""
    if value is None:
        return "", None, 0
    if value == "nonzero":
        return "image", lambda x: x != 0, 0
    if isinstance(value, dict):
        check_params(value, ("labels", "margin"), f"{where}, crop")
        labels, margin = value.get("labels"), value.get("margin", 0)
        if isinstance(labels, int) and not isinstance(labels, bool):
            labels = [labels]
        if (
            isinstance(labels, list)
            and labels
            and all(isinstance(v, int) and not isinstance(v, bool) for v in labels)
            and isinstance(margin, int)
            and not isinstance(margin, bool)
            and margin >= 0
        ):
            import torch

            values = torch.as_tensor(labels)
            return "label", lambda x: torch.isin(torch.as_tensor(x), values.to(x.device)), margin
    raise RecipeError(
        f"{where}: crop must be 'nonzero', {{labels: [raw values], margin: int >= 0}} or null, "
        f"got {value!r}"
    )


def _geometry(
    orientation: str | None,
    spacing: Sequence[float] | None,
    crop: tuple[str, Callable[[Any], Any] | None, int],
) -> Callable[[dict[str, str]], dict[str, Any]]:
    """The MONAI pipeline of steps 1-4 (module docstring) on ``{"image": path, "label": path}``."""
    from monai.transforms import (
        Compose,
        CropForegroundd,
        EnsureChannelFirstd,
        LoadImaged,
        Orientationd,
        Spacingd,
    )

    keys = ["image", "label"]
    steps: list[Any] = [
        LoadImaged(keys=keys, reader="NibabelReader", image_only=True),
        EnsureChannelFirstd(keys=keys),
    ]
    if orientation:
        steps.append(Orientationd(keys=keys, axcodes=orientation))
    if spacing is not None:
        steps.append(Spacingd(keys=keys, pixdim=list(spacing), mode=("bilinear", "nearest")))
    source, select_fn, margin = crop
    if source:
        steps.append(
            CropForegroundd(
                keys=keys,
                source_key=source,
                select_fn=select_fn,
                margin=margin,
                allow_smaller=True,
            )
        )
    return Compose(steps)


def _spacing_of(affine: Any) -> list[float]:
    """Voxel spacing (mm) per array axis: the column norms of the affine's 3x3 part."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    return [round(float(v), 6) for v in np.sqrt((a**2).sum(axis=0))]


def _zscore(img: np.ndarray, mode: str, nonzero: bool, stats: tuple[float, float] | None) -> Any:
    """``NormalizeIntensityd`` per ``mode`` (``foreground``: the dataset's ``(mean, std)``)."""
    from monai.transforms import NormalizeIntensity

    if mode == "foreground":
        assert stats is not None
        norm = NormalizeIntensity(subtrahend=stats[0], divisor=max(stats[1], 1e-8))
    else:
        norm = NormalizeIntensity(nonzero=nonzero)
    return np.asarray(norm(img), dtype=np.float32)


@RECIPES.register("volumes_3d")
def volumes_3d(entry: DatasetEntry, raw_dir: Path, params: dict[str, Any]) -> PreparedArrays:
    """Prepare whole 3D volumes (see the module docstring).

    Raises:
        RecipeError: bad parameters, missing or unreadable volumes, image/label geometry
            mismatch, unexpected label values, a volume larger than ``pad_to``, or a ``count``
            that does not match.
    """
    where = f"dataset {entry.id!r} (recipe volumes_3d)"
    check_params(params, PARAMS, where)
    volumes = params.get("volumes")
    if not isinstance(volumes, list) or not volumes:
        raise RecipeError(f"{where}: parameter 'volumes' must be a non-empty list, got {volumes!r}")
    modality = params.get("modality")
    if modality not in MODALITIES:
        raise RecipeError(f"{where}: modality must be one of {list(MODALITIES)}, got {modality!r}")
    default_z, default_nonzero = _MODALITY_DEFAULTS[modality]
    zscore = params.get("zscore", default_z)
    if zscore not in ZSCORE_MODES:
        raise RecipeError(f"{where}: zscore must be one of {list(ZSCORE_MODES)}, got {zscore!r}")
    nonzero = params.get("nonzero", default_nonzero)
    if not isinstance(nonzero, bool):
        raise RecipeError(f"{where}: nonzero must be true or false, got {nonzero!r}")
    orientation = params.get("orientation", "RAS")
    if orientation is not None and (not isinstance(orientation, str) or len(orientation) != 3):
        raise RecipeError(f"{where}: orientation must be 3 axis codes (e.g. 'RAS') or null")
    spacing = _triple(params.get("spacing"), "spacing", where)
    pad_to = _triple(params.get("pad_to"), "pad_to", where, integer=True)
    clip = _clip_rule(params.get("clip"), where)
    crop = _crop_fn(params.get("crop", "nonzero"), where)
    split_dirs = params.get("split_from_dir") or {}
    if not isinstance(split_dirs, dict):
        raise RecipeError(
            f"{where}: split_from_dir must map image folders to parts, got {split_dirs!r}"
        )
    pipeline = _geometry(orientation, spacing, crop)

    cases: list[dict[str, Any]] = []
    raw_values: dict[int, str] = {}
    for spec in volumes:
        if not isinstance(spec, dict) or "image" not in spec or "label" not in spec:
            raise RecipeError(f"{where}: each volume spec needs 'image' and 'label', got {spec!r}")
        check_params(spec, VOLUME_KEYS, where)
        matches = match_files(raw_dir, spec["image"], spec.get("regex"), where)
        if not matches:
            raise RecipeError(f"{where}: no volume matches {spec['image']!r} under {raw_dir}")
        for m in matches:
            fields = dict(m.fields)
            fields["stem"] = m.path.name.removesuffix(".gz").removesuffix(".nii")
            label_path = raw_dir / fill(spec["label"], fields, where)
            if not label_path.is_file():
                raise RecipeError(f"{where}: volume {m.rel} has no label volume at {label_path}")
            vol_id = fill(spec.get("id") or "{stem}", fields, where)
            src = _source_geometry(m.path, label_path, where)
            try:
                out = pipeline({"image": str(m.path), "label": str(label_path)})
            except Exception as err:  # MONAI wraps reader/transform errors in RuntimeError
                raise RecipeError(
                    f"{where}: cannot preprocess {m.rel} ({type(err).__name__}: {err})"
                ) from None
            img = np.asarray(out["image"], dtype=np.float32)[0]
            raw_lab = np.rint(np.asarray(out["label"])[0]).astype(np.int64)
            lab = map_labels(
                raw_lab,
                entry.label_map,
                entry.num_classes,
                f"{where}: {label_path}",
                seen=raw_values,
                file=str(label_path),
            )
            cases.append(
                {
                    "id": vol_id,
                    "image": img,
                    "mask": lab,
                    "foreground": raw_lab > 0,
                    "info": {
                        "image": m.rel,
                        "label": label_path.relative_to(raw_dir).as_posix(),
                        "source_shape": src[0],
                        "source_spacing": src[1],
                        "shape": list(img.shape),
                        "spacing": _spacing_of(out["image"].affine),
                    },
                    "dir": Path(m.rel).parent.as_posix(),
                }
            )
    ids = [c["id"] for c in cases]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise RecipeError(
            f"{where}: volume ids {dup[:5]} occur more than once; fix the id template"
        )
    count = params.get("count")
    if count is not None and count != len(cases):
        raise RecipeError(f"{where}: expected {count} volumes, got {len(cases)}")

    stats = _intensity(cases, clip, zscore, where)
    for c in cases:
        if clip is not None:
            c["image"] = np.clip(c["image"], *stats["clip"])
        c["image"] = _zscore(c["image"], zscore, nonzero, stats.get("mean_std"))
        if zscore == "volume":
            c["info"]["zscore"] = "volume, non-zero voxels" if nonzero else "volume"

    shape = pad_to or [max(c["image"].shape[a] for c in cases) for a in range(3)]
    images = np.zeros((len(cases), 1, *shape), dtype=np.float32)
    masks = np.zeros((len(cases), *shape), dtype=np.uint8)
    for k, c in enumerate(cases):
        s = c["image"].shape
        if any(s[a] > shape[a] for a in range(3)):
            raise RecipeError(
                f"{where}: volume {c['id']!r} has shape {list(s)} after preprocessing, larger "
                f"than pad_to {list(shape)}"
            )
        images[k, 0, : s[0], : s[1], : s[2]] = c["image"]
        masks[k, : s[0], : s[1], : s[2]] = c["mask"]
    official: dict[str, list[str]] = {}
    for c in cases:
        part = split_dirs.get(c["dir"])
        if part is not None:
            official.setdefault(str(part), []).append(c["id"])
    info: dict[str, Any] = {
        "volumes": {c["id"]: c["info"] for c in cases},
        "spacing": spacing,
        "orientation": orientation,
        "modality": modality,
        "intensity": {k: list(v) if isinstance(v, tuple) else v for k, v in stats.items()},
        "padded_shape": list(shape),
    }
    if split_dirs:
        info["official_split"] = {k: sorted(v) for k, v in sorted(official.items())}
    return PreparedArrays(
        images=images,
        masks=masks,
        ids=ids,
        groups=list(ids),
        info=info,
        raw_values=raw_values,
    )


def _source_geometry(image: Path, label: Path, where: str) -> tuple[list[int], list[float]]:
    """Shape and spacing of the stored image; the label must have the same shape."""
    import nibabel as nib

    try:
        img, lab = nib.load(str(image)), nib.load(str(label))
    except Exception as err:  # nibabel raises several unrelated types for bad files
        raise RecipeError(
            f"{where}: cannot read NIfTI volume {image} or {label} ({type(err).__name__}: {err})"
        ) from None
    if img.shape[:3] != lab.shape[:3] or len(img.shape) != 3:
        raise RecipeError(
            f"{where}: image {image.name} {list(img.shape)} and label {label.name} "
            f"{list(lab.shape)} must be 3D volumes of the same shape"
        )
    if not np.allclose(img.affine, lab.affine, atol=1e-3):
        raise RecipeError(
            f"{where}: image {image.name} and label {label.name} have different affines "
            "(orientation, spacing or origin); they must share one voxel grid"
        )
    return [int(v) for v in img.shape], _spacing_of(img.affine)


def _intensity(
    cases: list[dict[str, Any]],
    clip: tuple[str, tuple[float, float]] | None,
    zscore: str,
    where: str,
) -> dict[str, Any]:
    """Dataset-level intensity facts: ``clip`` bounds and the foreground ``mean_std`` (nnU-Net
    ``CTNormalization``: percentiles, mean and std of the foreground voxels of all volumes)."""
    out: dict[str, Any] = {}
    need_fg = zscore == "foreground" or (clip is not None and clip[0] == "percentiles")
    fg = np.concatenate([c["image"][c["foreground"]] for c in cases]) if need_fg else None
    if need_fg and (fg is None or fg.size == 0):
        raise RecipeError(
            f"{where}: no foreground voxels (raw label > 0) in any volume: cannot compute the "
            "foreground percentiles / mean / std (use zscore: volume and a fixed clip)"
        )
    if clip is not None:
        kind, (lo, hi) = clip
        if kind == "percentiles":
            assert fg is not None
            lo, hi = (float(v) for v in np.percentile(fg.astype(np.float64), [lo, hi]))
            out["clip_percentiles"] = list(clip[1])
        out["clip"] = [lo, hi]
    if zscore == "foreground":
        assert fg is not None
        vals = fg.astype(np.float64)
        if clip is not None:
            vals = np.clip(vals, *out["clip"])
        out["mean_std"] = (float(vals.mean()), float(vals.std()))
    out["zscore"] = zscore
    return out
