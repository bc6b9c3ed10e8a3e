"""Size of the difference between the two run-level aggregations on a finished study.

For every run folder with saved test probabilities (``results/runs/**/probs.npz``) of a study
tree, recompute mIoU and mean Dice under both ``evaluation.aggregate`` values with the same code
as the evaluate rule (:func:`segbench.evaluate.evaluate_probs` + :func:`~segbench.evaluate.
summarize_run` for ``image``, :func:`segbench.evaluate.dataset_aggregate` for ``dataset``), check
that ``image`` reproduces the run's stored ``metrics.json`` exactly, and print per dataset and
loss the mean over the runs (fractions, seeds and folds) of each, and ``dataset - image``, in
percentage points. Needs no GPU; surface metrics are not recomputed (they have no pooled form).

Usage::

    python benchmarks/aggregation_difference.py /work/baseline            # Markdown table
    python benchmarks/aggregation_difference.py /work/baseline --by fraction
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from segbench.data.io import load_prepared
from segbench.evaluate import dataset_aggregate, evaluate_probs, load_probs, summarize_run


def run_rows(root: Path) -> pd.DataFrame:
    """One row per run: identity, image and dataset mIoU / mDice, and the stored mIoU."""
    rows, cache = [], {}
    for probs_path in sorted((root / "results" / "runs").rglob("probs.npz")):
        folder = probs_path.parent
        run = json.loads((folder / "run.json").read_text())
        ident = run["run"]
        evaluation = {"calibration_bins": 15, **run.get("config", {}).get("evaluation", {})}
        evaluation["surface"] = False
        ds = ident["dataset"]
        if ds not in cache:
            cache[ds] = load_prepared(root / "data" / "prepared" / f"{ds}.npz")
        data = cache[ds]
        include_bg = bool(evaluation.get("include_background", True))
        probs, ids = load_probs(probs_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_image, calib, _ = evaluate_probs(probs, ids, data, evaluation)
            image = summarize_run(per_image, calib, include_bg, data.class_names)
        masks = data.masks[data.indices(ids)].astype(np.int64)
        pooled = dataset_aggregate(probs, masks, include_bg, data.class_names, 15)
        stored = json.loads((folder / "metrics.json").read_text())
        if not math.isclose(stored["mean_iou"], image["mean_iou"], rel_tol=0, abs_tol=0):
            raise RuntimeError(
                f"{folder}: image mIoU {image['mean_iou']} != stored {stored['mean_iou']}"
            )
        rows.append(
            {
                **{k: ident[k] for k in ("dataset", "model", "loss", "fraction", "seed", "fold")},
                "status": run["result"]["status"],
                "miou_image": image["mean_iou"],
                "miou_dataset": pooled["mean_iou"],
                "mdice_image": image["mean_dice"],
                "mdice_dataset": pooled["mean_dice"],
            }
        )
    if not rows:
        raise SystemExit(f"no probs.npz under {root / 'results' / 'runs'}")
    return pd.DataFrame(rows)


def summary(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean over the completed runs of each group, in percent, with ``dataset - image``."""
    done = runs[runs["status"] == "completed"].copy()
    for m in ("miou", "mdice"):
        done[f"{m}_diff"] = done[f"{m}_dataset"] - done[f"{m}_image"]
    cols = [f"{m}_{a}" for m in ("miou", "mdice") for a in ("image", "dataset", "diff")]
    g = done.groupby(by, sort=False)
    out = (g[cols].mean() * 100).round(2)
    out["max_abs_diff_run"] = (
        g[["miou_diff", "mdice_diff"]].apply(lambda x: x.abs().to_numpy().max()) * 100
    ).round(2)
    out["runs"] = g.size()
    return out.reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="study tree (has results/runs and data/prepared)")
    ap.add_argument("--by", nargs="*", default=[], help="extra group columns, e.g. fraction")
    args = ap.parse_args()
    runs = run_rows(args.root)
    table = summary(runs, ["dataset", "loss", *args.by])
    table.columns = [c.replace("_", " ") for c in table.columns]
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")
    done = runs[runs["status"] == "completed"]
    d = (done["miou_dataset"] - done["miou_image"]) * 100
    print(
        f"\n{len(done)} completed runs; dataset - image mIoU: mean {d.mean():.2f}, "
        f"min {d.min():.2f}, max {d.max():.2f} percentage points; image aggregation "
        "reproduced every stored metrics.json mean_iou exactly."
    )


if __name__ == "__main__":
    main()
