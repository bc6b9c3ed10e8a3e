"""Time the evaluation metrics on one synthetic 20-image 256x256 test set.

Prints seconds per test set for each metric group (overlap, surface, calibration, reliability
bins) for a 5-class case (Drosophila-like blobs), a binary thin-structure case (CHASE-like
vessels) and one binary 3D volume, probabilities stored as float16 as in ``probs.npz``. Median of ``--repeats`` runs.
MONAI's import (paid once per process) is reported separately.

Usage: .venv/bin/python benchmarks/eval_speed.py [--repeats 3] [--images 20] [--size 256]
       [--volume 96 128 128]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from scipy import ndimage


def _smooth_field(rng: np.random.Generator, c: int, size: int, sigma: float) -> np.ndarray:
    noise = rng.normal(size=(c, size, size))
    return np.stack([ndimage.gaussian_filter(n, sigma) for n in noise])


def make_case(n_classes: int, n_images: int, size: int, seed: int = 0, vessels: bool = False):
    """Synthetic (probs float16 [C, H, W], target int [H, W]) pairs with realistic errors."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_images):
        if vessels:
            field = _smooth_field(rng, 1, size, 3.0)[0]
            target = (np.abs(field) < 0.02 * field.std() / 0.1).astype(np.int64)  # thin ridges
        else:
            target = _smooth_field(rng, n_classes, size, 6.0).argmax(0)
        onehot = np.eye(n_classes)[target].transpose(2, 0, 1)
        logits = 4.0 * onehot + 3.0 * _smooth_field(rng, n_classes, size, 2.0) / 0.15
        logits += rng.normal(0, 0.5, logits.shape)
        p = np.exp(logits - logits.max(0))
        pairs.append(((p / p.sum(0)).astype(np.float16), target))
    return pairs


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--volume", type=int, nargs=3, default=[96, 128, 128], metavar="N")
    args = parser.parse_args()

    t0 = time.perf_counter()
    import monai.metrics.utils  # noqa: F401  (the surface module imports it lazily)

    import_s = time.perf_counter() - t0
    from segbench.metrics import dataset_calibration, image_calibration, image_metrics
    from segbench.metrics import reliability_bins as rel_bins

    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, "
        f"{os.cpu_count()} logical CPUs, Python {platform.python_version()}"
    )
    print(f"MONAI import (once per process): {import_s:.2f} s")
    print(
        f"test set: {args.images} images of {args.size}x{args.size}, float16 probabilities; "
        f"median of {args.repeats} runs; seconds per test set"
    )
    for name, c, vessels in (("5-class blobs", 5, False), ("binary vessels", 2, True)):
        pairs = make_case(c, args.images, args.size, vessels=vessels)
        probs, targets = [p for p, _ in pairs], [t for _, t in pairs]
        image_metrics(*pairs[0], c)  # warm-up
        ov = _time(lambda: [image_metrics(p, t, c, surface=False) for p, t in pairs], args.repeats)  # noqa: B023
        full = _time(lambda: [image_metrics(p, t, c) for p, t in pairs], args.repeats)  # noqa: B023
        cal = _time(lambda: [image_calibration(p, t) for p, t in pairs], args.repeats)  # noqa: B023
        pooled = _time(lambda: dataset_calibration(probs, targets), args.repeats)  # noqa: B023
        rel = _time(lambda: rel_bins(probs, targets), args.repeats)  # noqa: B023
        fg = np.mean([(t > 0).mean() for t in targets])
        print(f"\n[{name}] C={c}, mean foreground fraction {fg:.3f}")
        print(f"  overlap only (IoU, Dice)               {ov:7.3f} s")
        print(
            f"  surface (HD95, NSD) = full - overlap   {full - ov:7.3f} s "
            f"({1000 * (full - ov) / (args.images * c):.1f} ms per image-class)"
        )
        print(f"  image_metrics, all (overlap + surface) {full:7.3f} s")
        print(f"  image_calibration (NLL, Brier, ECE...) {cal:7.3f} s")
        print(f"  dataset_calibration (pooled)           {pooled:7.3f} s")
        print(f"  reliability_bins                       {rel:7.3f} s")
        print(f"  TOTAL per test set                     {full + cal + rel:7.3f} s")

    # one 3D volume (paper 002's BraTS/KiTS are 3D): binary, smooth blobs
    rng = np.random.default_rng(1)
    shape = tuple(args.volume)
    field = ndimage.gaussian_filter(rng.normal(size=shape), 6.0)
    target = (field > np.quantile(field, 0.97)).astype(np.int64)
    noise = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    logit = 6.0 * (2 * target - 1) + 40.0 * noise
    p1 = 1 / (1 + np.exp(-logit))
    prob = np.stack([1 - p1, p1]).astype(np.float16)
    vol_ov = _time(lambda: image_metrics(prob, target, 2, surface=False), args.repeats)
    vol_full = _time(lambda: image_metrics(prob, target, 2, spacing=(1.0, 1.0, 1.0)), args.repeats)
    vol_cal = _time(lambda: image_calibration(prob, target), args.repeats)
    print(f"\n[3D binary volume] {shape[0]}x{shape[1]}x{shape[2]}, foreground {target.mean():.3f}")
    print(f"  overlap only                           {vol_ov:7.3f} s")
    print(f"  surface (HD95, NSD), both classes      {vol_full - vol_ov:7.3f} s")
    print(f"  image_calibration                      {vol_cal:7.3f} s")


if __name__ == "__main__":
    main()
