"""Residual U-Nets from MONAI (``monai.networks.nets.UNet`` with residual units).

Paper 002 ("Beyond scalar losses", MIDL 2026 submission) uses "the UNet architecture
(Ronneberger et al., 2015) with residual units (He et al., 2016)", in 2D (INbreast, FIVES)
and 3D (BraTS-METS, KiTS, "nnU-Net-like network size"). MONAI's ``UNet`` is exactly that
family (Kerfoot et al., "Left-ventricle quantification using residual U-Net", STACOM 2018):
each level is a residual unit of ``num_res_units`` conv-norm-dropout-act subunits with a
strided first convolution, and the decoder uses strided transposed convolutions.
The paper does not give channel widths; the defaults (32 ... 512 over 5 levels, 2
residual subunits, instance norm) follow nnU-Net's base width and MONAI's examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from segbench.models.checks import check_choice, check_int, check_ints, check_rate
from segbench.models.registry import register_variant

NORMS = ("instance", "batch")
ACTS = ("prelu", "relu", "leakyrelu")

_REF = (
    "paper 002 (Beyond scalar losses, MIDL 2026 submission): U-Net (Ronneberger et al. 2015) "
    "with residual units (He et al. 2016); MONAI UNet (Kerfoot et al., STACOM 2018)"
)


def _res_unet(
    spatial_dims: int,
    in_channels: int,
    classes: int,
    channels: Sequence[int],
    strides: Sequence[int],
    num_res_units: int,
    norm: str,
    act: str,
    dropout: float,
) -> nn.Module:
    from monai.networks.nets import UNet

    ch = check_ints("channels", channels, min_len=2)
    st = check_ints("strides", strides)
    if len(st) != len(ch) - 1:
        raise ValueError(
            f"strides must have one entry fewer than channels ({len(ch) - 1}), got {strides!r}"
        )
    return UNet(
        spatial_dims,
        in_channels,
        classes,
        ch,
        st,
        num_res_units=check_int("num_res_units", num_res_units, lo=0),
        norm=check_choice("norm", norm, NORMS),
        act=check_choice("act", act, ACTS),
        dropout=check_rate("dropout", dropout),
    )


def _strides_divisor(strides: Sequence[int] = (2, 2, 2, 2), **_: object) -> int:
    d = 1
    for s in strides:
        d *= int(s) if isinstance(s, int) and s > 0 else 1
    return d


def _res_unet_ctor(
    spatial_dims: int, default_channels: tuple[int, ...]
) -> Callable[..., nn.Module]:
    """The constructor of the ``spatial_dims``-D residual U-Net (one signature for both)."""

    def ctor(
        in_channels: int,
        classes: int,
        channels: Sequence[int] = default_channels,
        strides: Sequence[int] = (2, 2, 2, 2),
        num_res_units: int = 2,
        norm: str = "instance",
        act: str = "prelu",
        dropout: float = 0.0,
    ) -> nn.Module:
        return _res_unet(
            spatial_dims, in_channels, classes, channels, strides, num_res_units, norm, act, dropout
        )

    return ctor


res_unet = register_variant(
    "res_unet",
    _res_unet_ctor(2, (32, 64, 128, 256, 512)),
    """2D U-Net with residual units (paper 002), MONAI ``UNet(spatial_dims=2)``.

    Args:
        in_channels: input channels.
        classes: output channels (logits).
        channels: channels per level (default ``(32, 64, 128, 256, 512)``).
        strides: downsampling stride between levels, one fewer than ``channels``
            (default ``(2, 2, 2, 2)``); inputs must be multiples of their product.
        num_res_units: conv subunits per residual unit (default 2; 0 = no residual units).
        norm: ``"instance"`` (default, MONAI's) or ``"batch"``.
        act: ``"prelu"`` (default, MONAI's), ``"relu"`` or ``"leakyrelu"``.
        dropout: dropout probability in every unit (default 0).

    Shape:
        ``[B, in_channels, H, W] -> [B, classes, H, W]``.
    """,
    divisor=_strides_divisor,
    tiny={"channels": [8, 16, 32, 64], "strides": [2, 2, 2], "num_res_units": 1},
    reference=_REF,
)

res_unet_3d = register_variant(
    "res_unet_3d",
    _res_unet_ctor(3, (32, 64, 128, 256, 320)),
    """3D U-Net with residual units (paper 002's BraTS-METS / KiTS network), MONAI ``UNet``.

    Same parameters as :func:`res_unet`; channels default to ``(32, 64, 128, 256, 320)``
    (nnU-Net's 3D widths, capped at 320). Paper 002's KiTS patch ``96 x 96 x 80`` fits the
    default divisor 16.

    Shape:
        ``[B, in_channels, D, H, W] -> [B, classes, D, H, W]``.
    """,
    divisor=_strides_divisor,
    spatial_dims=3,
    tiny={"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1},
    reference=_REF,
)
