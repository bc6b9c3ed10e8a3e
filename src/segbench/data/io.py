"""Prepared-dataset files: ``{name}.npz`` (arrays) + ``{name}.json`` (sidecar metadata).

Format (docs/CONVENTIONS.md): ``images`` float32 [N, C_in, H, W] in [0, 1]; ``masks`` uint8
[N, H, W] with values in [0, num_classes); ``ids`` unicode [N]; optional ``groups`` unicode [N].
3D datasets (recipe ``volumes_3d``, docs/3d.md) store ``images`` [N, C_in, D, H, W] (z-scored,
not in [0, 1]) and ``masks`` [N, D, H, W], zero-padded to one shape; the sidecar's
``recipe.volumes`` gives each volume's own shape and voxel spacing.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segbench.io_utils import atomic_write_bytes, atomic_write_json

REQUIRED_META = ("name", "num_classes", "class_names", "in_channels")


class DatasetFormatError(ValueError):
    """A prepared dataset file is missing, corrupt or inconsistent."""


@dataclass
class PreparedDataset:
    """A prepared dataset held in memory."""

    images: np.ndarray
    masks: np.ndarray
    ids: list[str]
    meta: dict[str, Any]
    groups: list[str] | None = None
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {i: k for k, i in enumerate(self.ids)}

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def in_channels(self) -> int:
        return int(self.meta["in_channels"])

    def indices(self, ids: list[str]) -> np.ndarray:
        """Row indices of ``ids``; raises ValueError naming unknown ids."""
        missing = [i for i in ids if i not in self._index]
        if missing:
            raise ValueError(
                f"dataset {self.meta.get('name')!r} has no sample(s) {missing[:5]} "
                f"({len(missing)} missing); is the split file stale?"
            )
        return np.asarray([self._index[i] for i in ids], dtype=np.int64)


def validate_arrays(
    images: np.ndarray,
    masks: np.ndarray,
    ids: list[str],
    num_classes: int,
    where: str,
    groups: list[str] | None = None,
) -> None:
    """Check shapes, dtypes, label range and id uniqueness; raise DatasetFormatError naming ``where``."""
    if images.ndim not in (4, 5):
        raise DatasetFormatError(
            f"{where}: images must be [N, C, H, W] (2D) or [N, C, D, H, W] (3D, docs/3d.md), "
            f"got shape {images.shape}"
        )
    if masks.ndim != images.ndim - 1:
        want = "[N, H, W]" if images.ndim == 4 else "[N, D, H, W]"
        raise DatasetFormatError(
            f"{where}: masks must be {want} for images {images.shape}, got shape {masks.shape}"
        )
    if images.shape[0] != masks.shape[0] or images.shape[2:] != masks.shape[1:]:
        raise DatasetFormatError(
            f"{where}: image/mask size mismatch: images {images.shape} vs masks {masks.shape}"
        )
    if len(ids) != images.shape[0]:
        raise DatasetFormatError(f"{where}: {len(ids)} ids for {images.shape[0]} images")
    if len(set(ids)) != len(ids):
        raise DatasetFormatError(f"{where}: ids are not unique")
    if groups is not None and len(groups) != len(ids):
        raise DatasetFormatError(f"{where}: {len(groups)} groups for {len(ids)} ids")
    if masks.size:
        lo, hi = int(masks.min()), int(masks.max())
        if lo < 0 or hi >= num_classes:
            bad = sorted(set(np.unique(masks).tolist()) - set(range(num_classes)))
            raise DatasetFormatError(
                f"{where}: mask label values {bad} outside the declared classes 0..{num_classes - 1}"
            )
    if not np.isfinite(images).all():
        raise DatasetFormatError(f"{where}: images contain NaN or inf")


def save_prepared(
    path_npz: str | Path,
    images: np.ndarray,
    masks: np.ndarray,
    ids: list[str],
    meta: dict[str, Any],
    groups: list[str] | None = None,
) -> None:
    """Validate and write ``path_npz`` and its ``.json`` sidecar atomically (json last)."""
    path_npz = Path(path_npz)
    for key in REQUIRED_META:
        if key not in meta:
            raise DatasetFormatError(f"{path_npz}: sidecar metadata lacks key {key!r}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    masks = np.ascontiguousarray(masks, dtype=np.uint8)
    validate_arrays(images, masks, list(ids), int(meta["num_classes"]), str(path_npz), groups)
    arrays: dict[str, np.ndarray] = {
        "images": images,
        "masks": masks,
        "ids": np.asarray(ids, dtype=str),
    }
    if groups is not None:
        arrays["groups"] = np.asarray(groups, dtype=str)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path_npz, buf.getvalue())
    counts = np.bincount(masks.reshape(-1), minlength=int(meta["num_classes"]))
    sidecar = dict(meta)
    sidecar.update(
        n=int(images.shape[0]),
        shape=list(images.shape[2:]),
        ids=list(ids),
        class_proportions=[float(c) / max(1, int(counts.sum())) for c in counts],
    )
    atomic_write_json(path_npz.with_suffix(".json"), sidecar)


def _recovery(path_npz: Path) -> str:
    side = path_npz.with_suffix(".json")
    return (
        f"Delete {path_npz} and {side} and run the workflow again: rule prepare_dataset (or "
        "prepare_synthetic) writes them anew"
    )


def load_prepared(path_npz: str | Path) -> PreparedDataset:
    """Load a prepared dataset and check it against its sidecar.

    Raises:
        DatasetFormatError: naming the file, when it is missing, corrupt or inconsistent; a
            damaged file's message says what is wrong with it (not an npz archive, a corrupt
            or missing array, a sidecar that is not JSON) and how to recover (delete both
            files and rerun the preparation).
    """
    path_npz = Path(path_npz)
    side = path_npz.with_suffix(".json")
    for p in (path_npz, side):
        if not p.exists():
            raise DatasetFormatError(f"{p}: prepared dataset file does not exist")
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetFormatError(
            f"{side}: the prepared dataset's sidecar is not valid JSON ({err}); the file is "
            f"damaged. {_recovery(path_npz)}."
        ) from None
    missing = [k for k in REQUIRED_META if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise DatasetFormatError(
            f"{side}: the prepared dataset's sidecar lacks key(s) {missing}. {_recovery(path_npz)}."
        )
    if not zipfile.is_zipfile(path_npz):
        size = path_npz.stat().st_size
        raise DatasetFormatError(
            f"{path_npz}: not a prepared dataset: the file ({size} bytes) is not an .npz (zip) "
            f"archive, so it is damaged (truncated, or overwritten by another file). "
            f"{_recovery(path_npz)}."
        )
    try:
        with np.load(path_npz, allow_pickle=False) as z:
            absent = [k for k in ("images", "masks", "ids") if k not in z.files]
            if absent:
                raise DatasetFormatError(
                    f"{path_npz}: not a prepared dataset: the .npz archive has no array(s) "
                    f"{absent} (it holds {sorted(z.files)}). {_recovery(path_npz)}."
                )
            images = z["images"]
            masks = z["masks"]
            ids = [str(i) for i in z["ids"]]
            groups = [str(g) for g in z["groups"]] if "groups" in z.files else None
    except DatasetFormatError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DatasetFormatError(
            f"{path_npz}: cannot read the prepared arrays: the .npz archive is damaged "
            f"({type(err).__name__}: {err}). {_recovery(path_npz)}."
        ) from None
    validate_arrays(images, masks, ids, int(meta["num_classes"]), str(path_npz), groups)
    if ids != list(meta.get("ids", ids)):
        raise DatasetFormatError(f"{path_npz}: ids differ from the sidecar {side}")
    return PreparedDataset(images=images, masks=masks, ids=ids, meta=meta, groups=groups)
