"""Output shapes, backward passes, parameter counts and torch.compile tracing.

Fast tests use each model's "tiny" configuration (the CI one) or the cheap models at the
studies' sizes (224 = 7 * 32, 256, 512); the big models at the papers' sizes are only
constructed and counted, and their forward+backward passes are marked slow.
Parameter counts use in_channels=3, classes=2 (2D) or in_channels=1, classes=2 (3D) and
are the numbers in docs/models.md.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segbench.models import MODEL_INFO, build_model, list_models

# name -> parameters of the default (paper-size) configuration; see docs/models.md.
PARAMS_DEFAULT = {
    "unet": 31_037_698,
    "unet_bn_dropout": 31_037_698,
    "unet_3d": 22_578_306,
    "res_unet": 6_496_473,
    "res_unet_3d": 12_863_457,
    "transunet": 105_322_146,
    "r50_unet": 32_521_250,
    "r50_fpn": 26_116_162,
    "convformer_unet": 26_950_570,
}
CHEAP_2D = ["unet", "unet_bn_dropout", "res_unet", "transunet"]
BIG_2D = ["transunet", "r50_unet", "r50_fpn", "convformer_unet"]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _c_in(name: str) -> int:
    return 3 if MODEL_INFO[name].spatial_dims == 2 else 1


def _fwd_bwd(model: nn.Module, x: torch.Tensor, classes: int) -> None:
    model.train()
    y = model(x)
    assert y.shape == (x.shape[0], classes, *x.shape[2:])
    assert y.dtype == torch.float32
    y.float().square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(PARAMS_DEFAULT))
def test_param_count_default(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, _c_in(name), 2)
    count = n_params(model)
    print(f"{name}: {count:,} parameters")
    assert count == PARAMS_DEFAULT[name]


def test_param_counts_match_the_papers() -> None:
    """Independent figures: Ronneberger et al.'s U-Net has ~31.0M weights (64..1024
    channels; BatchNorm adds ~6k), TransUNet R50-ViT-B/16 105.28M (as reported in the
    Swin-Unet / TransUNet comparison tables), smp's ResNet-50 encoder 23.5M."""
    assert abs(PARAMS_DEFAULT["unet"] - 31.03e6) < 0.02e6
    assert abs(PARAMS_DEFAULT["transunet"] - 105.28e6) < 0.1e6
    r50 = build_model("r50_unet", 3, 2).encoder
    assert abs(n_params(r50) - 23.51e6) < 0.01e6


def test_set_of_models_is_covered() -> None:
    assert set(PARAMS_DEFAULT) == set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_tiny_config_forward_backward(name: str) -> None:
    """The CI configurations: batch 2 at 64 x 64 (2D) or 16 x 32 x 24 (3D)."""
    torch.manual_seed(0)
    info = MODEL_INFO[name]
    c_in = _c_in(name)
    model = build_model(name, c_in, 3, **info.tiny)
    size = (64, 64) if info.spatial_dims == 2 else (16, 32, 24)
    _fwd_bwd(model, torch.randn(2, c_in, *size), 3)
    print(f"{name} tiny: {n_params(model):,} parameters")


@pytest.mark.parametrize("size", [(224, 224), (256, 256), (512, 512), (224, 256)])
@pytest.mark.parametrize("name", CHEAP_2D)
def test_cheap_models_at_study_sizes(name: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(name, 1, 4, **MODEL_INFO[name].tiny)
    _fwd_bwd(model, torch.randn(1, 1, *size), 4)


@pytest.mark.parametrize("name", ["r50_unet", "r50_fpn", "convformer_unet"])
def test_smp_models_odd_multiple_of_32(name: str) -> None:
    """224 = 7 * 32: the deepest feature map is 7 x 7 (odd)."""
    model = build_model(name, 1, 2, **MODEL_INFO[name].tiny)
    _fwd_bwd(model, torch.randn(1, 1, 224, 224), 2)


def test_transunet_resamples_position_embedding() -> None:
    """Built for 64 (4 x 4 tokens), run at 96 (6 x 6 tokens) and non-square 64 x 128."""
    model = build_model("transunet", 1, 2, **MODEL_INFO["transunet"].tiny)
    assert model.pos_embed.shape[1] == 16
    _fwd_bwd(model, torch.randn(1, 1, 96, 96), 2)
    _fwd_bwd(model, torch.randn(1, 1, 64, 128), 2)


def test_unet_structure() -> None:
    """Channels double per level (paper: 64 -> 1024), max-pooling, transposed convs."""
    model = build_model("unet", 1, 2)
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs[::2]] == [64, 128, 256, 512, 1024]
    ups = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [512, 256, 128, 64]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 18
    plain = build_model("unet", 1, 2, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_unet_dropout_placement() -> None:
    def n_dropout(model: nn.Module) -> int:
        return sum(isinstance(m, nn.Dropout) for m in model.modules())

    tiny = MODEL_INFO["unet"].tiny
    assert n_dropout(build_model("unet", 1, 2, **tiny)) == 0
    assert n_dropout(build_model("unet_bn_dropout", 1, 2, **tiny)) == 1
    every = build_model("unet", 1, 2, dropout=0.2, dropout_position="every_block", **tiny)
    assert n_dropout(every) == 2 * tiny["depth"] + 1
    model = build_model("unet_bn_dropout", 1, 2, **tiny).eval()
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(model(x), model(x))  # dropout is off in eval mode


def test_unet_3d_and_res_unet_3d_shapes() -> None:
    for name in ("unet_3d", "res_unet_3d"):
        model = build_model(name, 2, 3, **MODEL_INFO[name].tiny)
        _fwd_bwd(model, torch.randn(1, 2, 32, 16, 24), 3)


@pytest.mark.parametrize("name", ["unet", "res_unet", "transunet"])
def test_torch_compile_traces_whole_graph(name: str) -> None:
    """Dynamo captures the whole model (fullgraph, size-check hook included); the
    inductor backend is not run here (~40 s per model on 2 CPU cores)."""
    torch._dynamo.reset()
    model = build_model(name, 1, 2, **MODEL_INFO[name].tiny)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    _fwd_bwd(compiled, torch.randn(2, 1, 64, 64), 2)


def test_torch_compiled_model_still_rejects_bad_size() -> None:
    """Without fullgraph (the usual use), the size check falls back to eager and raises."""
    torch._dynamo.reset()
    model = build_model("unet", 1, 2, base_channels=4, depth=2)
    compiled = torch.compile(model, backend="eager")
    compiled(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(32, 30\).*multiple of 4"):
        compiled(torch.randn(1, 1, 32, 30))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["r50_unet", "r50_fpn", "convformer_unet", "unet_3d"])
def test_torch_compile_traces_whole_graph_slow(name: str) -> None:
    torch._dynamo.reset()
    info = MODEL_INFO[name]
    model = build_model(name, 1, 2, **info.tiny)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    size = (64, 64) if info.spatial_dims == 2 else (16, 32, 24)
    _fwd_bwd(compiled, torch.randn(2, 1, *size), 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("unet", 256),  # paper 000
        ("unet_bn_dropout", 224),  # paper 004
        ("res_unet", 256),  # paper 002 (2D)
        ("transunet", 256),  # paper 000
        ("transunet", 224),  # Chen et al.'s size, pos-embed resampled
        ("convformer_unet", 256),  # paper 000
        ("r50_unet", 224),  # paper 003
        ("r50_fpn", 224),  # paper 003
    ],
)
def test_default_config_forward_backward(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, 3, 2)
    _fwd_bwd(model, torch.randn(1, 3, size, size), 2)


@pytest.mark.slow
def test_res_unet_3d_default_forward_backward() -> None:
    model = build_model("res_unet_3d", 1, 2)
    _fwd_bwd(model, torch.randn(1, 1, 48, 48, 32), 2)
