"""The classic U-Net (Ronneberger, Fischer & Brox, MICCAI 2015; paper 000 ref [14]).

Hand-written in plain PyTorch because no library offers it in this form: MONAI's
``BasicUNet`` has a fixed depth of 4 and a fixed channel layout per level, MONAI's ``UNet``
downsamples with strided convolutions instead of max-pooling, and
segmentation-models-pytorch only builds U-Nets around classification encoders. The
network here is the paper's: per level two 3x3 convolutions + ReLU, 2x2 max-pooling,
channels doubling at each of ``depth`` downsamplings (64 -> 1024 for the defaults),
2x2 up-convolutions halving the channels, concatenation with the skip connection, and a
final 1x1 convolution. Deviations, all usual in re-implementations and documented in
``docs/models.md``: the 3x3 convolutions are zero-padded (output at the input
resolution instead of the paper's valid-convolution crop), optional normalisation after
each convolution, and dropout placed at the end of the contracting path as in the paper
(or after every block).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from segbench.models.checks import check_choice, check_int, check_rate
from segbench.models.registry import MODELS, register_variant

NORMS = ("batch", "instance", "none")
DROPOUT_POSITIONS = ("bottleneck", "every_block")

_REFERENCE = (
    "Ronneberger, Fischer & Brox, U-Net: Convolutional Networks for Biomedical Image "
    "Segmentation, MICCAI 2015 (paper 000 ref [14])"
)


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm(norm: str, dims: int, channels: int) -> nn.Module:
    if norm == "batch":
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(channels)
    if norm == "instance":
        return (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(channels, affine=True)
    return nn.Identity()


class DoubleConv(nn.Sequential):
    """Two (3x3 conv -> norm -> ReLU) blocks, optionally followed by dropout."""

    def __init__(self, c_in: int, c_out: int, dims: int, norm: str, dropout: float) -> None:
        conv = _conv(dims)
        bias = norm == "none"
        layers: list[nn.Module] = [
            conv(c_in, c_out, 3, padding=1, bias=bias),
            _norm(norm, dims, c_out),
            nn.ReLU(inplace=True),
            conv(c_out, c_out, 3, padding=1, bias=bias),
            _norm(norm, dims, c_out),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class UNet(nn.Module):
    """Classic U-Net with configurable width, depth, normalisation and dropout.

    Args:
        in_channels: input channels.
        classes: output channels (logits).
        base_channels: channels of the first level (default 64, the paper's); level ``i``
            has ``base_channels * 2**i``.
        depth: number of 2x downsamplings (default 4, the paper's).
        norm: ``"batch"`` (default), ``"instance"`` or ``"none"`` (the paper has none;
            BatchNorm is what most re-implementations and paper 004 use).
        dropout: dropout probability (default 0).
        dropout_position: ``"bottleneck"`` (default; the paper's "drop-out layers at the
            end of the contracting path") or ``"every_block"`` (after each double conv).
        spatial_dims: 2 (default) or 3.

    Shape:
        input ``[B, in_channels, *spatial]`` with every spatial size a multiple of
        ``2**depth``; output ``[B, classes, *spatial]``.

    Raises:
        ValueError: for a bad parameter value.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        base_channels: int = 64,
        depth: int = 4,
        norm: Literal["batch", "instance", "none"] = "batch",
        dropout: float = 0.0,
        dropout_position: Literal["bottleneck", "every_block"] = "bottleneck",
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        _validate(base_channels, depth, norm, dropout, dropout_position, spatial_dims)
        dims = spatial_dims
        conv = _conv(dims)
        up = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        pool = nn.MaxPool2d if dims == 2 else nn.MaxPool3d
        every = dropout if dropout_position == "every_block" else 0.0
        chans = [base_channels * 2**i for i in range(depth + 1)]

        self.encoder = nn.ModuleList()
        c_prev = in_channels
        for i, c in enumerate(chans):
            p = dropout if (i == depth and dropout_position == "bottleneck") else every
            self.encoder.append(DoubleConv(c_prev, c, dims, norm, p))
            c_prev = c
        self.pool = pool(2)
        self.ups = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for c in reversed(chans[:-1]):
            self.ups.append(up(2 * c, c, kernel_size=2, stride=2))
            self.decoder.append(DoubleConv(2 * c, c, dims, norm, every))
        self.head = conv(chans[0], classes, kernel_size=1)
        self._init_weights()

    def _init_weights(self) -> None:
        # The paper draws weights from a Gaussian with std sqrt(2/N), N = fan-in (He init).
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for i, block in enumerate(self.encoder):
            if i > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for up, block in zip(self.ups, self.decoder, strict=True):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def _validate(
    base_channels: int,
    depth: int,
    norm: str,
    dropout: float,
    dropout_position: str,
    spatial_dims: int,
) -> None:
    check_int("base_channels", base_channels)
    check_int("depth", depth, hi=8)
    check_choice("norm", norm, NORMS)
    check_rate("dropout", dropout)
    check_choice("dropout_position", dropout_position, DROPOUT_POSITIONS)
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")


def _unet_divisor(depth: int = 4, **_: object) -> int:
    return 2**depth if isinstance(depth, int) and depth > 0 else 1


def _unet_ctor(spatial_dims: int, base: int, default_norm: str) -> Callable[..., nn.Module]:
    """The constructor of the plain ``spatial_dims``-D U-Net (one signature for both)."""

    def ctor(
        in_channels: int,
        classes: int,
        base_channels: int = base,
        depth: int = 4,
        norm: Literal["batch", "instance", "none"] = default_norm,  # type: ignore[assignment]
        dropout: float = 0.0,
        dropout_position: Literal["bottleneck", "every_block"] = "bottleneck",
    ) -> nn.Module:
        return UNet(
            in_channels,
            classes,
            base_channels,
            depth,
            norm,
            dropout,
            dropout_position,
            spatial_dims,
        )

    return ctor


#: The CI configuration of the 2D U-Nets (``unet`` and ``unet_bn_dropout``).
_TINY_2D = {"base_channels": 8, "depth": 4}

unet = register_variant(
    "unet",
    _unet_ctor(2, 64, "batch"),
    """Classic 2D U-Net (Ronneberger et al. 2015; paper 000 [14]); see :class:`UNet`.""",
    divisor=_unet_divisor,
    tiny=_TINY_2D,
    reference=_REFERENCE,
)

unet_3d = register_variant(
    "unet_3d",
    _unet_ctor(3, 32, "instance"),
    """3D version of :class:`UNet` (volumes ``[B, C, D, H, W]``).

    Defaults follow the usual 3D practice (32 base channels, instance norm, as nnU-Net)
    rather than the 2D paper's 64/none, to fit GPU memory at typical patch sizes.
    """,
    divisor=_unet_divisor,
    spatial_dims=3,
    tiny={"base_channels": 4, "depth": 3},
    reference=_REFERENCE + "; 3D form as in Cicek et al., 3D U-Net, MICCAI 2016",
)


@MODELS.register(
    "unet_bn_dropout",
    divisor=_unet_divisor,
    tiny=_TINY_2D,
    reference=(
        "Xu et al., A Unified Loss for Handling Inter-Class and Intra-Class Imbalance, "
        "AAAI 2025 (paper 004): 'U-Net architecture with batch normalization and dropout'; "
        "U-Net of Ronneberger et al. 2015"
    ),
)
def unet_bn_dropout(
    in_channels: int,
    classes: int,
    base_channels: int = 64,
    depth: int = 4,
    dropout: float = 0.5,
    dropout_position: Literal["bottleneck", "every_block"] = "bottleneck",
) -> nn.Module:
    """U-Net with BatchNorm and dropout (paper 004, Xu et al. AAAI 2025).

    Paper 004 only says "a U-Net architecture with batch normalization and dropout"; the
    rate and place of the dropout are not given. Defaults: BatchNorm after every
    convolution, dropout 0.5 at the end of the contracting path (Ronneberger et al.'s
    placement and the common rate). See :class:`UNet` for the parameters.
    """
    return UNet(in_channels, classes, base_channels, depth, "batch", dropout, dropout_position, 2)
