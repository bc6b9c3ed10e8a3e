"""Encoder-decoder networks from segmentation-models-pytorch (smp).

* ``r50_unet`` / ``r50_fpn``: smp ``Unet`` / ``FPN`` with a ResNet-50 encoder, the two
  networks of paper 003 (Liu et al., "Do we really need Dice?", MedIA 2024), which uses
  the smp implementations.
* ``convformer_unet``: smp ``Unet`` decoder on a ConvFormer encoder (Yu et al.,
  "MetaFormer Baselines for Vision", TPAMI 2023; paper 000 ref [16]) through smp's timm
  universal encoder (``tu-convformer_s18``).

smp's own default ``encoder_weights="imagenet"`` downloads weights at build time (and
fails offline); here the default is ``None`` (random init, as paper 000 trains from
scratch). Pass ``encoder_weights="imagenet"`` explicitly to ask smp for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from segbench.models.checks import check_choice, check_int, check_ints, check_rate
from segbench.models.registry import MODELS

CONVFORMER_ENCODERS = ("convformer_s18", "convformer_s36", "convformer_m36", "convformer_b36")
DECODER_NORMS = ("batchnorm", "identity", "layernorm", "instancenorm", "inplace")


def _smp() -> Any:
    import segmentation_models_pytorch as smp

    return smp


def _check_weights(encoder_weights: Any) -> None:
    if encoder_weights is not None and not isinstance(encoder_weights, str):
        raise ValueError(
            f"encoder_weights must be None (random init, the default) or a string smp "
            f"understands such as 'imagenet', got {encoder_weights!r}"
        )


def _smp_unet(
    encoder_name: str,
    in_channels: int,
    classes: int,
    encoder_weights: Any,
    decoder_channels: Any,
    **options: Any,
) -> nn.Module:
    """smp ``Unet`` on the 5-stage encoder ``encoder_name`` with 5 decoder blocks (the two
    U-Nets here); ``options`` are further smp ``Unet`` arguments."""
    _check_weights(encoder_weights)
    return _smp().Unet(
        encoder_name=encoder_name,
        encoder_depth=5,
        encoder_weights=encoder_weights,
        decoder_channels=check_ints(
            "decoder_channels", decoder_channels, length=5, note=" (one per decoder block)"
        ),
        in_channels=in_channels,
        classes=classes,
        **options,
    )


def _divisor_32(**_: object) -> int:
    return 32


_R50_REF = (
    "paper 003 (Liu et al., Do we really need Dice?, MedIA 2024): R50UNet via "
    "segmentation_models_pytorch; U-Net decoder (Ronneberger et al. 2015), ResNet-50 (He et al. 2016)"
)


@MODELS.register(
    "r50_unet",
    divisor=_divisor_32,
    tiny={"decoder_channels": [32, 16, 16, 8, 8]},
    reference=_R50_REF,
)
def r50_unet(
    in_channels: int,
    classes: int,
    encoder_weights: str | None = None,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    decoder_use_norm: str = "batchnorm",
) -> nn.Module:
    """smp ``Unet`` with a ResNet-50 encoder (paper 003's "R50UNet").

    Args:
        in_channels: input channels.
        classes: output channels (logits).
        encoder_weights: None (default; random init, nothing downloaded) or an smp weight
            name such as ``"imagenet"`` (downloads; paper 003 does not say whether its
            encoders were pretrained, smp's own default is ImageNet).
        decoder_channels: channels of the 5 decoder blocks (default smp's
            ``(256, 128, 64, 32, 16)``).
        decoder_use_norm: normalisation in the decoder blocks (default ``"batchnorm"``).

    Shape:
        ``[B, in_channels, H, W] -> [B, classes, H, W]``, H and W multiples of 32.
    """
    return _smp_unet(
        "resnet50",
        in_channels,
        classes,
        encoder_weights,
        decoder_channels,
        decoder_use_norm=check_choice("decoder_use_norm", decoder_use_norm, DECODER_NORMS),
    )


@MODELS.register(
    "r50_fpn",
    divisor=_divisor_32,
    tiny={"decoder_pyramid_channels": 32, "decoder_segmentation_channels": 32},
    reference=(
        "paper 003 (Liu et al., MedIA 2024): R50FPN via segmentation_models_pytorch; "
        "FPN (Lin et al. 2017, Kirillov et al. panoptic FPN head), ResNet-50 (He et al. 2016)"
    ),
)
def r50_fpn(
    in_channels: int,
    classes: int,
    encoder_weights: str | None = None,
    decoder_pyramid_channels: int = 256,
    decoder_segmentation_channels: int = 128,
    decoder_dropout: float = 0.2,
) -> nn.Module:
    """smp ``FPN`` with a ResNet-50 encoder (paper 003's "R50FPN").

    Args:
        in_channels: input channels.
        classes: output channels (logits).
        encoder_weights: None (default, random init) or an smp weight name (downloads).
        decoder_pyramid_channels: FPN pyramid width (default 256, smp's).
        decoder_segmentation_channels: segmentation-branch width, a multiple of 32
            (default 128, smp's).
        decoder_dropout: spatial dropout before the head (default 0.2, smp's).

    Shape:
        ``[B, in_channels, H, W] -> [B, classes, H, W]`` (the FPN predicts at 1/4 and smp
        upsamples by 4), H and W multiples of 32.
    """
    _check_weights(encoder_weights)
    check_int("decoder_pyramid_channels", decoder_pyramid_channels)
    check_int("decoder_segmentation_channels", decoder_segmentation_channels)
    if decoder_segmentation_channels % 32:
        raise ValueError(
            f"decoder_segmentation_channels must be a multiple of 32 (smp's GroupNorm has 32 "
            f"groups), got {decoder_segmentation_channels!r}"
        )
    return _smp().FPN(
        encoder_name="resnet50",
        encoder_depth=5,
        encoder_weights=encoder_weights,
        decoder_pyramid_channels=decoder_pyramid_channels,
        decoder_segmentation_channels=decoder_segmentation_channels,
        decoder_dropout=check_rate("decoder_dropout", decoder_dropout),
        in_channels=in_channels,
        classes=classes,
    )


@MODELS.register(
    "convformer_unet",
    divisor=_divisor_32,
    tiny={"decoder_channels": [32, 16, 16, 8, 8]},
    reference=(
        "paper 000 (Yokoi & Hotta 2025): 'ConvFormer+U-Net', ConvFormer encoder of Yu et al., "
        "MetaFormer Baselines for Vision, TPAMI 2023 (paper 000 ref [16]) + U-Net decoder; "
        "smp Unet with timm universal encoder"
    ),
)
def convformer_unet(
    in_channels: int,
    classes: int,
    encoder: str = "convformer_s18",
    encoder_weights: str | None = None,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    drop_path_rate: float = 0.0,
) -> nn.Module:
    """U-Net decoder on a ConvFormer (MetaFormer) encoder: paper 000's "ConvFormer+U-Net".

    Built as smp ``Unet("tu-<encoder>")``: smp's timm universal encoder takes the four
    ConvFormer stages (strides 4, 8, 16, 32) and the U-Net decoder upsamples back to the
    input resolution. Paper 000 does not name the ConvFormer size; the default is the
    smallest, ``convformer_s18``. Trained from scratch in paper 000 (default no weights).

    Args:
        in_channels: input channels.
        classes: output channels (logits).
        encoder: one of ``convformer_s18`` (default), ``convformer_s36``,
            ``convformer_m36``, ``convformer_b36`` (timm names).
        encoder_weights: None (default, random init) or ``"imagenet"`` (downloads through
            timm / Hugging Face).
        decoder_channels: channels of the 5 decoder blocks (default smp's).
        drop_path_rate: stochastic depth of the encoder (default 0, timm's).

    Shape:
        ``[B, in_channels, H, W] -> [B, classes, H, W]``, H and W multiples of 32.
    """
    check_choice("encoder", encoder, CONVFORMER_ENCODERS)
    return _smp_unet(
        f"tu-{encoder}",
        in_channels,
        classes,
        encoder_weights,
        decoder_channels,
        drop_path_rate=check_rate("drop_path_rate", drop_path_rate),
    )
