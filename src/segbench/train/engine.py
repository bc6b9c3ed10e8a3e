"""Training engine: one grid cell (dataset, model, loss, fraction, seed, fold) -> one run folder.

Design (see docs/training.md):
- the prepared split is held on the device; crop + flip happen there (no DataLoader, no workers);
- the step loop accumulates the loss on the device and synchronises once per epoch;
- bf16 autocast + channels_last on CUDA; plain fp32 on CPU;
- the resume checkpoint (model, optimiser, scheduler, RNG states, history) is written atomically
  every ``checkpoint_every`` epochs; a killed run resumes from it and, on CPU, ends with the same
  metrics as an uninterrupted run (same seed -> same batches, crops and dropout masks);
- a non-finite training loss stops the run, which is recorded as ``diverged`` with its epoch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segbench import faults
from segbench.data.io import PreparedDataset, load_prepared
from segbench.io_utils import atomic_open, atomic_write_json, atomic_write_text
from segbench.losses import build_loss
from segbench.models import build_model
from segbench.provenance import device_info, git_commit, package_versions
from segbench.splits import get_fold
from segbench.train.augment import apply as apply_augment
from segbench.train.augment import check_config as check_augment

log = logging.getLogger("segbench.train")

CHECKPOINT = "checkpoint.pt"
HISTORY_FIELDS = ["epoch", "train_loss", "val_miou", "lr", "seconds", "val_loss"]


@dataclass
class RunSpec:
    """Everything that defines one run; its hash decides whether a checkpoint may be resumed."""

    dataset: str
    model: str
    loss: str
    fraction: str
    seed: int
    fold: int
    model_cfg: dict[str, Any]
    loss_cfg: dict[str, Any]
    training: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "loss": self.loss,
            "fraction": self.fraction,
            "seed": self.seed,
            "fold": self.fold,
            "model_cfg": self.model_cfg,
            "loss_cfg": self.loss_cfg,
            "training": self.training,
            "evaluation": self.evaluation,
        }

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    status: str
    epochs_run: int
    best_epoch: int
    best_val: float
    diverged_epoch: int | None
    resumed_from_epoch: int | None
    wall_seconds: float


_SLOT: Any = None  # the GPU slot this process holds (released by the kernel at exit)
_PINNED = False  # CUDA_VISIBLE_DEVICES narrowed to the slot's GPU (then it is cuda:0)


def resolve_device(pref: str = "auto", jobs_per_gpu: int = 1) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU raises ValueError.

    With several visible GPUs, the process claims a GPU slot (see ``gpu_slots``) so that
    concurrently running jobs get different GPUs, ``jobs_per_gpu`` at most on each. If CUDA is
    not initialised yet, the process then narrows ``CUDA_VISIBLE_DEVICES`` to that GPU (it sees
    ``cuda:0`` only, and creates no context on the others); otherwise it selects the GPU with
    ``torch.cuda.set_device``.
    """
    global _SLOT, _PINNED
    if pref not in ("auto", "cpu", "cuda"):
        raise ValueError(f"training.device must be auto, cpu or cuda, got {pref!r}")
    if pref == "cpu":
        return torch.device("cpu")
    if _SLOT is None and not torch.cuda.is_initialized():
        # torch counts devices through NVML here, without initialising CUDA, so the visible
        # set can still be narrowed before the first CUDA call.
        n = torch.cuda.device_count()
        if n >= 1:
            from segbench.train.gpu_slots import acquire_slot, visible_devices_for

            _SLOT = acquire_slot(n, jobs_per_gpu)
            if not torch.cuda.is_initialized():
                os.environ["CUDA_VISIBLE_DEVICES"] = visible_devices_for(
                    _SLOT.gpu, n, os.environ.get("CUDA_VISIBLE_DEVICES")
                )
                _PINNED = True
            log.info(
                "using GPU %d (slot %d; CUDA_VISIBLE_DEVICES=%s)",
                _SLOT.gpu,
                _SLOT.index,
                os.environ.get("CUDA_VISIBLE_DEVICES"),
            )
    if not torch.cuda.is_available():
        if pref == "auto":
            return torch.device("cpu")
        raise ValueError("training.device is 'cuda' but no CUDA device is available")
    if _SLOT is None:
        from segbench.train.gpu_slots import acquire_slot

        _SLOT = acquire_slot(torch.cuda.device_count(), jobs_per_gpu)
        log.info("using GPU %d (slot %d)", _SLOT.gpu, _SLOT.index)
    index = 0 if _PINNED else _SLOT.gpu
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def augment(
    x: torch.Tensor,
    y: torch.Tensor,
    crop: int | None,
    hflip: bool,
    gen: torch.Generator,
    vflip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop (one offset per sample) and horizontal/vertical flips, on the tensors' device.

    Random numbers come from the CPU generator ``gen`` (no device sync, reproducible).
    """
    b, _, h, w = x.shape
    if crop is not None and (crop < h or crop < w):
        ch, cw = min(crop, h), min(crop, w)
        oy = torch.randint(0, h - ch + 1, (b,), generator=gen).tolist()
        ox = torch.randint(0, w - cw + 1, (b,), generator=gen).tolist()
        x = torch.stack([x[i, :, oy[i] : oy[i] + ch, ox[i] : ox[i] + cw] for i in range(b)])
        y = torch.stack([y[i, oy[i] : oy[i] + ch, ox[i] : ox[i] + cw] for i in range(b)])
    if hflip:
        flip = torch.rand(b, generator=gen) < 0.5
        if bool(flip.any()):
            f = flip.to(x.device)
            x = torch.where(f[:, None, None, None], x.flip(-1), x)
            y = torch.where(f[:, None, None], y.flip(-1), y)
    if vflip:
        flip = torch.rand(b, generator=gen) < 0.5
        if bool(flip.any()):
            f = flip.to(x.device)
            x = torch.where(f[:, None, None, None], x.flip(-2), x)
            y = torch.where(f[:, None, None], y.flip(-2), y)
    return x, y


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
    """Dataset-level mIoU (confusion over all pixels) for model selection on the validation set."""
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
    import copy

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


def _build_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    name = cfg.get("optimizer", "adam")
    lr, wd = float(cfg.get("lr", 1e-3)), float(cfg.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=float(cfg.get("momentum", 0.9)),
            nesterov=bool(cfg.get("nesterov", False)),
            weight_decay=wd,
        )
    raise ValueError(f"training.optimizer must be adam, adamw or sgd, got {name!r}")


def _build_scheduler(opt: torch.optim.Optimizer, cfg: dict[str, Any]) -> Any:
    name = cfg.get("scheduler", "none")
    if name == "none":
        return None
    if name == "plateau":
        monitor = cfg.get("scheduler_monitor", "val_score")
        if monitor not in ("val_score", "val_loss"):
            raise ValueError(
                f"training.scheduler_monitor must be val_score or val_loss, got {monitor!r}"
            )
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="max" if monitor == "val_score" else "min",
            factor=float(cfg.get("scheduler_factor", 0.5)),
            patience=int(cfg.get("scheduler_patience", 5)),
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg["epochs"]))
    if name == "poly":
        return torch.optim.lr_scheduler.PolynomialLR(
            opt, total_iters=int(cfg["epochs"]), power=float(cfg.get("poly_power", 0.9))
        )
    raise ValueError(f"training.scheduler must be none, plateau, cosine or poly, got {name!r}")


def _save_atomic(data: bytes, path: Path, fault: str | None = None, epoch: int = 0) -> None:
    """Atomic write; ``fault`` names an injection point hit after half the bytes (tests only)."""
    with atomic_open(path, "wb") as fh:
        half = len(data) // 2
        fh.write(data[:half])
        if fault:
            faults.point(fault, epoch)
        fh.write(data[half:])


def _torch_save_atomic(obj: Any, path: Path, fault: str | None = None, epoch: int = 0) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    _save_atomic(buf.getvalue(), path, fault, epoch)


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    state = {"gen": gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():  # this process's device only (no context on other GPUs)
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(gen: torch.Generator, state: dict[str, Any]) -> None:
    gen.set_state(state["gen"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_initialized():
        cuda = state["cuda"]
        torch.cuda.set_rng_state(cuda[0] if isinstance(cuda, list | tuple) else cuda)


def _progress(total: int, start: int, desc: str) -> Any:
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=start, desc=desc, unit="epoch", leave=False)
    return None


class _Run:
    """The state of one run between epochs: data on the device, model, optimiser, scheduler,
    RNG, history and best weights. :func:`train_run` steps one of these alone and
    :func:`train_stacked` steps several together; both drive it through the same methods, so a
    run's batches, crops, flips, validation, checkpoints and outputs are the same either way."""

    def __init__(
        self,
        spec: RunSpec,
        prepared_npz: str | Path,
        splits_json: str | Path,
        out_dir: str | Path,
        data: PreparedDataset | None = None,
        use_compile: bool = True,
    ) -> None:
        self.t0 = time.time()
        self.spec = spec
        out = self.out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.tmp"):  # temp files of a killed write never become outputs
            stale.unlink(missing_ok=True)
        tcfg = spec.training
        evcfg = spec.evaluation
        device = self.device = resolve_device(
            tcfg.get("device", "auto"), int(tcfg.get("jobs_per_gpu", 1))
        )
        torch.set_num_threads(int(tcfg.get("threads", 1)))
        seed_everything(spec.seed, bool(tcfg.get("deterministic", True)))
        self.amp = bool(tcfg.get("amp", True)) and device.type == "cuda"

        if data is None:
            data = load_prepared(prepared_npz)
        self.data = data
        splits = json.loads(Path(splits_json).read_text())
        self.ids = ids = get_fold(splits, spec.fold, spec.fraction)
        idx = {k: data.indices(v) for k, v in ids.items()}
        self.x = x = {k: torch.from_numpy(data.images[v]).to(device) for k, v in idx.items()}
        self.y = {
            k: torch.from_numpy(data.masks[v].astype(np.int64)).to(device) for k, v in idx.items()
        }
        self.c = data.num_classes
        self.include_bg = bool(evcfg.get("include_background", True))

        model_params = {k: v for k, v in spec.model_cfg.items() if k != "name"}
        model = build_model(
            spec.model_cfg["name"], in_channels=data.in_channels, classes=self.c, **model_params
        )
        model = model.to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.step_model: nn.Module = model
        if use_compile and device.type == "cuda" and tcfg.get("compile", "none") != "none":
            self.step_model = torch.compile(model, mode=tcfg["compile"])  # type: ignore[assignment]
        loss_fn = build_loss(
            spec.loss_cfg["name"], **{k: v for k, v in spec.loss_cfg.items() if k != "name"}
        )
        self.loss_fn = loss_fn.to(device)
        self.opt = _build_optimizer(model, tcfg)
        self.sched = _build_scheduler(self.opt, tcfg)
        self.gen = torch.Generator().manual_seed(spec.seed)

        self.epochs = int(tcfg.get("epochs", 50))
        self.bs = int(tcfg.get("batch_size", 4))
        self.n_train = n_train = x["train"].shape[0]
        self.steps = int(tcfg.get("steps_per_epoch") or math.ceil(n_train / self.bs))
        self.crop = tcfg.get("crop")
        self.hflip = bool(tcfg.get("hflip", True))
        self.vflip = bool(tcfg.get("vflip", False))
        self.aug = check_augment(tcfg.get("augment"))
        self.monitor_loss = tcfg.get("scheduler_monitor", "val_score") == "val_loss"
        self.val_every = int(tcfg.get("val_every", 1))
        self.ckpt_every = int(tcfg.get("checkpoint_every", 5))
        self.patience = tcfg.get("early_stopping")

        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_val, self.best_epoch, self.start_epoch, self.bad_vals = -1.0, -1, 0, 0
        self.resumed_from: int | None = None
        self.digest = spec.digest()
        self.ckpt_path = out / CHECKPOINT
        self._resume()
        self.status, self.diverged_epoch = "completed", None
        self.alive = self.start_epoch < self.epochs
        self.bar = _progress(
            self.epochs, self.start_epoch, f"{spec.dataset}/{spec.model}/{spec.loss}"
        )
        self.running = torch.zeros((), device=device)
        self.order = torch.zeros(0, dtype=torch.int64)
        self.te = time.time()

    def _resume(self) -> None:
        out, ckpt_path = self.out, self.ckpt_path
        if ckpt_path.exists():
            try:
                state = torch.load(ckpt_path, map_location=self.device, weights_only=True)
            except Exception as err:  # a corrupt checkpoint is never trusted
                log.warning(
                    "ignoring unreadable checkpoint %s (%s); starting fresh", ckpt_path, err
                )
                state = None
            if state is not None and state.get("digest") == self.digest:
                self.model.load_state_dict(state["model"])
                if state.get("loss") is not None:
                    self.loss_fn.load_state_dict(state["loss"])
                self.opt.load_state_dict(state["optimizer"])
                if self.sched is not None and state.get("scheduler") is not None:
                    self.sched.load_state_dict(state["scheduler"])
                _set_rng_state(self.gen, state["rng"])
                self.history = json.loads(state["history"])
                self.best_val, self.best_epoch = float(state["best_val"]), int(state["best_epoch"])
                self.best_state = state["best_model"]
                if self.best_state is not None:  # the best weights as of the checkpoint
                    _torch_save_atomic(self.best_state, out / "best.pt")
                self.bad_vals = int(state["bad_vals"])
                self.start_epoch = self.resumed_from = int(state["epoch"])
                log.info("resumed from %s at epoch %d", ckpt_path, self.start_epoch)
            elif state is not None:
                log.warning(
                    "checkpoint %s belongs to another configuration; starting fresh", ckpt_path
                )
        if self.best_epoch < 0 and (out / "best.pt").exists() and self.resumed_from is None:
            (out / "best.pt").unlink()

    def begin_epoch(self, epoch: int) -> None:
        """Draw this epoch's sample order (seeded generator) and reset the loss accumulator."""
        self.te = time.time()
        if hasattr(self.loss_fn, "set_epoch"):
            self.loss_fn.set_epoch(epoch, self.epochs)
        self.model.train()
        n, bs, steps = self.n_train, self.bs, self.steps
        self.order = torch.cat(
            [torch.randperm(n, generator=self.gen) for _ in range(math.ceil(steps * bs / n))]
        )[: steps * bs]
        self.running = torch.zeros((), device=self.device)

    def batch(self, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented training batch ``s`` of the current epoch, on the device: crop and flips,
        then the ``training.augment`` transforms (:mod:`segbench.train.augment`)."""
        b = self.order[s * self.bs : (s + 1) * self.bs].to(self.device)
        xb, yb = augment(
            self.x["train"][b], self.y["train"][b], self.crop, self.hflip, self.gen, self.vflip
        )
        return apply_augment(xb, yb, self.aug, self.gen)

    def train_step(self, s: int) -> None:
        """Step ``s`` of the current epoch: forward (bf16 autocast + channels_last on CUDA),
        loss in float32, backward, optimiser step; the loss is accumulated on the device."""
        xb, yb = self.batch(s)
        if self.device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.step_model(xb)
        loss = self.loss_fn(logits.float(), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.running += loss.detach()

    def end_epoch(self, epoch: int) -> bool:
        """Validate, step the scheduler, checkpoint; False once the run has stopped
        (diverged or early-stopped)."""
        train_loss = float(self.running) / self.steps  # one host sync per epoch
        opt, sched, out = self.opt, self.sched, self.out
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_miou": "",
            "lr": opt.param_groups[0]["lr"],
            "seconds": round(time.time() - self.te, 4),
            "val_loss": "",
        }
        if not math.isfinite(train_loss):
            self.status, self.diverged_epoch = "diverged", epoch + 1
            self.history.append(row)
            log.warning("training loss is %s at epoch %d: run diverged", train_loss, epoch + 1)
            self.alive = False
            return False
        if (epoch + 1) % self.val_every == 0 or epoch + 1 == self.epochs:
            prob = predict(self.model, self.x["val"], self.device, self.amp)
            val = mean_iou(prob, self.y["val"], self.c, self.include_bg)
            row["val_miou"] = val
            if self.monitor_loss:
                row["val_loss"] = validation_loss(
                    self.model, self.loss_fn, self.x["val"], self.y["val"], self.device, self.amp
                )
            if sched is not None and isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(row["val_loss"] if self.monitor_loss else val)
            if val > self.best_val:
                self.best_val, self.best_epoch, self.bad_vals = val, epoch + 1, 0
                self.best_state = {
                    k: v.detach().clone() for k, v in self.model.state_dict().items()
                }
                _torch_save_atomic(self.best_state, out / "best.pt")
            else:
                self.bad_vals += 1
        if sched is not None and not isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step()
        self.history.append(row)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{self.best_val:.4f}")
        else:
            log.info(
                "%sepoch %d/%d loss %.5f val_miou %s (best %.4f @ %d)",
                f"fold {self.spec.fold}: " if _STACKED_LOG else "",
                epoch + 1,
                self.epochs,
                train_loss,
                row["val_miou"],
                self.best_val,
                self.best_epoch,
            )
        stop_early = self.patience is not None and self.bad_vals >= int(self.patience)
        if (epoch + 1) % self.ckpt_every == 0 and epoch + 1 < self.epochs and not stop_early:
            _torch_save_atomic(
                {
                    "digest": self.digest,
                    "epoch": epoch + 1,
                    "model": self.model.state_dict(),
                    "loss": self.loss_fn.state_dict(),  # stateful losses (the balance stage)
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "rng": _rng_state(self.gen),
                    "history": json.dumps(self.history),
                    "best_val": self.best_val,
                    "best_epoch": self.best_epoch,
                    "best_model": self.best_state,
                    "bad_vals": self.bad_vals,
                },
                self.ckpt_path,
                fault="checkpoint_write",
                epoch=epoch + 1,
            )
        if stop_early:
            log.info(
                "early stopping at epoch %d (no improvement in %s validations)",
                epoch + 1,
                self.patience,
            )
            self.alive = False
            return False
        self.alive = epoch + 1 < self.epochs
        return True

    def finish(self) -> TrainResult:
        """Predict the test set with the best weights and write history, probabilities and
        ``run.json``; remove the resume checkpoint."""
        out, model, device, c = self.out, self.model, self.device, self.c
        if self.bar is not None:
            self.bar.close()
        _write_history(out / "history.csv", self.history)
        # Test-set prediction with the best weights (or the last ones if no validation finished).
        if (out / "best.pt").exists():
            model.load_state_dict(
                torch.load(out / "best.pt", map_location=device, weights_only=True)
            )
        else:
            _torch_save_atomic(model.state_dict(), out / "best.pt")
        prob = predict(model, self.x["test"], device, self.amp)
        status = self.status
        if not torch.isfinite(prob).all():
            prob = torch.nan_to_num(prob, nan=1.0 / c)
            status = "diverged"
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            probs=prob.cpu().numpy().astype(np.float16),
            ids=np.asarray(self.ids["test"], dtype=str),
        )
        _save_atomic(
            buf.getvalue(), out / "probs.npz", fault="probs_write", epoch=len(self.history)
        )

        spec = self.spec
        wall = time.time() - self.t0
        result = TrainResult(
            status=status,
            epochs_run=len(self.history),
            best_epoch=self.best_epoch,
            best_val=self.best_val,
            diverged_epoch=self.diverged_epoch,
            resumed_from_epoch=self.resumed_from,
            wall_seconds=round(wall, 3),
        )
        atomic_write_json(
            out / "run.json",
            {
                "run": {
                    k: getattr(spec, k)
                    for k in ("dataset", "model", "loss", "fraction", "seed", "fold")
                },
                "config": spec.as_dict(),
                "config_digest": self.digest,
                "result": result.__dict__,
                "n_train": self.n_train,
                "n_val": int(self.x["val"].shape[0]),
                "n_test": int(self.x["test"].shape[0]),
                "num_classes": c,
                "class_names": self.data.class_names,
                "git": git_commit(),
                "packages": package_versions(),
                "device": device_info(device),
                "seed": spec.seed,
                "wall_seconds": result.wall_seconds,
                "command": sys.argv,
            },
        )
        self.ckpt_path.unlink(missing_ok=True)
        return result


_STACKED_LOG = False  # log lines name the fold when several runs share one log


def train_run(
    spec: RunSpec,
    prepared_npz: str | Path,
    splits_json: str | Path,
    out_dir: str | Path,
    data: PreparedDataset | None = None,
) -> TrainResult:
    """Train one run and write its folder.

    Writes (atomically): ``best.pt`` (weights of the best validation epoch), ``history.csv``,
    ``probs.npz`` (test-set softmax, float16, with ids), ``run.json`` (provenance) and, during
    training, ``checkpoint.pt`` (resume state).

    Args:
        spec: run identity and resolved configuration.
        prepared_npz: prepared dataset file.
        splits_json: split file of the dataset.
        out_dir: run folder.
        data: an already loaded dataset (packing several runs in one process shares it).

    Returns:
        A :class:`TrainResult`.
    """
    run = _Run(spec, prepared_npz, splits_json, out_dir, data)
    for epoch in range(run.start_epoch, run.epochs):
        run.begin_epoch(epoch)
        for s in range(run.steps):
            run.train_step(s)
            if s == run.steps // 2:
                faults.point("step", epoch + 1)
        if not run.end_epoch(epoch):
            break
    return run.finish()


def train_pack(
    specs: list[RunSpec],
    prepared_npz: str | Path,
    splits_json: str | Path,
    out_dirs: list[str | Path],
) -> list[TrainResult]:
    """Train several runs of one dataset in this process (shared imports, dataset load and
    device context); each run writes its own folder exactly as :func:`train_run`.

    ``training.pack_mode`` (the first spec's): ``sequential`` (default) trains the runs one after
    another; ``stacked`` steps them together as one batched model (:mod:`segbench.train.stacked`);
    ``interleaved`` lets them take turns step by step, each on its own CUDA stream
    (:mod:`segbench.train.interleaved`).
    """
    if len(specs) != len(out_dirs):
        raise ValueError(f"{len(specs)} run specs for {len(out_dirs)} output folders")
    data = load_prepared(prepared_npz)
    mode = specs[0].training.get("pack_mode", "sequential") if specs else "sequential"
    if mode in ("stacked", "interleaved"):
        from segbench.train.interleaved import train_interleaved
        from segbench.train.stacked import train_stacked

        if mode == "stacked" and specs[0].training.get("compile", "none") != "none":
            log.info("training.compile is not applied in pack_mode 'stacked'")
        runs = [
            _Run(s, prepared_npz, splits_json, d, data=data, use_compile=mode == "interleaved")
            for s, d in zip(specs, out_dirs, strict=True)
        ]
        return (train_stacked if mode == "stacked" else train_interleaved)(runs)
    if mode != "sequential":
        raise ValueError(
            f"training.pack_mode must be sequential, stacked or interleaved, got {mode!r}"
        )
    return [
        train_run(s, prepared_npz, splits_json, d, data=data)
        for s, d in zip(specs, out_dirs, strict=True)
    ]
