"""Mini-grid through ``snakemake`` end to end: one Snakemake job per run vs packed jobs.

The grid (24 runs by default: 1 synthetic dataset x 1 model x 4 losses x 2 fractions x 3 folds,
300 optimiser steps each) is run from scratch once per packing mode, each in its own working
directory, with the same ``--cores``. Dataset preparation and splits are made first and not
timed; the timed part is every ``train``/``train_pack`` job plus Snakemake's own scheduling,
i.e. what a researcher waits for. Printed: wall seconds, seconds per run, effective training
images/s (all overheads included), and the paper-000 grid extrapolated at that effective rate
with ``segbench.reporting.estimate`` (meaningful only at the papers' protocol: ``--size 256
--crop 224 --batch 4`` on a GPU).

Modes: ``none`` (one job, one process per run), ``sequential`` / ``stacked`` / ``interleaved``
(``training.pack: folds`` with that ``training.pack_mode``: one job per 3 folds).

Usage:
    python benchmarks/minigrid.py --device cpu                         # CPU, tiny protocol
    python benchmarks/minigrid.py --device cuda --size 256 --crop 224 --model r50_unet \\
        --modes none,sequential,stacked,interleaved --compile reduce-overhead
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from segbench.config import expand_runs, load_study  # noqa: E402
from segbench.paths import RUN_FILES  # noqa: E402
from segbench.reporting.estimate import estimate  # noqa: E402

MODELS = {
    "unet_tiny": {"name": "unet", "base_channels": 8, "depth": 3},
    "unet": {"name": "unet"},
    "r50_unet": {"name": "r50_unet"},
}
LOSSES = {
    "ce": {"name": "ce"},
    "dice": {"name": "dice"},
    "dice_ce": {"name": "dice_ce", "w_dice": 0.5, "w_ce": 0.5},
    "ml": {"name": "ml"},
}


def study(args: argparse.Namespace, mode: str) -> dict:
    steps_per_epoch = args.steps // args.epochs
    return {
        "study": f"minigrid_{mode}",
        "split_seed": 0,
        "folds": 3,
        "seeds": [0],
        "fractions": [1.0, 0.5],
        "val_fraction": 0.2,
        "datasets": {
            "bench": {
                "source": "synthetic",
                "generator": "synth_organs",
                "n": args.n,
                "size": args.size,
            }
        },
        "models": {"m": MODELS[args.model]},
        "losses": LOSSES,
        "training": {
            "epochs": args.epochs,
            "steps_per_epoch": steps_per_epoch,
            "batch_size": args.batch,
            "crop": args.crop or args.size,
            "lr": 0.001,
            "val_every": args.epochs,
            "checkpoint_every": args.epochs,
            "device": args.device,
            "threads": args.threads,
            "compile": args.compile,
            "pack": "none" if mode == "none" else "folds",
            "pack_mode": "sequential" if mode == "none" else mode,
            "jobs_per_gpu": args.jobs_per_gpu,
        },
    }


def run_mode(args: argparse.Namespace, mode: str, root: Path) -> dict:
    wd = root / mode
    wd.mkdir()
    cfg = study(args, mode)
    cfg_path = wd / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = load_study(cfg_path)
    runs = expand_runs(config)
    base = [
        str(Path(sys.executable).parent / "snakemake"),
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(wd),
        "--configfile",
        str(cfg_path),
        "--cores",
        str(args.cores),
    ]
    if args.device == "cuda":
        base += ["--resources", f"gpu={args.gpus * args.jobs_per_gpu}"]
    log = (wd / "snakemake.log").open("w")  # noqa: SIM115
    # untimed: data + splits
    subprocess.run([*base, "results/splits/bench.json"], check=True, stdout=log, stderr=log)
    targets = [
        RUN_FILES["probs"].format(
            dataset=r.dataset,
            model=r.model,
            loss=r.loss,
            fraction=r.fraction,
            seed=r.seed,
            fold=r.fold,
        )
        for r in runs
    ]
    t0 = time.perf_counter()
    proc = subprocess.run([*base, *targets], stdout=log, stderr=log)
    if proc.returncode:
        raise SystemExit(f"snakemake failed in mode {mode}: see {wd / 'snakemake.log'}")
    wall = time.perf_counter() - t0
    images = len(runs) * args.steps * args.batch
    return {
        "mode": mode,
        "runs": len(runs),
        "jobs": len(runs) if mode == "none" else len(runs) // 3,
        "wall_s": wall,
        "s_per_run": wall / len(runs),
        "img_per_s": images / wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default="unet_tiny", choices=sorted(MODELS))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--crop", type=int, default=None)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--n", type=int, default=40, help="images in the synthetic dataset")
    ap.add_argument("--steps", type=int, default=300, help="optimiser steps per run")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--gpus", type=int, default=1)
    ap.add_argument("--jobs-per-gpu", type=int, default=1)
    ap.add_argument("--compile", default="none", choices=["none", "default", "reduce-overhead"])
    ap.add_argument("--modes", default="none,sequential,stacked,interleaved")
    ap.add_argument("--paper", default=str(REPO / "config/studies/paper000.yaml"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="minigrid_") as d:
        for mode in args.modes.split(","):
            rows.append(run_mode(args, mode, Path(d)))
            print(rows[-1], flush=True)
    paper = load_study(args.paper)
    print(
        f"\n# mini-grid ({args.device}, model {args.model}, {args.size}x{args.size} crop "
        f"{args.crop or args.size}, batch {args.batch}, {args.steps} steps/run, --cores {args.cores}, "
        f"compile {args.compile})\n"
    )
    print(
        "| mode | runs | jobs | wall s | s/run | effective img/s | paper-000 grid hours at that rate |"
    )
    print("|---|---|---|---|---|---|---|")
    base = rows[0]["wall_s"]
    for r in rows:
        _, totals = estimate(
            paper, REPO, img_per_s=r["img_per_s"], startup_s=0.0, device=args.device
        )
        print(
            f"| {r['mode']} | {r['runs']} | {r['jobs']} | {r['wall_s']:.1f} | {r['s_per_run']:.2f} "
            f"| {r['img_per_s']:.1f} | {totals['hours']:.1f} |"
        )
    for r in rows[1:]:
        print(f"{r['mode']}: {base / r['wall_s']:.2f}x faster than {rows[0]['mode']}")
    if args.size < 224:
        print(
            "note: protocol differs from paper 000 (256x256, crop 224): the hours are illustrative only"
        )


if __name__ == "__main__":
    main()
