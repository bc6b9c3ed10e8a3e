"""Evaluation of one run from its saved test probabilities (no model, no GPU needed).

Per image and class: IoU, Dice (and HD95 / HD / NSD when ``surface`` is on); per image: NLL,
Brier, ECE, MCE. Both run-level aggregations are computed for every run and written to
``metrics.json`` (``evaluation.aggregate`` only picks which one the tidy table and the report
tables show; docs/metrics.md "Aggregation"):

**image** (top-level keys, unchanged since before the ``dataset`` block existed):

- ``classes[c].iou`` / ``dice`` (/ ``hd95`` / ``hd`` / ``nsd``) = mean over test images of the
  per-image values, EXCLUDING images where the class is absent from both ground truth and
  prediction (the count of images used is ``n_valid``); a class never seen nor predicted gets
  NaN and is left out of the means;
- ``mean_iou`` / ``mean_dice`` (/ ``mean_hd95`` / ``mean_hd`` / ``mean_nsd``) = mean over
  classes (background in or out per ``include_background``);
- ``nll`` / ``brier`` / ``ece`` / ``mce`` = mean over test images of the per-image values.

**dataset** (the ``dataset`` block): one confusion matrix summed over every pixel of the test
fold; ``dataset.classes[c]`` has ``tp``, ``fp``, ``fn`` and ``iou = TP / (TP + FP + FN)``,
``dice = 2 TP / (2 TP + FP + FN)`` of the pooled counts (an image where the class is absent from
both truth and prediction adds nothing, so no exclusion rule is needed; a class absent from the
whole fold, TP + FP + FN = 0, gets NaN and is left out of the means); ``dataset.mean_iou`` /
``mean_dice`` = mean over classes as above; ``dataset.nll`` / ``brier`` / ``ece`` / ``mce`` from
all test pixels pooled (:func:`segbench.metrics.dataset_calibration`). Surface metrics have no
pooled form here: the tables show their per-image means under both aggregations.

The reliability diagram always pools all test pixels.

**3D** (masks ``[N, X, Y, Z]``, docs/3d.md): every volume is first cropped to its unpadded
extent (the sidecar's ``recipe.volumes.<id>.shape``, :func:`segbench.inference.crop_to_shape`)
and its surface metrics use the sidecar's ``spacing`` (mm per axis), so HD95 / HD are in mm
and ``nsd_tolerance`` is in mm (papers 002 App. D, 003 Table 5: per-volume metrics); the
pooled ``dataset`` block and the reliability bins pool the cropped voxels only.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segbench import faults
from segbench.data.io import PreparedDataset, load_prepared
from segbench.io_utils import atomic_open, atomic_write_text
from segbench.rundir import (
    CHECKSUMMED,
    RunFolderError,
    read_run_json,
    recovery,
    science_result,
    verify_outputs,
)
from segbench.schema import resolve_section

OVERLAP = ("iou", "dice")
SURFACE = ("hd95", "hd", "nsd")
AGGREGATES = ("image", "dataset")
CALIBRATION = ("nll", "brier", "ece", "mce")


def load_probs(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """A run's ``probs.npz``: test probabilities ``[N, C, *spatial]`` (float32) and image ids.

    Raises:
        RunFolderError: naming the path and the recovery, when the file is not a readable
            ``.npz`` with ``probs`` (``[N, C, ...]``) and ``ids`` (``N`` of them).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not {"probs", "ids"} <= set(z.files):
                raise RunFolderError(
                    f"{path}: not a run's probs.npz (arrays {sorted(z.files)}, needs "
                    f"'probs' and 'ids'); {recovery(path.parent)}"
                )
            probs, ids = z["probs"].astype(np.float32), [str(i) for i in z["ids"]]
    except RunFolderError:
        raise
    except FileNotFoundError:
        raise RunFolderError(f"{path}: does not exist; {recovery(path.parent)}") from None
    except (OSError, ValueError, EOFError, KeyError) as err:  # zip, header or pickle refusals
        reason = " ".join(str(err).split()[:8])
        raise RunFolderError(
            f"{path}: not a readable .npz archive ({type(err).__name__}: {reason}); "
            f"{recovery(path.parent)}"
        ) from None
    if probs.ndim < 3 or len(ids) != probs.shape[0]:
        raise RunFolderError(
            f"{path}: probs of shape {list(probs.shape)} for {len(ids)} ids (needs "
            f"[N, C, ...] with N ids); {recovery(path.parent)}"
        )
    return probs, ids


def cropped_volumes(
    probs: np.ndarray, ids: list[str], data: PreparedDataset
) -> tuple[list[np.ndarray], list[np.ndarray], list[list[float] | None]]:
    """3D: each test volume's probabilities ``[C, *shape]`` and labels ``[*shape]`` cropped to
    its unpadded extent, and its spacing in mm (the sidecar's ``recipe.volumes.<id>``; a
    volume without an entry keeps the whole array and voxel units, spacing None).

    Raises:
        ValueError: naming the id, when a recorded shape is larger than the arrays.
    """
    from segbench.inference import crop_to_shape

    info = (data.meta.get("recipe") or {}).get("volumes") or {}
    masks = data.masks[data.indices(ids)]
    ps, ts, spacings = [], [], []
    for k, image_id in enumerate(ids):
        entry = info.get(image_id, {})
        shape = entry.get("shape", masks.shape[1:])
        try:
            ps.append(np.asarray(crop_to_shape(probs[k], shape)))
        except ValueError as err:
            raise ValueError(
                f"volume {image_id!r} of dataset {data.meta.get('name')!r}: {err}"
            ) from None
        ts.append(np.asarray(crop_to_shape(masks[k], shape)).astype(np.int64))
        spacing = entry.get("spacing")
        spacings.append(None if spacing is None else [float(v) for v in spacing])
    return ps, ts, spacings


def evaluate_probs(
    probs: np.ndarray,
    ids: list[str],
    data: PreparedDataset,
    evaluation: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-image/class rows, per-image calibration rows and reliability bins (``evaluation``:
    the study's ``evaluation`` section; missing keys take the schema defaults). 3D volumes are
    cropped and measured in mm (module docstring)."""
    from segbench.metrics import image_calibration, image_metrics, reliability_bins

    evaluation = resolve_section("evaluation", evaluation)
    c = data.num_classes
    surface = bool(evaluation["surface"])
    n_bins = int(evaluation["calibration_bins"])
    tol = float(evaluation["nsd_tolerance"])
    spacings: list[list[float] | None] = [None] * len(ids)
    if data.masks.ndim == 4:
        probs, masks, spacings = cropped_volumes(probs, ids, data)  # type: ignore[assignment]
    else:
        masks = data.masks[data.indices(ids)].astype(np.int64)
    rows, cal = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for k, image_id in enumerate(ids):
            kw = {} if spacings[k] is None else {"spacing": spacings[k]}
            for r in image_metrics(
                probs[k], masks[k], c, nsd_tolerance=tol, n_bins=n_bins, surface=surface, **kw
            ):
                r = dict(r)
                r["image"] = image_id
                r["class_name"] = data.class_names[int(r["class"])]
                rows.append(r)
            cal_row = dict(image_calibration(probs[k], masks[k], n_bins=n_bins))
            cal_row["image"] = image_id
            cal.append(cal_row)
    per_image = pd.DataFrame(rows)
    cols = ["image", "class", "class_name", *OVERLAP]
    if surface:
        cols += list(SURFACE)
    cols += ["empty_gt", "empty_pred"]
    per_image = per_image[[col for col in cols if col in per_image.columns]]
    rel = reliability_bins(list(probs), list(masks), n_bins=n_bins)
    return per_image, pd.DataFrame(cal), rel


def dataset_aggregate(
    probs: np.ndarray,
    masks: np.ndarray,
    include_background: bool,
    class_names: list[str],
    n_bins: int = 15,
) -> dict[str, Any]:
    """The ``dataset`` block of ``metrics.json``: one confusion matrix pooled over the fold.

    Args:
        probs: test probabilities ``[N, C, *spatial]`` (the hard prediction is ``argmax`` over
            ``C``, as for the per-image metrics).
        masks: labels ``[N, *spatial]``.
        include_background: class 0 in the class means.
        class_names: ``C`` names.
        n_bins: calibration bins.

    Returns:
        ``{"classes": [{class, class_name, tp, fp, fn, iou, dice}], "mean_iou", "mean_dice",
        "nll", "brier", "ece", "mce"}`` (module docstring for the conventions).
    """
    from segbench.metrics import confusion_matrix, dataset_calibration, overlap_from_confusion

    c = len(class_names)
    cm = np.zeros((c, c), dtype=np.int64)
    for k in range(len(probs)):
        cm += confusion_matrix(np.asarray(probs[k]).argmax(axis=0), masks[k], c)
    ov = overlap_from_confusion(cm)
    absent = (ov["tp"] + ov["fp"] + ov["fn"]) == 0
    classes = []
    for cls, name in enumerate(class_names):
        entry: dict[str, Any] = {"class": cls, "class_name": name}
        for key in ("tp", "fp", "fn"):
            entry[key] = int(ov[key][cls])
        for m in OVERLAP:
            entry[m] = float("nan") if absent[cls] else float(ov[m][cls])
        classes.append(entry)
    first = 0 if include_background else 1
    block: dict[str, Any] = {"classes": classes}
    for m in OVERLAP:
        vals = np.array([e[m] for e in classes[first:]], dtype=float)
        block[f"mean_{m}"] = float(np.nanmean(vals)) if not np.isnan(vals).all() else float("nan")
    pooled = dataset_calibration(list(probs), list(masks), n_bins=n_bins)
    for m in CALIBRATION:
        block[m] = float(pooled[m])
    return block


def summarize_run(
    per_image: pd.DataFrame, calib: pd.DataFrame, include_background: bool, class_names: list[str]
) -> dict[str, Any]:
    """Run-level metrics from the per-image tables (conventions in the module docstring)."""
    valid = per_image[~(per_image["empty_gt"] & per_image["empty_pred"])]
    metric_cols = [m for m in (*OVERLAP, *SURFACE) if m in per_image.columns]
    classes = []
    for cls, name in enumerate(class_names):
        sub = valid[valid["class"] == cls]
        entry: dict[str, Any] = {"class": cls, "class_name": name, "n_valid": int(len(sub))}
        for m in metric_cols:
            vals = sub[m].to_numpy(dtype=float)
            entry[m] = (
                float(np.nanmean(vals)) if len(vals) and not np.isnan(vals).all() else float("nan")
            )
        classes.append(entry)
    first = 0 if include_background else 1
    summary: dict[str, Any] = {"classes": classes, "include_background": include_background}
    for m in metric_cols:
        vals = np.array([e[m] for e in classes[first:]], dtype=float)
        summary[f"mean_{m}"] = float(np.nanmean(vals)) if not np.isnan(vals).all() else float("nan")
    for m in CALIBRATION:
        if m in calib.columns:
            summary[m] = float(calib[m].mean())
    summary["n_images"] = int(per_image["image"].nunique())
    return summary


def evaluate_run(
    probs_npz: str | Path,
    prepared_npz: str | Path,
    run_json: str | Path,
    evaluation: dict[str, Any],
    out_metrics: str | Path,
    out_per_image: str | Path,
    out_reliability: str | Path,
) -> dict[str, Any]:
    """Evaluate one run folder; writes metrics.json, per_image.csv and reliability.csv atomically.

    ``evaluation``: the study's ``evaluation`` section (missing keys take the schema defaults).
    Before anything is read, the run's training outputs (``best.pt``, ``history.csv``,
    ``probs.npz``) are checked against the sha256 ``run.json`` recorded. ``metrics.json``
    carries the run's ``result`` without the fields that say how it ran (wall time, resume
    epoch: :data:`segbench.rundir.HOW_IT_RAN`), so it is byte-identical across reruns.

    Raises:
        RunFolderError: a damaged or missing file of the run folder (the message names it and
            says how to recover).
    """
    evaluation = resolve_section("evaluation", evaluation)
    run = read_run_json(run_json)
    verify_outputs(Path(run_json).parent, run, CHECKSUMMED)
    data = load_prepared(prepared_npz)
    probs, ids = load_probs(probs_npz)
    per_image, calib, rel = evaluate_probs(probs, ids, data, evaluation)
    include_background = bool(evaluation["include_background"])
    summary = summarize_run(per_image, calib, include_background, data.class_names)
    if data.masks.ndim == 4:  # 3D: the unpadded voxels only
        probs, masks, _ = cropped_volumes(probs, ids, data)  # type: ignore[assignment]
    else:
        masks = data.masks[data.indices(ids)].astype(np.int64)
    summary["dataset"] = dataset_aggregate(
        probs,
        masks,
        include_background,
        data.class_names,
        int(evaluation["calibration_bins"]),
    )
    result = science_result(run["result"])
    summary.update(run=run["run"], status=result["status"], result=result)
    for path, df in ((out_per_image, per_image), (out_reliability, rel)):
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        atomic_write_text(path, buf.getvalue())
    text = json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"
    with atomic_open(out_metrics, "w") as fh:
        fh.write(text[: len(text) // 2])
        if faults.ENV in os.environ:  # tests: make the first half reach the disk before a kill
            fh.flush()
        faults.point("metrics_write", 0)
        fh.write(text[len(text) // 2 :])
    return summary
