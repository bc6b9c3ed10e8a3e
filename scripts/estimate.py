#!/usr/bin/env python
"""Cost of a study before running it: runs, jobs and expected GPU-hours.

    python scripts/estimate.py --configfile config/studies/paper000.yaml
    python scripts/estimate.py --configfile config/studies/paper002.yaml --img-per-s 300
    python scripts/estimate.py --configfile config/config.yaml --device cpu --json

Counts come from ``segbench.config.load_study`` + ``expand_runs``; throughput from the H100 table
in ``segbench.reporting.estimate`` (source: shared/measurements/h100-training-throughput.md) on
a GPU, from timing a few training steps of each model on this CPU without one, or from
``--img-per-s``. See ``segbench.reporting.estimate`` for every assumption.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from segbench.config import ConfigError, load_study  # noqa: E402
from segbench.reporting.estimate import estimate, format_report  # noqa: E402


def _n_images(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not value.isdigit():
            raise SystemExit(f"--n-images expects DATASET=N, got {item!r}")
        out[name] = int(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--configfile", required=True, help="study config (YAML)")
    ap.add_argument("--img-per-s", type=float, help="measured training images/s (all models)")
    ap.add_argument("--device", help="cpu | cuda:<name> (default: detected)")
    ap.add_argument(
        "--n-images", action="append", default=[], metavar="DATASET=N",
        help="image count of a dataset not prepared yet (repeatable)",
    )  # fmt: skip
    ap.add_argument(
        "--startup-s",
        type=float,
        default=None,
        help="start-up seconds per job (default: 15 on a GPU, the H100 cold import; 3.4 on a CPU)",
    )
    ap.add_argument("--cpu-steps", type=int, default=2, help="timed steps per model on CPU")
    ap.add_argument("--root", default=str(REPO), help="repository root (data/, results/)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args(argv)
    try:
        config = load_study(args.configfile)
    except ConfigError as err:
        print(f"segbench config error: {err}", file=sys.stderr)
        return 1
    table, totals = estimate(
        config,
        Path(args.root),
        img_per_s=args.img_per_s,
        device=args.device,
        n_images=_n_images(args.n_images),
        startup_s=args.startup_s,
        cpu_steps=args.cpu_steps,
    )
    if args.json:
        payload = {"study": config["study"], **totals, "rows": table.to_dict(orient="records")}
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(format_report(table, totals, config["study"]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
