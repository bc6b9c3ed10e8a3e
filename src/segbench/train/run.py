"""One training run between epochs (:class:`TrainingRun`): its data on the device, model,
loss, optimiser, scheduler, generator, history, best weights, checkpoint and outputs.

The epoch loop (:func:`segbench.train.engine.train_runs`) drives one or several of these
through the same methods (``begin_epoch``, a step strategy's steps, ``end_epoch``, ``finish``),
so a run's batches, crops, flips, validation, checkpoints and outputs are the same in every
``training.pack_mode``.

- the prepared split is held on the device; crop + flip happen there (no DataLoader, no workers);
- the step accumulates the loss on the device; the host reads it once per epoch;
- bf16 autocast + channels_last on CUDA; plain fp32 on CPU;
- the resume checkpoint (model, loss state, optimiser, scheduler, RNG states, history, best
  weights) is written atomically every ``checkpoint_every`` epochs; a killed run resumes from it
  and, on CPU, ends with the same outputs as an uninterrupted run;
- a non-finite epoch loss stops the run, recorded as ``diverged`` with its epoch.

3D (prepared images ``[N, C, X, Y, Z]``, recipe ``volumes_3d`` or generator ``synth_vol3d``;
docs/3d.md): the volumes stay on the host, each cropped to its unpadded extent; a step's
batch is ``batch_size`` patches of a :class:`~segbench.train.patches.PatchSampler` (foreground
oversampling, :func:`~segbench.train.patches.resolve_protocol`) plus flips; validation and test
probabilities come from sliding windows (:func:`~segbench.train.validate.volume_validation`),
and ``probs.npz`` holds them at the padded shape (background probability 1 in the padding,
which the evaluation crops away). SGD + poly, checkpoints (with the sampler's random state) and
resume are the 2D ones. Only ``pack_mode: sequential`` and no ``training.augment``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segbench.data.io import PreparedDataset, load_prepared
from segbench.losses import build_loss
from segbench.models import build_model
from segbench.rundir import (
    TIMINGS_CSV,
    output_checksums,
    run_record,
    write_run_json,
    write_timings_json,
)
from segbench.runspec import split_name
from segbench.splits import get_fold, load_splits
from segbench.train.augment import apply as apply_augment
from segbench.train.augment import check_config as check_augment
from segbench.train.augment import check_crop, crop_flip
from segbench.train.checkpoint import (
    CHECKPOINT,
    rng_state,
    save_atomic,
    set_rng_state,
    torch_save_atomic,
    write_history,
    write_timings,
)
from segbench.train.device import resolve_device, seed_everything
from segbench.train.optim import build_optimizer, build_scheduler, is_plateau
from segbench.train.patches import VolumeBatches, resolve_protocol
from segbench.train.spec import RunSpec, TrainResult
from segbench.train.validate import (
    mean_iou,
    predict,
    predict_volume_logits,
    validation_loss,
    volume_validation,
)

log = logging.getLogger("segbench.train")


def _progress(total: int, start: int, desc: str) -> Any:
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=start, desc=desc, unit="epoch", leave=False)
    return None


class TrainingRun:
    """The state of one run between epochs; built from its spec, it resumes from a checkpoint
    of the same config digest in ``out_dir`` if there is one.

    Args:
        spec: run identity and resolved configuration.
        prepared_npz: prepared dataset file (not read when ``data`` is given).
        splits_json: split file of the dataset.
        out_dir: run folder.
        data: an already loaded dataset (a pack shares one).
        use_compile: apply ``training.compile`` to the step model (CUDA only).

    Attributes the step strategies use: ``model`` / ``step_model``, ``loss_fn``, ``opt``,
    ``device``, ``amp``, ``bs``, ``steps``, ``x`` / ``y`` (device tensors per split; empty for
    a 3D run, whose volumes are ``vols`` on the host and its batches ``volumes``),
    ``running`` (the epoch's summed loss, on the device), ``alive``, ``start_epoch``,
    ``epochs``; ``log_fold`` makes the epoch log line name the fold (runs sharing one log).
    """

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
        device = self.device = resolve_device(tcfg["device"], int(tcfg["jobs_per_gpu"]))
        torch.set_num_threads(int(tcfg["threads"]))
        seed_everything(spec.seed, bool(tcfg["deterministic"]))
        self.amp = bool(tcfg["amp"]) and device.type == "cuda"

        if data is None:
            data = load_prepared(prepared_npz)
        self.data = data
        self.volumes: VolumeBatches | None = None  # the 3D data path (module docstring)
        volumetric = data.images.ndim == 5
        if not volumetric:
            check_crop(tcfg["crop"], data.images.shape, spec.dataset)  # before any work on it
        splits = load_splits(splits_json)
        self.ids = ids = get_fold(splits, spec.fold, spec.fraction)
        idx = {k: data.indices(v) for k, v in ids.items()}
        self.c = data.num_classes
        if volumetric:
            self.x, self.y = {}, {}
            self._setup_volumes(idx)
        else:
            self.x = {k: torch.from_numpy(data.images[v]).to(device) for k, v in idx.items()}
            self.y = {
                k: torch.from_numpy(data.masks[v].astype(np.int64)).to(device)
                for k, v in idx.items()
            }
        self.memory_format = torch.channels_last_3d if volumetric else torch.channels_last
        self.include_bg = bool(evcfg["include_background"])

        model_name, model_params = split_name(spec.model_cfg)
        model = build_model(
            model_name, in_channels=data.in_channels, classes=self.c, **model_params
        )
        model = model.to(device)
        if device.type == "cuda":
            model = model.to(memory_format=self.memory_format)
        self.model = model
        self.step_model: nn.Module = model
        if use_compile and device.type == "cuda" and tcfg["compile"] != "none":
            self.step_model = torch.compile(model, mode=tcfg["compile"])  # type: ignore[assignment]
        loss_name, loss_params = split_name(spec.loss_cfg)
        loss_fn = build_loss(loss_name, **loss_params)
        self.loss_fn = loss_fn.to(device)
        self.opt = build_optimizer(model, tcfg)
        self.sched = build_scheduler(self.opt, tcfg)
        self.gen = torch.Generator().manual_seed(spec.seed)

        self.epochs = int(tcfg["epochs"])
        self.bs = int(tcfg["batch_size"])
        self.n_train = n_train = len(idx["train"])
        self.steps = int(tcfg["steps_per_epoch"] or math.ceil(n_train / self.bs))
        self.crop = tcfg["crop"]
        self.hflip = bool(tcfg["hflip"])
        self.vflip = bool(tcfg["vflip"])
        self.aug = check_augment(tcfg["augment"])
        if volumetric and self.aug:
            raise ValueError(
                f"dataset {spec.dataset!r} is 3D: training.augment (2D transforms) is not "
                "supported for 3D runs; set it to null"
            )
        self.monitor_loss = tcfg["scheduler_monitor"] == "val_loss"
        self.val_every = int(tcfg["val_every"])
        self.ckpt_every = int(tcfg["checkpoint_every"])
        self.patience = tcfg["early_stopping"]

        self.history: list[dict[str, Any]] = []
        self.timings: list[dict[str, Any]] = []  # timings.csv rows, apart from the history
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_val, self.best_epoch, self.start_epoch, self.bad_vals = -1.0, -1, 0, 0
        self.resumed_from: int | None = None
        self.digest = spec.digest()
        self.ckpt_path = out / CHECKPOINT
        self._resume()
        self.status, self.diverged_epoch = "completed", None
        self.alive = self.start_epoch < self.epochs
        self.log_fold = False
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
                set_rng_state(self.gen, state["rng"])
                self.history = json.loads(state["history"])
                self.timings = json.loads(state.get("timings", "[]"))
                for row in self.history:  # a checkpoint written before timings.csv existed
                    if "seconds" in row:
                        self.timings.append({"epoch": row["epoch"], "seconds": row.pop("seconds")})
                self.best_val, self.best_epoch = float(state["best_val"]), int(state["best_epoch"])
                self.best_state = state["best_model"]
                if self.best_state is not None:  # the best weights as of the checkpoint
                    torch_save_atomic(self.best_state, out / "best.pt")
                self.bad_vals = int(state["bad_vals"])
                if self.volumes is not None:
                    self.volumes.load_state_dict(state["patch_sampler"])
                self.start_epoch = self.resumed_from = int(state["epoch"])
                log.info("resumed from %s at epoch %d", ckpt_path, self.start_epoch)
            elif state is not None:
                log.warning(
                    "checkpoint %s belongs to another configuration; starting fresh", ckpt_path
                )
        if self.best_epoch < 0 and (out / "best.pt").exists() and self.resumed_from is None:
            (out / "best.pt").unlink()

    def _setup_volumes(self, idx: dict[str, np.ndarray]) -> None:
        """The 3D data path: host tensors of every split's volumes cropped to their unpadded
        extent (``recipe.volumes.<id>.shape``; the whole array when the sidecar has none), the
        patch protocol and the training patch source."""
        data, spec, tcfg = self.data, self.spec, self.spec.training
        info = (data.meta.get("recipe") or {}).get("volumes") or {}
        self.volume_shapes: dict[str, list[list[int]]] = {}
        self.vols: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for split, rows in idx.items():
            shapes, vols = [], []
            for r, image_id in zip(rows.tolist(), self.ids[split], strict=True):
                shape = [int(s) for s in info.get(image_id, {}).get("shape", data.masks.shape[1:])]
                crop = tuple(slice(0, s) for s in shape)
                image = torch.from_numpy(np.ascontiguousarray(data.images[r][(slice(None), *crop)]))
                label = torch.from_numpy(data.masks[r][crop].astype(np.int64))
                shapes.append(shape)
                vols.append((image, label))
            self.volume_shapes[split], self.vols[split] = shapes, vols
        registry_id = (data.meta.get("source") or {}).get("registry_id")
        self.protocol = resolve_protocol(tcfg.get("patch"), registry_id, tcfg["crop"], spec.dataset)
        from segbench.models import check_input_size

        model_name, model_params = split_name(spec.model_cfg)
        check_input_size(model_name, list(self.protocol.patch_size), **model_params)
        log.info(
            "3D run: patch %s, foreground rate %s, %d patch(es) per volume (%s)",
            list(self.protocol.patch_size),
            self.protocol.fg_rate,
            self.protocol.samples_per_volume,
            self.protocol.source,
        )
        self.volumes = VolumeBatches(
            [v[0].numpy() for v in self.vols["train"]],
            [v[1].numpy() for v in self.vols["train"]],
            self.protocol,
            seed=spec.seed,
        )

    def _predict_volumes(self, split: str) -> np.ndarray:
        """Sliding-window probabilities of every volume of ``split`` (float16, the dtype of
        ``probs.npz``, ``[N, C, *padded]``; background probability 1 in each volume's
        padding)."""
        pad = self.data.masks.shape[1:]
        out = np.zeros((len(self.vols[split]), self.c, *pad), dtype=np.float16)
        out[:, 0] = 1.0
        for k, (image, _) in enumerate(self.vols[split]):
            logits = predict_volume_logits(
                self.model, image, self.protocol.patch_size, self.device, self.amp
            )
            crop = tuple(slice(0, s) for s in image.shape[1:])
            out[(k, slice(None), *crop)] = torch.softmax(logits, 0).cpu().numpy()
        return out

    def _checkpoint(self, epoch: int) -> None:
        """Write the resume state after ``epoch`` (0-based) epochs + 1."""
        extra = {} if self.volumes is None else {"patch_sampler": self.volumes.state_dict()}
        torch_save_atomic(
            {
                "digest": self.digest,
                "epoch": epoch + 1,
                "model": self.model.state_dict(),
                "loss": self.loss_fn.state_dict(),  # stateful losses (the balance stage)
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict() if self.sched is not None else None,
                "rng": rng_state(self.gen),
                "history": json.dumps(self.history),
                "timings": json.dumps(self.timings),
                "best_val": self.best_val,
                "best_epoch": self.best_epoch,
                "best_model": self.best_state,
                "bad_vals": self.bad_vals,
                **extra,
            },
            self.ckpt_path,
            fault="checkpoint_write",
            epoch=epoch + 1,
        )

    def begin_epoch(self, epoch: int) -> None:
        """Draw this epoch's sample order (seeded generator) and reset the loss accumulator."""
        self.te = time.time()
        if hasattr(self.loss_fn, "set_epoch"):
            self.loss_fn.set_epoch(epoch, self.epochs)
        self.model.train()
        n, bs, steps = self.n_train, self.bs, self.steps
        if self.volumes is not None:  # volumes read per step (several patches per volume)
            bs = self.volumes.volumes_per_step(bs)
        self.order = torch.cat(
            [torch.randperm(n, generator=self.gen) for _ in range(math.ceil(steps * bs / n))]
        )[: steps * bs]
        self.running = torch.zeros((), device=self.device)

    def batch(self, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented training batch ``s`` of the current epoch, on the device: crop and flips,
        then the ``training.augment`` transforms (:mod:`segbench.train.augment`)."""
        if self.volumes is not None:
            v = self.volumes.volumes_per_step(self.bs)
            xb, yb = self.volumes.batch(
                self.order[s * v : (s + 1) * v].tolist(), self.bs, self.hflip, self.vflip, self.gen
            )
            return xb.to(self.device), yb.to(self.device)
        b = self.order[s * self.bs : (s + 1) * self.bs].to(self.device)
        xb, yb = crop_flip(
            self.x["train"][b], self.y["train"][b], self.crop, self.hflip, self.gen, self.vflip
        )
        return apply_augment(xb, yb, self.aug, self.gen)

    def train_step(self, s: int) -> None:
        """Step ``s`` of the current epoch: forward (bf16 autocast + channels_last on CUDA),
        loss in float32, backward, optimiser step; the loss is accumulated on the device."""
        xb, yb = self.batch(s)
        if self.device.type == "cuda":
            xb = xb.contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.step_model(xb)
        loss = self.loss_fn(logits.float(), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.running += loss.detach()

    def _validate(self) -> tuple[float, float | None]:
        """The validation mIoU (model selection) and, with ``scheduler_monitor: val_loss``, the
        training loss on the validation set: whole images in 2D, sliding windows over the
        unpadded volumes in 3D (:func:`~segbench.train.validate.volume_validation`)."""
        if self.volumes is not None:
            return volume_validation(
                self.model,
                self.loss_fn if self.monitor_loss else None,
                self.vols["val"],
                self.protocol.patch_size,
                self.c,
                self.include_bg,
                self.device,
                self.amp,
            )
        prob = predict(self.model, self.x["val"], self.device, self.amp)
        val = mean_iou(prob, self.y["val"], self.c, self.include_bg)
        if not self.monitor_loss:
            return val, None
        loss = validation_loss(
            self.model, self.loss_fn, self.x["val"], self.y["val"], self.device, self.amp
        )
        return val, loss

    def end_epoch(self, epoch: int) -> bool:
        """Validate, step the scheduler, checkpoint; False once the run has stopped
        (diverged or early-stopped)."""
        train_loss = float(self.running) / self.steps  # one host sync per epoch
        sched = self.sched
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_miou": "",
            "lr": self.opt.param_groups[0]["lr"],
            "val_loss": "",
        }
        # the epoch's training steps, as history.csv's former ``seconds`` column measured them
        self.timings.append({"epoch": epoch + 1, "seconds": round(time.time() - self.te, 4)})
        if not math.isfinite(train_loss):
            self.status, self.diverged_epoch = "diverged", epoch + 1
            self.history.append(row)
            log.warning("training loss is %s at epoch %d: run diverged", train_loss, epoch + 1)
            self.alive = False
            return False
        if (epoch + 1) % self.val_every == 0 or epoch + 1 == self.epochs:
            val, val_loss = self._validate()
            row["val_miou"] = val
            if self.monitor_loss:
                row["val_loss"] = val_loss
            if sched is not None and is_plateau(sched):
                sched.step(row["val_loss"] if self.monitor_loss else val)
            if val > self.best_val:
                self.best_val, self.best_epoch, self.bad_vals = val, epoch + 1, 0
                self.best_state = {
                    k: v.detach().clone() for k, v in self.model.state_dict().items()
                }
                torch_save_atomic(self.best_state, self.out / "best.pt")
            else:
                self.bad_vals += 1
        if sched is not None and not is_plateau(sched):
            sched.step()
        self.history.append(row)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{self.best_val:.4f}")
        else:
            log.info(
                "%sepoch %d/%d loss %.5f val_miou %s (best %.4f @ %d)",
                f"fold {self.spec.fold}: " if self.log_fold else "",
                epoch + 1,
                self.epochs,
                train_loss,
                row["val_miou"],
                self.best_val,
                self.best_epoch,
            )
        stop_early = self.patience is not None and self.bad_vals >= int(self.patience)
        if (epoch + 1) % self.ckpt_every == 0 and epoch + 1 < self.epochs and not stop_early:
            self._checkpoint(epoch)
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
        """Predict the test set with the best weights and write history, timings,
        probabilities and (last) ``run.json`` with the outputs' sha256; remove the resume
        checkpoint."""
        out, model, device, c = self.out, self.model, self.device, self.c
        if self.bar is not None:
            self.bar.close()
        write_history(out / "history.csv", self.history)
        write_timings(out / TIMINGS_CSV, self.timings)
        # Test-set prediction with the best weights (or the last ones if no validation finished).
        if (out / "best.pt").exists():
            model.load_state_dict(
                torch.load(out / "best.pt", map_location=device, weights_only=True)
            )
        else:
            torch_save_atomic(model.state_dict(), out / "best.pt")
        status = self.status
        if self.volumes is not None:
            probs = self._predict_volumes("test")
            if not np.isfinite(probs).all():
                probs = np.nan_to_num(probs, nan=1.0 / c)
                status = "diverged"
        else:
            prob = predict(model, self.x["test"], device, self.amp)
            if not torch.isfinite(prob).all():
                prob = torch.nan_to_num(prob, nan=1.0 / c)
                status = "diverged"
            probs = prob.cpu().numpy()
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            probs=probs.astype(np.float16),
            ids=np.asarray(self.ids["test"], dtype=str),
        )
        save_atomic(buf.getvalue(), out / "probs.npz", fault="probs_write", epoch=len(self.history))

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
        record = run_record(
            spec,
            result,
            device=device,
            n_train=self.n_train,
            n_val=len(self.ids["val"]),
            n_test=len(self.ids["test"]),
            num_classes=c,
            class_names=self.data.class_names,
            outputs=output_checksums(out),
        )
        write_timings_json(out, result, [float(t["seconds"]) for t in self.timings])
        write_run_json(out, record)
        self.ckpt_path.unlink(missing_ok=True)
        return result
