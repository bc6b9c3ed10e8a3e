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


@torch.no_grad()
def predict_volume_logits(
    model: nn.Module,
    image: torch.Tensor,
    roi_size: tuple[int, ...],
    device: torch.device,
    amp: bool,
) -> torch.Tensor:
    """Logits ``[C, *shape]`` (float32, on the device) of one volume ``[C_in, *shape]`` by
    sliding windows of ``roi_size`` (:func:`segbench.inference.sliding_window_logits`: overlap
    0.5, Gaussian weighting, nnU-Net's test time; papers 002 App. D and 003 l.746), the windows
    forwarded with bf16 autocast + channels_last_3d on CUDA as in the training step."""
    from segbench.inference import sliding_window_logits

    model.eval()
    cuda = device.type == "cuda"

    def forward(xb: torch.Tensor) -> torch.Tensor:
        if cuda:
            xb = xb.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and cuda):
            return model(xb).float()

    return sliding_window_logits(forward, image[None].to(device), roi_size)[0].float()


@torch.no_grad()
def volume_validation(
    model: nn.Module,
    loss_fn: nn.Module | None,
    volumes: list[tuple[torch.Tensor, torch.Tensor]],
    roi_size: tuple[int, ...],
    num_classes: int,
    include_background: bool,
    device: torch.device,
    amp: bool,
) -> tuple[float, float | None]:
    """Validation of a 3D run: the dataset-level mIoU (:func:`mean_iou`, one confusion over
    every voxel of the unpadded validation volumes) and, with ``loss_fn``, the mean training
    loss over the volumes (each volume's sliding-window logits as one sample; a copy of
    ``loss_fn``, as :func:`validation_loss`)."""
    fn = copy.deepcopy(loss_fn) if loss_fn is not None else None
    probs, labels, total = [], [], 0.0
    for image, label in volumes:
        logits = predict_volume_logits(model, image, roi_size, device, amp)
        y = label.to(device)
        probs.append(torch.softmax(logits, dim=0).reshape(num_classes, -1))
        labels.append(y.reshape(-1))
        if fn is not None:
            total += float(fn(logits[None], y[None]).double())
    miou = mean_iou(
        torch.cat(probs, 1)[None], torch.cat(labels)[None], num_classes, include_background
    )
    return miou, (total / len(volumes) if fn is not None else None)
