"""Print a Markdown table of every registered model: parameters (default and tiny config),
CPU forward+backward time, and optionally whether ``torch.compile`` (inductor) works.

Usage::

    .venv/bin/python benchmarks/model_params.py                 # params only
    .venv/bin/python benchmarks/model_params.py --time 224      # + fwd+bwd seconds, batch 1
    .venv/bin/python benchmarks/model_params.py --compile       # + inductor compile check (slow)

Counts use ``in_channels=3, classes=2`` for 2D models and ``in_channels=1, classes=2`` for
3D models. Numbers are printed, never asserted (tests/models/ asserts the counts).
"""

from __future__ import annotations

import argparse
import time

import torch

from segbench.models import MODEL_INFO, build_model, list_models


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fwd_bwd_seconds(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    x = torch.randn(*shape)
    model.train()
    model(x).float().mean().backward()  # warm-up
    model.zero_grad(set_to_none=True)
    t = time.perf_counter()
    model(x).float().mean().backward()
    return time.perf_counter() - t


def compile_check(name: str, shape: tuple[int, ...]) -> str:
    info = MODEL_INFO[name]
    torch._dynamo.reset()
    model = build_model(name, shape[1], 2, **info.tiny)
    t = time.perf_counter()
    try:
        compiled = torch.compile(model, fullgraph=True)
        compiled(torch.randn(*shape)).mean().backward()
    except Exception as err:  # report, never raise: this is a survey
        return f"fails: {type(err).__name__}"
    return f"ok ({time.perf_counter() - t:.0f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time", type=int, default=0, help="2D size for fwd+bwd timing")
    parser.add_argument("--compile", action="store_true", help="inductor compile of tiny configs")
    args = parser.parse_args()
    torch.manual_seed(0)
    header = ["model", "params (default)", "params (tiny)"]
    if args.time:
        header.append(f"fwd+bwd s @{args.time} b1")
    if args.compile:
        header.append("torch.compile tiny")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in list_models():
        info = MODEL_INFO[name]
        c_in = 3 if info.spatial_dims == 2 else 1
        row = [f"`{name}`"]
        model = build_model(name, c_in, 2)
        row.append(f"{n_params(model):,}")
        row.append(f"{n_params(build_model(name, c_in, 2, **info.tiny)):,}")
        if args.time:
            if info.spatial_dims == 2:
                row.append(f"{fwd_bwd_seconds(model, (1, c_in, args.time, args.time)):.2f}")
            else:
                row.append("-")
        del model
        if args.compile:
            size = (64, 64) if info.spatial_dims == 2 else (32, 32, 32)
            row.append(compile_check(name, (2, c_in, *size)))
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
