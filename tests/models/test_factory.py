"""The model factory: registry contents, error messages, input-size checks, pretrained
loading. All with tiny configurations, CPU only, no network."""

from __future__ import annotations

import re

import pytest
import torch

from segbench.models import (
    MODEL_INFO,
    MODELS,
    build_model,
    check_input_size,
    input_divisor,
    list_models,
)
from segbench.models.checks import check_choice, check_int, check_ints, check_rate, is_ints
from segbench.registry import Registry

EXPECTED = {
    "convformer_unet",
    "r50_fpn",
    "r50_unet",
    "res_unet",
    "res_unet_3d",
    "transunet",
    "unet",
    "unet_3d",
    "unet_bn_dropout",
}


def test_registry_contents() -> None:
    assert isinstance(MODELS, Registry)
    assert set(list_models()) == EXPECTED
    assert list_models() == sorted(list_models())
    assert set(MODEL_INFO) == EXPECTED
    for name, info in MODEL_INFO.items():
        assert info.name == name
        assert info.spatial_dims in (2, 3)
        assert info.reference


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        MODELS.register("unet", lambda **kw: torch.nn.Identity())


def test_unknown_name_lists_known_and_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'unte'.*unet.*Did you mean 'unet'"):
        build_model("unte", 1, 2)
    with pytest.raises(ValueError, match="unknown model"):
        check_input_size("resunet", 64)


def test_unknown_parameter_names_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"'width'.*allowed: base_channels, depth"):
        build_model("unet", 1, 2, width=8)


@pytest.mark.parametrize(("in_channels", "classes"), [(0, 2), (1, 0), (1.0, 2), (True, 2)])
def test_bad_channels(in_channels: object, classes: object) -> None:
    with pytest.raises(ValueError, match="in_channels|classes"):
        build_model("unet", in_channels, classes, base_channels=4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "params", "pname"),
    [
        ("unet", {"norm": "group"}, "norm"),
        ("unet", {"dropout": 1.5}, "dropout"),
        ("unet", {"depth": 0}, "depth"),
        ("unet", {"base_channels": 0}, "base_channels"),
        ("unet", {"dropout_position": "decoder"}, "dropout_position"),
        ("res_unet", {"channels": [8, 16], "strides": [2, 2]}, "strides"),
        ("res_unet", {"norm": "layer"}, "norm"),
        ("transunet", {"img_size": 100}, "img_size"),
        ("transunet", {"embed_dim": 100, "num_heads": 12}, "embed_dim"),
        ("transunet", {"n_skip": 4}, "n_skip"),
        ("convformer_unet", {"encoder": "convformer_xxl"}, "encoder"),
        ("r50_unet", {"encoder_weights": 5}, "encoder_weights"),
        ("r50_unet", {"decoder_channels": [16, 8]}, "decoder_channels"),
        ("r50_fpn", {"decoder_segmentation_channels": 48}, "decoder_segmentation_channels"),
    ],
)
def test_bad_parameter_values_name_the_parameter(name: str, params: dict, pname: str) -> None:
    with pytest.raises(ValueError, match=re.escape(pname)):
        build_model(name, 1, 2, **params)


def test_shared_checks_wording_and_returned_values() -> None:
    """segbench.models.checks: one wording per kind of bad value, booleans never numbers, the
    value returned in the form the network takes."""
    assert check_int("depth", 8, hi=8) == 8 and check_int("n", 0, lo=0) == 0
    for value, lo, hi, words in [
        (0, 1, None, "a positive integer"),
        (True, 1, None, "a positive integer"),
        (2.0, 1, None, "a positive integer"),
        (-1, 0, None, "a non-negative integer"),
        (9, 1, 8, r"an integer in \[1, 8\]"),
    ]:
        with pytest.raises(ValueError, match=rf"^p must be {words}, got {value!r}$"):
            check_int("p", value, lo, hi)
    assert check_ints("c", [4, 8], min_len=2) == (4, 8)
    assert is_ints((1, 2, 3), 3) and not is_ints((1, 2), 3) and not is_ints([1, False], 2)
    with pytest.raises(ValueError, match=r"^c must be 2 positive integers \(x\), got \[4, 0\]$"):
        check_ints("c", [4, 0], length=2, note=" (x)")
    with pytest.raises(ValueError, match=r"^c must be a sequence of at least 2 positive integers"):
        check_ints("c", 4, min_len=2)
    assert check_rate("p", 0) == 0.0 and isinstance(check_rate("p", 0), float)
    for bad in (1, 1.0, -0.1, False, "0.1"):
        with pytest.raises(ValueError, match=r"^p must be a number in \[0, 1\)"):
            check_rate("p", bad)
    assert check_choice("norm", "batch", ("batch", "none")) == "batch"
    with pytest.raises(ValueError, match=r"^norm must be one of batch, none; got 'group'$"):
        check_choice("norm", "group", ("batch", "none"))


def test_register_variant_names_and_documents_the_constructor() -> None:
    reg_ctor = MODELS.get("res_unet_3d")
    assert reg_ctor.__name__ == reg_ctor.name == "res_unet_3d"
    assert "3D U-Net with residual units" in (reg_ctor.__doc__ or "")
    assert MODELS.get("unet").__name__ == "unet" and MODELS.get("unet_3d").__name__ == "unet_3d"
    assert MODELS.defaults("unet_3d")["base_channels"] == 32
    assert MODELS.defaults("unet")["base_channels"] == 64


@pytest.mark.parametrize(
    ("name", "params", "divisor"),
    [
        ("unet", {}, 16),
        ("unet", {"depth": 5}, 32),
        ("unet_bn_dropout", {}, 16),
        ("res_unet", {}, 16),
        ("res_unet", {"channels": [8, 16, 32], "strides": [2, 2]}, 4),
        ("transunet", {}, 16),
        ("r50_unet", {}, 32),
        ("r50_fpn", {}, 32),
        ("convformer_unet", {}, 32),
        ("unet_3d", {"depth": 3}, 8),
        ("res_unet_3d", {}, 16),
    ],
)
def test_input_divisor(name: str, params: dict, divisor: int) -> None:
    assert input_divisor(name, **params) == divisor


def test_check_input_size() -> None:
    for size in (224, 256, 512, (224, 256)):
        check_input_size("unet", size)
        check_input_size("r50_fpn", size)
        check_input_size("transunet", size)
    check_input_size("res_unet_3d", (96, 96, 80))  # paper 002's KiTS patch
    with pytest.raises(ValueError, match=r"'r50_unet'.*\(200, 200\).*multiple of 32"):
        check_input_size("r50_unet", 200)
    with pytest.raises(ValueError, match=r"'unet'.*\(240, 240\).*multiple of 32"):
        check_input_size("unet", 240, depth=5, in_channels=3, classes=2)
    with pytest.raises(ValueError, match="is 3D"):
        check_input_size("res_unet_3d", (64, 64))
    with pytest.raises(ValueError, match="is 2D"):
        check_input_size("unet", (64, 64, 64))


def test_forward_rejects_bad_input_size_and_channels() -> None:
    model = build_model("unet", 1, 2, base_channels=4, depth=2)
    assert model.input_divisor == 4 and model.segbench_name == "unet"
    with pytest.raises(ValueError, match=r"'unet'.*\(30, 32\).*multiple of 4"):
        model(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match=r"expects input \[B, 1, H, W\]"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"expects input"):
        model(torch.zeros(1, 1, 32))


def test_pretrained_loads_local_state_dict(tmp_path) -> None:
    torch.manual_seed(0)
    src = build_model("unet", 1, 2, **MODEL_INFO["unet"].tiny)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = build_model("unet", 1, 2, pretrained=str(path), **MODEL_INFO["unet"].tiny)
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    torch.save({"state_dict": src.state_dict()}, tmp_path / "ckpt.pt")
    build_model("unet", 1, 2, pretrained=tmp_path / "ckpt.pt", **MODEL_INFO["unet"].tiny)
    with pytest.raises(ValueError, match="does not fit model 'unet'"):
        build_model("unet", 1, 3, pretrained=str(path), **MODEL_INFO["unet"].tiny)
    with pytest.raises(ValueError, match="local state_dict file"):
        build_model("unet", 1, 2, pretrained=str(tmp_path / "missing.pt"))


@pytest.mark.usefixtures("no_network")
def test_smp_models_download_nothing_by_default() -> None:
    """smp's own default encoder_weights='imagenet' would download; ours is None."""
    for name in ("r50_unet", "r50_fpn", "convformer_unet"):
        build_model(name, 3, 2, **MODEL_INFO[name].tiny)


def test_one_registration_style() -> None:
    # The registry records the name on the constructor, derives the parameters from its
    # signature (less in_channels / classes) and holds the metadata; Registry.build is gone.
    assert MODEL_INFO is MODELS.infos
    assert not hasattr(Registry, "build")
    for name in list_models():
        assert MODELS.get(name).name == name
        assert "in_channels" not in MODELS.params(name)
    assert MODELS.params("unet")[:2] == ["base_channels", "depth"]
    reg: Registry[int] = Registry("thing", fixed=("x",))
    reg.register("f", lambda x, a, b=2: x + a + b)
    assert reg.bind("f", {"a": 1}, x=0) == {"x": 0, "a": 1, "b": 2}
    with pytest.raises(ValueError, match=r"thing 'f': missing a required argument: 'a'"):
        reg.bind("f", {}, x=0)
    with pytest.raises(ValueError, match=r"'c' \(value 3\); allowed: a, b"):
        reg.bind("f", {"c": 3}, x=0)
    with pytest.raises(ValueError, match="takes no metadata"):
        reg.register("g", lambda x: x, spatial_dims=2)
