"""Forward passes outside the training step: softmax probabilities, the validation mIoU used
for model selection, and the training loss on the validation set (``scheduler_monitor:
val_loss``). bf16 autocast + channels_last on CUDA, as in the training step."""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, device: torch.device, amp: bool, batch: int = 8
) -> torch.Tensor:
    """Softmax probabilities ``[N, C, H, W]`` (float32, on the device)."""
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch):
        xb = x[i : i + batch]
        if device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"
        ):
            logits = model(xb)
        out.append(torch.softmax(logits.float(), dim=1))
    return torch.cat(out)


def mean_iou(
    prob: torch.Tensor, y: torch.Tensor, num_classes: int, include_background: bool
) -> float:
    """Dataset-level mIoU (confusion over all pixels) for model selection on the validation set;
    a class absent from both prediction and truth scores 1."""
    pred = prob.argmax(1).reshape(-1)
    cm = torch.bincount(y.reshape(-1) * num_classes + pred, minlength=num_classes**2)
    cm = cm.reshape(num_classes, num_classes).double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.ones_like(tp))
    if not include_background:
        iou = iou[1:]
    return float(iou.mean())


@torch.no_grad()
def validation_loss(
    model: nn.Module,
    loss_fn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    amp: bool,
    batch: int = 8,
) -> float:
    """Mean training loss over the validation set (batches weighted by size), evaluated with a
    copy of ``loss_fn`` so that a stateful loss (e.g. the balance switch) is left untouched."""
    fn = copy.deepcopy(loss_fn)
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    for i in range(0, x.shape[0], batch):
        xb = x[i : i + batch]
        if device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(xb)
        total += fn(logits.float(), y[i : i + batch]).double() * xb.shape[0]
    return float(total) / x.shape[0]
