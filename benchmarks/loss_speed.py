"""Time forward + backward of every registered loss relative to ``ce`` (not a test).

Usage: ``python benchmarks/loss_speed.py [--device cpu|cuda] [--shape 4 5 256 256] [--repeats 5]
[--threads N] [--compile]``

Logits ``[B, C, H, W]`` (default ``[4, 5, 256, 256]``, float32) with random targets; losses that
accept only C = 2 (surgery, inter_cbl, balance) are timed on ``[B, 2, H, W]`` and compared with
``ce`` on that same shape. Each loss is timed alternately with ``ce`` (one warm-up each, then ``--repeats`` runs of both);
the table gives the loss's best time and its ratio to the best ``ce`` time seen on the same shape
during the whole run (best-of-N is the least disturbed estimate on a shared machine). On CUDA the
device is synchronised around each run. Prints a markdown table.
The last column counts the aten operators of one forward + backward (``ce``: 7); at this size on
a GPU nearly every operator costs a kernel launch (a few microseconds) that exceeds its memory
traffic, so the count is a rough proxy of the GPU ratio where no GPU is at hand.
Target (issue 3): every loss within 3x of ``ce`` on the GPU except the top-k family.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from segbench.losses import LOSSES, build_loss, list_losses

EXTRA_VARIANTS: list[tuple[str, dict]] = [
    ("balance", {"switch": "always"}),
    ("caml", {"confidence": "pixel"}),
]
TOPK_FAMILY = {"topk", "topk_thr", "inter_cbl", "intra_cbl", "balance"}


_NO_KERNEL = (
    "view",
    "alias",
    "detach",
    "squeeze",
    "unsqueeze",
    "expand",
    "permute",
    "transpose",
    "as_strided",
    "select",
    "slice",
    "reshape",
    "_unsafe_view",
    "t.default",
)


class _OpCounter(TorchDispatchMode):
    """Counts dispatched aten operators that launch work (views and aliases excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if not any(k in str(func) for k in _NO_KERNEL):
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(loss: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor) -> int:
    """Aten operators in one forward + backward: on a GPU at this size nearly every one is a
    kernel launch whose overhead exceeds its memory traffic, so the count is a proxy of GPU time."""
    z = logits[:1, :, :16, :16].detach().clone().requires_grad_(True)
    with _OpCounter() as counter:
        loss(z, target[:1, :16, :16]).backward()
    return counter.count


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _once(loss: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor) -> float:
    z = logits.detach().clone().requires_grad_(True)
    _sync(z.device)
    t0 = time.perf_counter()
    loss(z, target).backward()
    _sync(z.device)
    return time.perf_counter() - t0


def time_relative(
    loss: torch.nn.Module,
    ce: torch.nn.Module,
    logits: torch.Tensor,
    target: torch.Tensor,
    repeats: int,
) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of one forward + backward of ``loss`` and of ``ce``.

    The two are timed alternately (after one warm-up each) so that load from other processes
    on a shared machine affects both alike; the minimum is the least disturbed run.
    """
    _once(loss, logits, target)
    _once(ce, logits, target)
    t_loss, t_ce = [], []
    for _ in range(repeats):
        t_ce.append(_once(ce, logits, target))
        t_loss.append(_once(loss, logits, target))
    return min(t_loss), min(t_ce)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--shape", type=int, nargs=4, default=[4, 5, 256, 256], metavar=("B", "C", "H", "W")
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="time torch.compile(loss) (and of ce)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    b, c, h, w = args.shape
    g = torch.Generator().manual_seed(args.seed)
    inputs = {}
    for classes in sorted({c, 2}):
        logits = torch.randn(b, classes, h, w, generator=g).to(device)
        target = torch.randint(0, classes, (b, h, w), generator=g).to(device)
        inputs[classes] = (logits, target)
    ce = build_loss("ce")
    if args.compile:
        ce = torch.compile(ce)
    ce_best: dict[int, float] = {}
    rows = []
    for name, params in [(n, {}) for n in list_losses()] + EXTRA_VARIANTS:
        cls = LOSSES.get(name)
        max_c = getattr(cls, "max_classes", None)
        classes = (
            2 if (max_c is not None and c > max_c) or getattr(cls, "min_classes", 1) > c else c
        )
        loss = build_loss(name, **params).to(device)
        ops = count_ops(loss, *inputs[classes])
        if args.compile:
            loss = torch.compile(loss)
        seconds, ce_seconds = time_relative(loss, ce, *inputs[classes], args.repeats)
        ce_best[classes] = min(ce_best.get(classes, float("inf")), ce_seconds)
        label = name + (
            "" if not params else "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
        )
        rows.append((label, classes, seconds, ops, name in TOPK_FAMILY))

    dev = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (f"{platform.machine()} CPU, {torch.get_num_threads()} threads")
    )
    mode = ", torch.compile" if args.compile else ", eager"
    print(
        f"Loss forward+backward{mode}, logits [{b}, C, {h}, {w}] float32, device {dev}, "
        f"torch {torch.__version__}, best of {args.repeats} (alternating with ce), {date.today().isoformat()}\n"
    )
    ce_ops = count_ops(ce, *inputs[c])
    print("| loss | C | ms | x ce | aten ops (x ce) |")
    print("|---|---|---|---|---|")
    for label, classes, seconds, ops, topk in rows:
        flag = " (top-k family)" if topk else ""
        print(
            f"| `{label}`{flag} | {classes} | {seconds * 1e3:.1f} | {seconds / ce_best[classes]:.2f} | "
            f"{ops} ({ops / ce_ops:.1f}) |"
        )
    for classes, seconds in sorted(ce_best.items()):
        print(
            f"\n`ce` best time with C={classes}: {seconds * 1e3:.2f} ms (the reference of 'x ce')."
        )


if __name__ == "__main__":
    main()
