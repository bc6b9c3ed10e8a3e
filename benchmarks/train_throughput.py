"""Training throughput: the plain reference loop vs the segbench engine, side by side in one run.

Prints images/s (a markdown table) for, per model:
- ``reference``: fp32 eager loop, batches from a torch DataLoader over CPU arrays (random crop +
  flip in the workers' collate), ``loss.item()`` every step (a host sync per step);
- ``engine``: ``segbench.train.train_run`` (data on the device, augmentation there, bf16 autocast
  + channels_last on CUDA, one sync per epoch), validation off;
- ``engine+compile``: the same with ``torch.compile(mode="reduce-overhead")`` (CUDA graphs;
  CUDA only);
- ``stacked xK`` / ``interleaved xK`` (+ ``interleaved+compile xK`` on CUDA): K runs of one pack
  stepped together (``training.pack_mode``: one vmapped model, or turns on K CUDA streams),
  aggregate img/s of the second epoch's step loop, as ``engine``;
- ``packed xK``: ``train_pack`` of K runs in one process (sequential), counted from process start of
  the pack (import and dataset load shared), vs K separate ``python -c`` processes (``per-process``).

Usage:
    python benchmarks/train_throughput.py --device cpu --size 64 --steps 30        # CPU smoke
    python benchmarks/train_throughput.py --device cuda --size 256 --batch 4 --steps 300   # paper protocol
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from segbench.data.io import save_prepared
from segbench.losses import build_loss
from segbench.models import build_model
from segbench.splits import dumps, make_splits
from segbench.train import RunSpec, train_pack, train_run

MODELS = {
    "unet": {"name": "unet", "base_channels": 32},
    "r50_unet": {"name": "r50_unet"},
}


def _dataset(tmp: Path, n: int, size: int, classes: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    images = rng.random((n, 1, size, size), dtype=np.float32)
    masks = rng.integers(0, classes, (n, size, size)).astype(np.uint8)
    ids = [f"s{i:03d}" for i in range(n)]
    meta = {
        "name": "bench",
        "num_classes": classes,
        "class_names": [f"c{i}" for i in range(classes)],
        "in_channels": 1,
    }
    npz = tmp / "bench.npz"
    save_prepared(npz, images, masks, ids, meta)
    splits = tmp / "splits.json"
    splits.write_text(dumps(make_splits(ids, 5, [1], seed=0, dataset="bench")))
    return npz, splits


def reference_loop(
    model_cfg: dict, npz: Path, device: str, batch: int, steps: int, crop: int, classes: int
) -> float:
    """fp32 eager, CPU DataLoader with random crop + flip, .item() per step. Returns img/s."""
    with np.load(npz) as z:
        images, masks = z["images"], z["masks"].astype(np.int64)
    rng = np.random.default_rng(0)

    class DS(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 10**9

        def __getitem__(self, i: int):
            k = int(rng.integers(len(images)))
            h, w = images.shape[2:]
            y0, x0 = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
            x, y = (
                images[k, :, y0 : y0 + crop, x0 : x0 + crop],
                masks[k, y0 : y0 + crop, x0 : x0 + crop],
            )
            if rng.random() < 0.5:
                x, y = x[..., ::-1], y[..., ::-1]
            return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())

    loader = iter(
        torch.utils.data.DataLoader(
            DS(), batch_size=batch, num_workers=2 if device == "cuda" else 0
        )
    )
    params = {k: v for k, v in model_cfg.items() if k != "name"}
    model = build_model(model_cfg["name"], in_channels=1, classes=classes, **params).to(device)
    loss_fn = build_loss("dice_ce", w_dice=0.5, w_ce=0.5)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    warm = max(3, steps // 10)
    for i in range(steps + warm):
        if i == warm:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = next(loader)
        x, y = x.to(device), y.to(device)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def _spec(
    model_key: str,
    model_cfg: dict,
    device: str,
    batch: int,
    steps: int,
    crop: int,
    fold: int = 0,
    compile_mode: str = "none",
    pack_mode: str = "sequential",
) -> RunSpec:
    return RunSpec(
        dataset="bench",
        model=model_key,
        loss="dice_ce",
        fraction="1",
        seed=0,
        fold=fold,
        model_cfg=model_cfg,
        loss_cfg={"name": "dice_ce", "w_dice": 0.5, "w_ce": 0.5},
        training={
            "batch_size": batch,
            "epochs": 2,
            "steps_per_epoch": steps,
            "crop": crop,
            "hflip": True,
            "val_every": 10**6,
            "checkpoint_every": 10**6,
            "device": device,
            "threads": torch.get_num_threads(),
            "deterministic": False,
            "amp": True,
            "compile": compile_mode,
            "pack_mode": pack_mode,
            "lr": 1e-3,
        },
        evaluation={"include_background": True},
    )


def engine(spec: RunSpec, npz: Path, splits: Path, tmp: Path) -> float:
    """img/s of the second training epoch as the engine logs it (timings.csv ``seconds``: the
    step loop only, without model build, warm-up/compilation, validation or test prediction)."""
    out = tmp / f"run_{time.time_ns()}"
    train_run(spec, npz, splits, out)
    seconds = float((out / "timings.csv").read_text().splitlines()[2].split(",")[1])
    return spec.training["steps_per_epoch"] * spec.training["batch_size"] / seconds


def concurrent(specs: list[RunSpec], npz: Path, splits: Path, tmp: Path) -> float:
    """Aggregate img/s of K runs stepped together (their ``pack_mode``), second epoch's step
    loop (run 0's timings row spans the joint loop of all K runs)."""
    outs = [tmp / f"conc_{time.time_ns()}_{k}" for k in range(len(specs))]
    train_pack(specs, npz, splits, outs)
    seconds = float((outs[0] / "timings.csv").read_text().splitlines()[2].split(",")[1])
    t = specs[0].training
    return len(specs) * t["steps_per_epoch"] * t["batch_size"] / seconds


CHILD = "import sys,json;from segbench.train import RunSpec,train_run;s=RunSpec(**json.loads(sys.argv[1]));train_run(s,sys.argv[2],sys.argv[3],sys.argv[4])"
PACK_CHILD = (
    "import sys,json;from segbench.train import RunSpec,train_pack;"
    "ss=[RunSpec(**d) for d in json.loads(sys.argv[1])];train_pack(ss,sys.argv[2],sys.argv[3],json.loads(sys.argv[4]))"
)


def packed_vs_processes(
    specs: list[RunSpec], npz: Path, splits: Path, tmp: Path
) -> tuple[float, float]:
    """img/s of K runs: one process (train_pack) vs K processes one after the other."""
    imgs = sum(
        s.training["epochs"] * s.training["steps_per_epoch"] * s.training["batch_size"]
        for s in specs
    )
    outs = [str(tmp / f"pack_{i}") for i in range(len(specs))]
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            PACK_CHILD,
            json.dumps([s.as_dict() for s in specs]),
            str(npz),
            str(splits),
            json.dumps(outs),
        ],
        check=True,
    )
    packed = imgs / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i, s in enumerate(specs):
        subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                json.dumps(s.as_dict()),
                str(npz),
                str(splits),
                str(tmp / f"proc_{i}"),
            ],
            check=True,
        )
    return packed, imgs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--pack", type=int, default=4)
    ap.add_argument("--models", default="unet,r50_unet")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    crop = args.size
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        npz, splits = _dataset(tmp, 40, args.size + 32, args.classes)
        rows = []
        for key in args.models.split(","):
            cfg = MODELS[key]
            ref = reference_loop(cfg, npz, args.device, args.batch, args.steps, crop, args.classes)
            spec = functools.partial(_spec, key, cfg, args.device, args.batch, args.steps, crop)
            eng = engine(spec(), npz, splits, tmp)
            row = {"model": key, "reference": ref, "engine": eng}
            if args.device == "cuda":
                row["engine+compile"] = engine(
                    spec(compile_mode="reduce-overhead"), npz, splits, tmp
                )

            def pack(
                mode: str, compile_mode: str = "none", spec: functools.partial = spec
            ) -> list[RunSpec]:
                return [
                    spec(fold=k % 5, compile_mode=compile_mode, pack_mode=mode)
                    for k in range(args.pack)
                ]

            k = args.pack
            row[f"stacked x{k}"] = concurrent(pack("stacked"), npz, splits, tmp)
            row[f"interleaved x{k}"] = concurrent(pack("interleaved"), npz, splits, tmp)
            if args.device == "cuda":
                row[f"interleaved+compile x{k}"] = concurrent(
                    pack("interleaved", "reduce-overhead"), npz, splits, tmp
                )
            specs = pack("sequential")
            row[f"packed x{args.pack}"], row[f"per-process x{args.pack}"] = packed_vs_processes(
                specs, npz, splits, tmp
            )
            rows.append(row)
        dev = (
            torch.cuda.get_device_name()
            if args.device == "cuda"
            else f"CPU ({torch.get_num_threads()} threads)"
        )
        print(
            f"\n# train throughput, img/s ({dev}; {args.size}x{args.size}, batch {args.batch}, {args.classes} classes, {args.steps} steps, Dice+CE, Adam)\n"
        )
        cols = list(rows[0])
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print(
                "| "
                + " | ".join(r[c] if isinstance(r[c], str) else f"{r[c]:.1f}" for c in cols)
                + " |"
            )
        for r in rows:
            ratios = ", ".join(
                f"{c} {r[c] / r['reference']:.2f}x" for c in cols if c not in ("model", "reference")
            )
            print(f"{r['model']}: vs reference: {ratios}")


if __name__ == "__main__":
    main()
