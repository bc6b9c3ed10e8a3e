"""Estimate the GPU memory of 3D training (issue 20, docs/3d.md) without a GPU.

Method: one forward pass of the model at a small patch on the CPU, counting the bytes of the
tensors autograd saves for the backward pass (``torch.autograd.graph.saved_tensors_hooks``,
each storage once). Saved activations scale linearly with the number of voxels (every layer's
output is proportional to the patch volume), so they are scaled to the paper patch; parameters,
gradients and SGD momentum (3 copies, float32) are added. ``--amp`` halves the activation bytes
(float16 autocast saves most activations in half precision; an approximation). Not included:
cuDNN workspaces, the CUDA context (~0.5 GB) and allocator fragmentation - add ~20 %.

    PYTHONPATH=src python benchmarks/memory_3d.py --model res_unet_3d --patch 96 96 80 --batch 2
"""

from __future__ import annotations

import argparse

import torch

from segbench.models import build_model


def saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd saves during ``model(x)``."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum()
    return sum(seen.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="res_unet_3d")
    ap.add_argument("--patch", type=int, nargs=3, default=[96, 96, 80])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--probe", type=int, default=32, help="probe patch side (cube) on the CPU")
    ap.add_argument("--amp", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    model = build_model(a.model, in_channels=1, classes=a.classes).train()
    n_params = sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 1, a.probe, a.probe, a.probe)
    act = saved_bytes(model, x) * (a.batch * a.patch[0] * a.patch[1] * a.patch[2]) / a.probe**3
    if a.amp:
        act /= 2
    state = 3 * 4 * n_params  # weights, gradients, SGD momentum (float32)
    gib = 1024**3
    print(
        f"{a.model} patch {a.patch} batch {a.batch} classes {a.classes}"
        f"{' amp' if a.amp else ''}: params {n_params / 1e6:.1f} M, "
        f"saved activations {act / gib:.1f} GiB + weights/grads/momentum {state / gib:.2f} GiB "
        f"= {(act + state) / gib:.1f} GiB (+ ~20 % workspace / fragmentation)"
    )


if __name__ == "__main__":
    main()
