"""3D training through the engine on the CPU (issue 20): patch batches, sliding-window
validation and test probabilities, determinism, resume after a real SIGKILL bit-identical to an
uninterrupted run, and the refusals (pack modes, augment, no patch size)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from segbench.data.io import load_prepared, save_prepared
from segbench.data.synthetic import generate
from segbench.splits import dumps, make_splits
from segbench.train import train_pack, train_run
from segbench.train.patches import (
    DEFAULT_FG_RATE,
    PATCH_PROTOCOLS,
    PatchProtocol,
    VolumeBatches,
    resolve_protocol,
)
from tests.helpers import tiny_spec
from tests.train.helpers import kill_pack, kill_run

UNET_3D = {"name": "unet_3d", "base_channels": 4, "depth": 2}
TRAINING_3D = {
    "optimizer": "sgd",
    "nesterov": True,
    "lr": 0.01,
    "momentum": 0.99,
    "weight_decay": 3e-5,
    "scheduler": "poly",
    "batch_size": 2,
    "epochs": 3,
    "steps_per_epoch": 2,
    "crop": None,
    "hflip": True,
    "vflip": True,
    "val_every": 1,
    "checkpoint_every": 1,
    "device": "cpu",
    "threads": 1,
}
PATCH = {"size": [8, 8, 8], "fg_rate": 0.5, "samples_per_volume": 2}


@pytest.fixture()
def vol_data(tmp_path: Path) -> tuple[Path, Path]:
    """6 synthetic volumes (own extents <= 16^3, padded to 16^3) and a 3-fold split."""
    images, masks, ids, meta = generate("synth_vol3d", n=6, size=16, seed=1)
    meta["name"] = "vol"
    npz = tmp_path / "prepared" / "vol.npz"
    save_prepared(npz, images, masks, ids, meta)
    splits = tmp_path / "prepared" / "splits.json"
    splits.write_text(dumps(make_splits(ids, 3, [1], seed=0, dataset="vol")))
    return npz, splits


RES_UNET_3D = {"name": "res_unet_3d", "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1}


def _spec(model_cfg: dict | None = None, **fields):
    training = {**TRAINING_3D, "patch": PATCH, **fields.pop("training", {})}
    cfg = dict(model_cfg or UNET_3D)
    return tiny_spec(
        dataset="vol", model=cfg["name"], model_cfg=cfg, training=training,
        evaluation={"include_background": False}, **fields,
    )  # fmt: skip


def _files(run_dir: Path) -> dict[str, bytes]:
    return {n: (run_dir / n).read_bytes() for n in ("probs.npz", "history.csv", "best.pt")}


@pytest.mark.parametrize("model_cfg", [UNET_3D, RES_UNET_3D], ids=["unet_3d", "res_unet_3d"])
def test_3d_run_is_deterministic_and_writes_padded_probs(vol_data, tmp_path, model_cfg):
    npz, splits = vol_data
    r1 = train_run(_spec(model_cfg), npz, splits, tmp_path / "a")
    train_run(_spec(model_cfg), npz, splits, tmp_path / "b")
    assert r1.status == "completed" and r1.epochs_run == 3
    assert _files(tmp_path / "a") == _files(tmp_path / "b")  # byte-identical reruns
    hist = (tmp_path / "a" / "history.csv").read_text().splitlines()
    lrs = [float(line.split(",")[3]) for line in hist[1:]]
    assert lrs == pytest.approx([0.01 * (1 - e / 3) ** 0.9 for e in range(3)])  # poly, per epoch
    assert all(line.split(",")[2] for line in hist[1:])  # validated every epoch
    data = load_prepared(npz)
    volumes = data.meta["recipe"]["volumes"]
    with np.load(tmp_path / "a" / "probs.npz") as z:
        probs, ids = z["probs"].astype(np.float32), [str(i) for i in z["ids"]]
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert probs.shape == (run["n_test"], 2, 16, 16, 16) and run["n_test"] == 2
    for k, image_id in enumerate(ids):
        x, y, z = volumes[image_id]["shape"]
        inside = np.zeros((16, 16, 16), dtype=bool)
        inside[:x, :y, :z] = True
        assert (probs[k, 0][~inside] == 1).all() and (probs[k, 1][~inside] == 0).all()
        np.testing.assert_allclose(probs[k].sum(0)[inside], 1.0, atol=2e-3)
    r3 = train_run(_spec(model_cfg, seed=1), npz, splits, tmp_path / "c")
    assert r3.status == "completed"
    assert _files(tmp_path / "a")["probs.npz"] != _files(tmp_path / "c")["probs.npz"]


def test_3d_test_probs_are_the_sliding_window_of_the_cropped_volume(vol_data, tmp_path):
    """probs.npz inside each test volume = segbench.inference.sliding_window_probs of the best
    weights on the volume cropped to its extent (8^3 windows, overlap 0.5, Gaussian)."""
    from segbench.inference import sliding_window_probs
    from segbench.models import build_model

    npz, splits = vol_data
    train_run(_spec(training={"epochs": 1}), npz, splits, tmp_path / "r")
    model = build_model("unet_3d", in_channels=1, classes=2, base_channels=4, depth=2)
    model.load_state_dict(torch.load(tmp_path / "r" / "best.pt", weights_only=True))
    model.eval()
    data = load_prepared(npz)
    with np.load(tmp_path / "r" / "probs.npz") as z:
        probs, ids = z["probs"].astype(np.float32), [str(i) for i in z["ids"]]
    for k, image_id in enumerate(ids):
        x, y, zz = data.meta["recipe"]["volumes"][image_id]["shape"]
        image = torch.from_numpy(data.images[data.indices([image_id])[0]][:, :x, :y, :zz])
        want = sliding_window_probs(model, image[None], (8, 8, 8))[0].numpy()
        np.testing.assert_allclose(probs[k][:, :x, :y, :zz], want, atol=1e-3)  # float16 file


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["step@2", "checkpoint_write@2", "probs_write@3"])
def test_3d_resume_after_sigkill_equals_uninterrupted(vol_data, tmp_path, fault):
    npz, splits = vol_data
    spec = _spec()
    ref = tmp_path / "ref"
    train_run(spec, npz, splits, ref)
    out = tmp_path / "killed"
    kill_run(spec, npz, splits, out, fault)
    assert not (out / "run.json").exists()
    result = train_run(spec, npz, splits, out)
    assert (
        result.resumed_from_epoch
        == {"step@2": 1, "checkpoint_write@2": 1, "probs_write@3": 2}[fault]
    )
    # bit-identical: weights, patch draws and flips resumed (without the sampler's random state
    # in the checkpoint, run.TrainingRun._resume, this fails: checked by hand on 2026-12-04)
    assert _files(ref) == _files(out)


@pytest.mark.slow
def test_3d_pack_resume_after_sigkill_equals_uninterrupted(vol_data, tmp_path):
    """A 3D ``train_pack`` (the workflow's train job: folds 0 and 1, sequential) SIGKILLed in
    fold 0's second epoch, rerun: both folders equal those of an uninterrupted pack."""
    npz, splits = vol_data
    specs = [_spec(fold=k, training={"epochs": 2}) for k in (0, 1)]
    ref = [tmp_path / "ref" / f"k{k}" for k in (0, 1)]
    train_pack(specs, npz, splits, ref)
    out = [tmp_path / "killed" / f"k{k}" for k in (0, 1)]
    kill_pack(specs, npz, splits, out, "step@2")
    assert not (out[0] / "run.json").exists() and (out[0] / "checkpoint.pt").exists()
    results = train_pack(specs, npz, splits, out)
    assert [r.resumed_from_epoch for r in results] == [1, None]
    for a, b in zip(ref, out, strict=True):
        assert _files(a) == _files(b)


def test_volume_batches_patches_flips_and_volumes_per_step():
    vol = np.arange(10 * 12 * 14, dtype=np.float32).reshape(1, 10, 12, 14)
    lab = (vol[0] % 3 == 0).astype(np.int64)
    vb = VolumeBatches([vol, vol], [lab, lab], PatchProtocol((8, 8, 8), 0.5, 2, "t"), seed=0)
    assert vb.volumes_per_step(3) == 2 and vb.volumes_per_step(2) == 1
    gen = torch.Generator().manual_seed(0)
    x, y = vb.batch([0, 1], 3, True, True, gen)
    assert x.shape == (3, 1, 8, 8, 8) and y.shape == (3, 8, 8, 8) and y.dtype == torch.int64
    # image and label cropped and flipped alike: the label is a function of the voxel value
    assert torch.equal((x[:, 0].long() % 3 == 0).long(), y)
    state = vb.state_dict()
    a = vb.batch([0], 2, False, False, gen)
    vb.load_state_dict(state)
    b = vb.batch([0], 2, False, False, gen)
    assert torch.equal(a[0], b[0])


def test_resolve_protocol_precedence_and_errors():
    kits = PATCH_PROTOCOLS["kits23"]
    assert resolve_protocol(None, "kits23", None, "kits") == kits
    given = resolve_protocol({"fg_rate": 0.2}, "kits23", 64, "kits")
    assert given.patch_size == kits.patch_size and given.fg_rate == 0.2
    cube = resolve_protocol(None, None, 32, "d")
    assert cube.patch_size == (32, 32, 32) and cube.fg_rate == DEFAULT_FG_RATE
    with pytest.raises(ValueError, match=r"no patch size: set datasets\.d\.patch"):
        resolve_protocol(None, None, None, "d")
    with pytest.raises(ValueError, match="fg_rate must be a number in"):
        resolve_protocol({"size": [8, 8, 8], "fg_rate": 2}, None, None, "d")


def test_3d_refuses_pack_modes_augment_and_bad_patch(vol_data, tmp_path):
    npz, splits = vol_data
    stacked = _spec(training={"pack_mode": "stacked"})
    with pytest.raises(ValueError, match=r"pack_mode = 'stacked' is not supported for the 3D"):
        train_pack([stacked], npz, splits, [tmp_path / "s"])
    with pytest.raises(ValueError, match="training.augment .2D transforms. is not supported"):
        train_run(_spec(training={"augment": {"noise": {"std": 0.1}}}), npz, splits, tmp_path / "a")
    with pytest.raises(ValueError, match=r"cannot take spatial input size \(6, 8, 8\)"):
        train_run(_spec(training={"patch": {"size": [6, 8, 8]}}), npz, splits, tmp_path / "p")


def test_config_refuses_3d_pack_modes_and_2d_patch_keys():
    from segbench.config import ConfigError, check_study, validate_schema

    def study(**training):
        return {
            "study": "s", "folds": 2,
            "datasets": {"v": {"source": "synthetic", "generator": "synth_vol3d", "n": 6,
                               "size": 16, "patch": [8, 8, 8]}},
            "models": {"m": dict(UNET_3D)}, "losses": {"l": {"name": "ce"}}, "training": training,
        }  # fmt: skip

    ok = validate_schema(study())
    check_study(ok)
    with pytest.raises(ConfigError, match=r"pack_mode = 'interleaved' is not supported for the 3D"):
        check_study(validate_schema(study(pack_mode="interleaved")))
    bad = validate_schema(study())
    bad["datasets"]["v"]["patch"] = [6, 8, 8]
    with pytest.raises(ConfigError, match=r"cannot take spatial input size \(6, 8, 8\)"):
        check_study(bad)
    flat = validate_schema(study())
    flat["datasets"]["v"] = {"source": "synthetic", "generator": "synth_vessels", "fg_rate": 0.3}
    flat["models"]["m"] = {"name": "unet", "base_channels": 4, "depth": 2}
    with pytest.raises(ConfigError, match=r"\['fg_rate'\] apply to 3D datasets only"):
        check_study(flat)
    keyed = validate_schema(study())  # the generator defaults to the dataset key
    keyed["datasets"] = {"synth_vol3d": {**keyed["datasets"]["v"], "patch": [6, 8, 8]}}
    del keyed["datasets"]["synth_vol3d"]["generator"]
    with pytest.raises(ConfigError, match=r"cannot take spatial input size \(6, 8, 8\)"):
        check_study(keyed)
    small = validate_schema(study())
    small["datasets"]["v"] = {"source": "synthetic", "generator": "synth_vessels", "size": 16}
    small["models"]["m"] = {"name": "unet", "base_channels": 4, "depth": 2}
    with pytest.raises(ConfigError, match="needs size >= 32"):
        check_study(small)


def test_registry_3d_study_refuses_pack_modes(monkeypatch):
    """A registry dataset with recipe volumes_3d (paper002_3d.yaml) is refused with
    pack_mode stacked by check_registry, the Snakefile's check before any job."""
    from segbench.config import ConfigError, check_registry, load_study
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    cfg = load_study(REPO / "config" / "studies" / "paper002_3d.yaml")
    check_registry(cfg)
    cfg["training"]["pack_mode"] = "stacked"
    with pytest.raises(
        ConfigError, match=r"'stacked' is not supported for the 3D dataset 'brats_mets'"
    ):
        check_registry(cfg)
