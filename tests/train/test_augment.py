"""On-device augmentation (segbench.train.augment) against closed forms: torch.rot90 for quarter
turns, an explicit centre zoom, the gamma formula, noise statistics; and its conventions
(identity and no random draw when off, untouched samples bit-identical, image and mask
resampled by one grid, labels stay labels, reproducible from the generator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segbench.config import ConfigError, load_study
from segbench.train import RunSpec, train_run
from segbench.train.augment import apply, check_config
from tests.helpers import TRAINING, tiny_spec
from tests.train.helpers import kill_run


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(b=3, c=2, h=8, w=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g), torch.randint(0, classes, (b, h, w), generator=g)


def test_off_is_identity_without_random_draws():
    x, y = _batch()
    gen = _gen()
    before = gen.get_state()
    xa, ya = apply(x, y, check_config(None), gen)
    assert xa is x and ya is y and torch.equal(gen.get_state(), before)
    assert check_config({}) == {}


@pytest.mark.parametrize("deg,k", [(90, 1), (-90, -1), (180, 2), (270, 3)])
def test_quarter_turns_equal_rot90(deg, k):
    x, y = _batch()
    cfg = check_config({"rotation": {"degrees": [deg, deg], "p": 1.0}})
    xa, ya = apply(x, y, cfg, _gen())
    assert torch.allclose(xa, torch.rot90(x, k, (-2, -1)), atol=1e-5)
    assert torch.equal(ya, torch.rot90(y, k, (-2, -1)))


def test_zoom_by_two_is_the_centre_upsampled():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = torch.arange(16).reshape(1, 4, 4)
    xa, ya = apply(x, y, check_config({"scale": {"range": [2, 2], "p": 1}}), _gen())
    # output pixel centres map to input coordinates 0.75, 1.25, 1.75, 2.25 (pixel units):
    # nearest labels repeat the central 2x2 block; bilinear values are 4 * row + col there.
    assert torch.equal(
        ya[0], torch.tensor([[5, 5, 6, 6], [5, 5, 6, 6], [9, 9, 10, 10], [9, 9, 10, 10]])
    )
    coords = torch.tensor([0.75, 1.25, 1.75, 2.25])
    assert torch.allclose(xa[0, 0], 4 * coords[:, None] + coords[None, :], atol=1e-5)


def test_only_chosen_samples_change_and_labels_stay_labels():
    x, y = _batch(b=16, h=16, w=16)
    cfg = check_config(
        {"rotation": {"degrees": [-30, 30], "p": 0.5}, "elastic": {"magnitude": 0.1, "p": 0.5}}
    )
    xa, ya = apply(x, y, cfg, _gen(3))
    changed = [not torch.equal(xa[i], x[i]) for i in range(16)]
    assert 0 < sum(changed) < 16  # p = 0.5 each: some but not all samples
    for i in range(16):
        if not changed[i]:
            assert torch.equal(ya[i], y[i])  # untouched samples: bit for bit
    assert ya.dtype == y.dtype and set(ya.unique().tolist()) <= set(range(4))


def test_image_and_mask_share_one_grid():
    """A one-hot image of the mask, resampled bilinearly, has its argmax where the nearest-
    resampled mask is, away from label boundaries (>= 90 % of pixels)."""
    _, y = _batch(b=4, h=32, w=32, classes=3)
    y = torch.nn.functional.interpolate(y[:, None].float(), scale_factor=1, mode="nearest")[
        :, 0
    ].long()
    y = y.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, :32, :32]  # blocky labels
    x = torch.nn.functional.one_hot(y, 3).permute(0, 3, 1, 2).float()
    cfg = check_config(
        {
            "rotation": {"degrees": [-40, 40], "p": 1},
            "scale": {"range": [0.8, 1.2], "p": 1},
            "elastic": {"magnitude": 0.05, "grid": 6, "p": 1},
        }
    )
    xa, ya = apply(x, y, cfg, _gen(1))
    inside = xa.sum(1) > 0.99  # away from the zero padding
    agree = (xa.argmax(1) == ya)[inside].float().mean()
    assert agree > 0.9 and not torch.equal(ya, y)


def test_gamma_closed_form():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).reshape(1, 1, 1, 4) * 2 + 1  # range [1, 3]
    y = torch.zeros(1, 1, 4, dtype=torch.long)
    xa, _ = apply(x, y, check_config({"gamma": {"range": [2, 2], "p": 1}}), _gen())
    expected = torch.tensor([0.0, 0.0625, 0.25, 1.0]) * 2 + 1
    assert torch.allclose(xa.flatten(), expected, atol=1e-6)


def test_noise_statistics_and_reproducibility():
    torch.manual_seed(0)
    x = torch.zeros(8, 1, 64, 64)
    y = torch.zeros(8, 64, 64, dtype=torch.long)
    xa, ya = apply(x, y, check_config({"noise": {"std": 0.2, "p": 1}}), _gen())
    assert abs(float(xa.std()) - 0.2) < 0.005 and abs(float(xa.mean())) < 0.005
    assert torch.equal(ya, y)
    cfg = check_config({"rotation": {"p": 1}, "gamma": {"p": 0.5}, "elastic": {"p": 1}})
    x, y = _batch()
    a = apply(x, y, cfg, _gen(7))
    b = apply(x, y, cfg, _gen(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize(
    "cfg,msg",
    [
        ({"shear": {}}, "training.augment.shear: unknown transform"),
        ({"rotation": {"p": 2}}, r"training.augment.rotation.p must be in \[0, 1\]"),
        ({"scale": {"range": [1.2, 0.8]}}, "training.augment.scale.range"),
        ({"rotation": {"degrees": [30, -30]}}, "training.augment.rotation.degrees"),
    ],
)
def test_bad_config_names_the_key(cfg, msg):
    with pytest.raises(ValueError, match=msg):
        check_config(cfg)


def test_study_check_names_the_file(tmp_path):
    import yaml

    from tests.conftest import REPO

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["training"]["augment"] = {"scale": {"range": [1.5, 1.0]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"bad.yaml: training.augment.scale.range"):
        load_study(path)


AUG = {
    "rotation": {"degrees": [-30, 30], "p": 0.5},
    "scale": {"range": [0.8, 1.25], "p": 0.5},
    "elastic": {"magnitude": 0.05, "grid": 4, "p": 0.5},
    "gamma": {"range": [0.7, 1.5], "p": 0.5},
    "noise": {"std": 0.05, "p": 0.5},
}


def test_engine_with_every_augmentation_resumes_bit_exactly(tiny_prepared, split_file, tmp_path):
    """Augmentation inside the engine: reproducible, and a SIGKILLed run resumes to the same
    test probabilities (the generator draws and the device noise state are checkpointed)."""
    spec = tiny_spec(training={**TRAINING, "augment": AUG})
    train_run(spec, tiny_prepared, split_file, tmp_path / "ref")
    plain = RunSpec(**{**spec.as_dict(), "training": dict(TRAINING)})
    train_run(plain, tiny_prepared, split_file, tmp_path / "plain")
    out = tmp_path / "killed"
    kill_run(spec, tiny_prepared, split_file, out, "step@3")
    assert train_run(spec, tiny_prepared, split_file, out).resumed_from_epoch == 2
    with np.load(tmp_path / "ref/probs.npz") as a, np.load(out / "probs.npz") as b:
        assert np.array_equal(a["probs"], b["probs"])
    with np.load(tmp_path / "ref/probs.npz") as a, np.load(tmp_path / "plain/probs.npz") as b:
        assert not np.array_equal(a["probs"], b["probs"])  # augmentation did something
