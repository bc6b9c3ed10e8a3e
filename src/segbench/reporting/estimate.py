"""Cost of a study before running it: runs, jobs and expected GPU-hours (``scripts/estimate.py``).

Per run (one (dataset, model, loss, fraction, seed, fold)):

* training images = ``epochs x steps_per_epoch x batch_size``, with ``steps_per_epoch = null``
  meaning ``ceil(n_train / batch_size)``; an upper bound when early stopping is on;
* validation and test images are forward passes, counted as 1/3 of a training image each
  (``ceil(epochs / val_every)`` validations of ``n_val`` images, one pass over ``n_test``);
* jobs: ``training.pack = "folds"`` trains every fold of a (dataset, model, loss, fraction,
  seed) cell in one job (rule ``train_pack``), otherwise one job per run; each job pays a
  start-up (imports, data load; 15 s measured cold on the H100 machine) once.

``n_train`` / ``n_val`` / ``n_test`` come from ``results/splits/<dataset>.json`` when it exists
(exact), otherwise from the image count (``data/prepared/<dataset>.json``, the synthetic
config, or :data:`REFERENCE_SIZES`) with the split rule of :mod:`segbench.splits` (test = 1/k,
val = ``ceil(val_fraction x rest)``, fraction ``f`` = ``ceil(f x n_train)``).

Throughput (training images per second) per model comes from :data:`H100_THROUGHPUT`: the H100
measurements of ``shared/measurements/h100-training-throughput.md`` (2026-11-23; 256 x 256
inputs, batch 4, Adam, Dice+CE), each entry marked measured or assumed (nearest measured
network). A run at a larger input (crop, else the prepared image size) is scaled by
``256^2 / pixels``; smaller inputs are not scaled up (at batch 4 the step is launch-bound).
``training.compile = "reduce-overhead"`` uses the CUDA-graph figures. On a machine without a
GPU, :func:`time_model_cpu` times a few training steps of each model on this CPU instead.
``--img-per-s`` overrides everything.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from segbench.config import expand_runs
from segbench.splits import load_splits

REF_PIXELS = 256 * 256
VAL_COST = 1.0 / 3.0  # a forward pass ~ 1/3 of a training step's forward + backward
STARTUP_S = 15.0  # cold `import torch, smp, monai` on the H100 machine (measurements file)
STARTUP_S_CPU = 3.4
"""Start-up per job on this project's 2-core CPU machine: ``benchmarks/minigrid.py`` (2026-11-23),
24 runs as 24 jobs took 54.4 s longer than as 8 packed jobs, i.e. 3.4 s per extra job
(imports, data load, Snakemake's job overhead)."""
THROUGHPUT_SOURCE = "shared/measurements/h100-training-throughput.md (H100, 2026-11-23)"

H100_THROUGHPUT: dict[str, tuple[float, float, str]] = {
    # model: (img/s eager, img/s CUDA graphs, where the figure comes from)
    "unet": (381.0, 1173.0, "measured: plain U-Net 32-512, bf16 + channels_last"),
    "unet_bn_dropout": (282.0, 869.0, "assumed: unet x 2.0/2.7 (CPU fwd+bwd ratio, models.md)"),
    "transunet": (195.0, 601.0, "assumed: unet x 2.0/3.9 (CPU fwd+bwd ratio, models.md)"),
    "res_unet": (297.0, 467.0, "assumed: MONAI BasicUNet (closest measured MONAI U-Net)"),
    "r50_unet": (235.0, 620.0, "assumed: smp Unet(resnet34); ResNet-50 not measured"),
    "r50_fpn": (235.0, 620.0, "assumed: smp Unet(resnet34); ResNet-50 FPN not measured"),
    "convformer_unet": (235.0, 620.0, "assumed: smp Unet(resnet34); ConvFormer not measured"),
    "res_unet_3d": (297.0, 467.0, "assumed: 2D BasicUNet scaled by voxels (very rough)"),
    "unet_3d": (381.0, 1173.0, "assumed: 2D unet scaled by voxels (very rough)"),
}

REFERENCE_SIZES: dict[str, dict[str, Any]] = {
    # dataset: n images, [H, W], in_channels, classes (docs/datasets.md "recipe -> prepared";
    # used only when data/prepared/<dataset>.json does not exist yet)
    "drosophila_vnc": {"n": 320, "shape": [256, 256], "in_channels": 1, "classes": 5},
    "chase_db1": {"n": 28, "shape": [256, 256], "in_channels": 3, "classes": 2},
    "covid19_ct": {"n": 100, "shape": [256, 256], "in_channels": 1, "classes": 4},
    "drive": {"n": 40, "shape": [256, 256], "in_channels": 3, "classes": 2},
    "fives": {"n": 800, "shape": [512, 512], "in_channels": 3, "classes": 2},
    "inbreast": {"n": 107, "shape": [512, 512], "in_channels": 1, "classes": 2},
    "kvasir_seg": {"n": 1000, "shape": [352, 352], "in_channels": 3, "classes": 2},
    "cvc_clinicdb": {"n": 612, "shape": [224, 224], "in_channels": 3, "classes": 2},
    "cvc_clinicdb_352": {"n": 612, "shape": [352, 352], "in_channels": 3, "classes": 2},
    "busi": {"n": 647, "shape": [224, 224], "in_channels": 3, "classes": 2},
}
"""Image counts of registry datasets before preparation (inbreast: 107 images as paper 002;
its size is a placeholder). Datasets missing here need ``--n-images``."""


@dataclass(frozen=True)
class DatasetFacts:
    """Size of one dataset and where it was read from."""

    n: int | None
    shape: tuple[int, ...] | None
    in_channels: int
    classes: int
    source: str


def dataset_facts(
    config: Mapping[str, Any], dataset: str, root: Path, n_override: int | None = None
) -> DatasetFacts:
    """Image count and shape of ``dataset`` (prepared sidecar > synthetic config > reference)."""
    sidecar = root / "data" / "prepared" / f"{dataset}.json"
    entry = config["datasets"][dataset]
    if sidecar.exists():
        meta = json.loads(sidecar.read_text())
        facts = DatasetFacts(
            int(meta["n"]),
            tuple(int(s) for s in meta["shape"]),
            int(meta["in_channels"]),
            int(meta["num_classes"]),
            f"data/prepared/{dataset}.json",
        )
    elif entry["source"] == "synthetic":
        from segbench.data.synthetic import CLASS_NAMES, VOLUME_CLASS_NAMES

        size = int(entry.get("size", 64))
        gen = entry.get("generator", dataset)
        if gen in VOLUME_CLASS_NAMES:  # 3D: the padded volume side
            shape, classes = (size, size, size), len(VOLUME_CLASS_NAMES[gen])
        else:
            shape, classes = (size, size), len(CLASS_NAMES[gen])
        facts = DatasetFacts(int(entry.get("n", 40)), shape, 1, classes, "synthetic config")
    else:
        ref = REFERENCE_SIZES.get(entry.get("registry_id", dataset))
        if ref is None:
            facts = DatasetFacts(None, None, 1, 2, "unknown (prepare it or pass --n-images)")
        else:
            facts = DatasetFacts(
                ref["n"],
                tuple(ref["shape"]),
                ref["in_channels"],
                ref["classes"],
                "reference size (docs/datasets.md)",
            )
    if n_override is not None:
        facts = DatasetFacts(
            n_override, facts.shape, facts.in_channels, facts.classes, "--n-images"
        )
    return facts


def split_sizes(n: int, folds: int, val_fraction: float, fraction: float) -> tuple[int, int, int]:
    """Approximate ``(n_train, n_val, n_test)`` of one fold (rule of :mod:`segbench.splits`)."""
    n_test = math.ceil(n / folds)
    rest = n - n_test
    n_val = math.ceil(val_fraction * rest)
    n_train_full = max(rest - n_val, 1)
    return max(math.ceil(float(fraction) * n_train_full), 1), n_val, n_test


def exact_split_sizes(path: Path, fold: int, fraction: str) -> tuple[int, int, int] | None:
    """``(n_train, n_val, n_test)`` from a written splits file, or None if it lacks them."""
    if not path.exists():
        return None
    splits = load_splits(path)
    for f in splits.get("folds", []):
        if int(f["fold"]) == int(fold) and fraction in f.get("fractions", {}):
            return len(f["fractions"][fraction]), len(f["val"]), len(f["test"])
    return None


def pixels(facts: DatasetFacts, crop: int | None, dims: int = 2) -> int | None:
    """Input pixels (voxels) of one training sample: the crop (``crop ** dims``), else the
    image size; None when neither is known."""
    if crop:
        return int(crop) ** (len(facts.shape) if facts.shape else dims)
    if facts.shape is None:
        return None
    return int(math.prod(facts.shape))


def table_throughput(model: str, compiled: bool, n_pixels: int | None) -> tuple[float, str]:
    """Training img/s of ``model`` from :data:`H100_THROUGHPUT`, scaled to ``n_pixels``."""
    if model not in H100_THROUGHPUT:
        return float("nan"), f"no figure for {model!r}: pass --img-per-s"
    eager, graphs, source = H100_THROUGHPUT[model]
    base = graphs if compiled else eager
    factor = 1.0 if not n_pixels else min(1.0, REF_PIXELS / n_pixels)
    mode = "CUDA graphs" if compiled else "eager"
    return base * factor, f"{source}; {mode}; x{factor:.3g} for input size"


def time_model_cpu(
    name: str,
    params: Mapping[str, Any],
    in_channels: int,
    classes: int,
    side: int,
    batch: int = 2,
    steps: int = 2,
) -> float:
    """Training img/s of a model on this machine's CPU (Adam + CE; fastest of ``steps`` timed
    steps after one warm-up step, so a busy shared machine does not inflate it).

    ``encoder_weights`` is dropped (random init times the same and downloads nothing); ``side``
    is rounded to the model's input divisor.
    """
    import torch

    from segbench.models import MODEL_INFO, build_model, input_divisor

    p = {k: v for k, v in params.items() if k not in ("name", "encoder_weights", "pretrained")}
    div = input_divisor(name, **p)
    side = max(div, round(side / div) * div)
    dims = MODEL_INFO[name].spatial_dims
    model = build_model(name, in_channels, classes, **p)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, in_channels, *([side] * dims))
    y = torch.randint(0, classes, (batch, *([side] * dims)))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    step()
    best = float("inf")
    for _ in range(max(1, steps)):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return batch / best


def detect_device() -> str:
    """``"cuda:<name>"`` of the first GPU, else ``"cpu"``."""
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda:" + torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    return "cpu"


def _spatial_dims(model_cfg: Mapping[str, Any]) -> int:
    from segbench.models import MODEL_INFO

    info = MODEL_INFO.get(model_cfg["name"])
    return info.spatial_dims if info else 2


def run_table_for(
    config: Mapping[str, Any], root: Path, n_images: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """One row per run with its image counts (no throughput yet)."""
    tr = config["training"]
    batch, epochs = int(tr["batch_size"]), int(tr["epochs"])
    val_every = int(tr.get("val_every", 1))
    facts = {
        ds: dataset_facts(config, ds, root, (n_images or {}).get(ds)) for ds in config["datasets"]
    }
    rows = []
    for run in expand_runs(dict(config)):
        f = facts[run.dataset]
        sizes = exact_split_sizes(root / "results" / "splits" / f"{run.dataset}.json",
                                  run.fold, run.fraction)  # fmt: skip
        if sizes is None and f.n is not None:
            ds_cfg = config["datasets"][run.dataset]
            sizes = split_sizes(f.n, int(ds_cfg.get("folds", config["folds"])),
                                float(ds_cfg.get("val_fraction", config["val_fraction"])),
                                float(run.fraction))  # fmt: skip
        n_train, n_val, n_test = sizes if sizes else (None, None, None)
        steps = tr.get("steps_per_epoch")
        if steps is None and n_train is not None:
            steps = math.ceil(n_train / batch)
        train_img = epochs * steps * batch if steps is not None else None
        eval_img = None
        if n_val is not None:
            eval_img = math.ceil(epochs / val_every) * n_val + n_test
        rows.append(
            {
                **run.wildcards(),
                "model_name": config["models"][run.model]["name"],
                "n_train": n_train,
                "train_images": train_img,
                "eval_images": eval_img,
                "pixels": pixels(f, tr.get("crop"), _spatial_dims(config["models"][run.model])),
                "size_source": f.source,
            }
        )
    return pd.DataFrame(rows)


def estimate(
    config: Mapping[str, Any],
    root: Path,
    img_per_s: float | None = None,
    device: str | None = None,
    n_images: Mapping[str, int] | None = None,
    startup_s: float | None = None,
    cpu_steps: int = 2,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per (dataset, model) totals and the study total.

    Args:
        config: a validated study config (:func:`segbench.config.load_study`).
        root: repository root (for ``data/prepared`` and ``results/splits``).
        img_per_s: measured training throughput; overrides the table and the CPU timing.
        device: ``"cpu"``, ``"cuda:<name>"`` (default: detected).
        n_images: per-dataset image counts overriding what is found.
        startup_s: start-up seconds per job (default: :data:`STARTUP_S` on a GPU,
            :data:`STARTUP_S_CPU` on a CPU).
        cpu_steps: timed steps per model for the CPU fallback.

    Returns:
        ``(table, totals)``: table rows per (dataset, model) with ``runs, jobs, train_images,
        img_per_s, source, hours``; totals ``runs, jobs, hours, device, unit, notes``.
    """
    runs = run_table_for(config, root, n_images)
    device = device or detect_device()
    if startup_s is None:
        startup_s = STARTUP_S_CPU if device == "cpu" else STARTUP_S
    tr = config["training"]
    compiled = tr.get("compile") == "reduce-overhead"
    packed = tr.get("pack", "folds") == "folds"
    speed: dict[tuple[str, str], tuple[float, str]] = {}
    timed: dict[tuple, float] = {}
    for (ds, model), g in runs.groupby(["dataset", "model"], sort=True):
        px = g["pixels"].iloc[0]
        px = None if pd.isna(px) else int(px)
        if img_per_s is not None:
            speed[(ds, model)] = (float(img_per_s), "--img-per-s")
        elif device.startswith("cuda"):
            speed[(ds, model)] = table_throughput(config["models"][model]["name"], compiled, px)
        else:
            mcfg = config["models"][model]
            facts = dataset_facts(config, ds, root, (n_images or {}).get(ds))
            side = int(round(px ** (1 / len(facts.shape)))) if px and facts.shape else 64
            key = (model, facts.in_channels, facts.classes, side)
            if key not in timed:
                timed[key] = time_model_cpu(
                    mcfg["name"], mcfg, facts.in_channels, facts.classes, side, steps=cpu_steps
                )
            ips = timed[key]
            speed[(ds, model)] = (ips, f"timed on this CPU ({cpu_steps} steps, batch 2)")
    rows, unknown_eval = [], []
    for (ds, model), g in runs.groupby(["dataset", "model"], sort=True):
        ips, src = speed[(ds, model)]
        n_runs = len(g)
        keys = ["loss", "fraction", "seed"] if packed else ["loss", "fraction", "seed", "fold"]
        jobs = g.groupby(keys).ngroups
        train = g["train_images"].sum(min_count=len(g))
        evals = g["eval_images"].sum(min_count=len(g))
        if pd.isna(evals) and pd.notna(train):
            evals = 0.0
            unknown_eval.append(ds)
        seconds = (train + VAL_COST * evals) / ips + startup_s * jobs
        rows.append(
            {
                "dataset": ds,
                "model": model,
                "runs": n_runs,
                "jobs": jobs,
                "train_images": train,
                "images_per_run": train / n_runs if pd.notna(train) else float("nan"),
                "img_per_s": ips,
                "hours": seconds / 3600.0,
                "size_source": g["size_source"].iloc[0],
                "throughput_source": src,
            }
        )
    table = pd.DataFrame(rows)
    if img_per_s is not None:
        unit = f"hours at {img_per_s:g} img/s"
    elif device.startswith("cuda"):
        unit = "GPU-hours"
    else:
        unit = "CPU-hours (this machine)"
    notes = []
    if device.startswith("cuda") and img_per_s is None:
        name = device.split(":", 1)[1]
        notes.append(f"throughput table: {THROUGHPUT_SOURCE}")
        if "H100" not in name:
            notes.append(f"figures are H100's; {name} not measured (scale or pass --img-per-s)")
    if int(tr.get("jobs_per_gpu", 1)) > 1:
        notes.append("jobs_per_gpu > 1 (GPU sharing) is not modelled: hours are single-job")
    if unknown_eval:
        names = ", ".join(sorted(set(unknown_eval)))
        notes.append(f"size of {names} unknown: validation/test passes not counted (--n-images)")
    if tr.get("early_stopping"):
        notes.append("early stopping is on: training images are an upper bound")
    totals = {
        "runs": int(table["runs"].sum()),
        "jobs": int(table["jobs"].sum()),
        "hours": float(table["hours"].sum(min_count=1)),
        "device": device,
        "unit": unit,
        "train_rule": "train_pack" if packed else "train",
        "notes": notes,
    }
    return table, totals


def format_report(table: pd.DataFrame, totals: Mapping[str, Any], study: str) -> str:
    """Human-readable estimate."""
    t = table.copy()
    for col in ("train_images", "images_per_run"):
        t[col] = t[col].map(lambda v: "n/a" if pd.isna(v) else f"{v:,.0f}")
    t["img_per_s"] = t["img_per_s"].map(lambda v: "n/a" if pd.isna(v) else f"{v:,.1f}")
    t["hours"] = t["hours"].map(lambda v: "n/a" if pd.isna(v) else f"{v:,.2f}")
    lines = [
        f"study {study}: {totals['runs']} runs in {totals['jobs']} {totals['train_rule']} jobs "
        f"on {totals['device']}",
        "",
        t.to_string(index=False),
        "",
        f"expected total: {totals['hours']:,.2f} {totals['unit']}"
        if not math.isnan(totals["hours"])
        else f"expected total: n/a {totals['unit']} (some sizes or throughputs unknown)",
        "assumptions: images per run = epochs x steps_per_epoch x batch_size (null steps = "
        f"ceil(n_train / batch)); validation/test passes at {VAL_COST:.2f} of a training image; "
        "start-up per job included.",
    ]
    lines += [f"note: {n}" for n in totals["notes"]]
    return "\n".join(lines) + "\n"
