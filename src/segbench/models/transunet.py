"""TransUNet (Chen et al., "TransUNet: Transformers Make Strong Encoders for Medical Image
Segmentation", arXiv 2102.04306, 2021; paper 000 ref [2]), R50-ViT-B/16 hybrid.

Built from timm components: the CNN trunk is timm's ``ResNetV2`` with layers ``(3, 4, 9)``,
weight-standardised convolutions (``StdConv2d``) and GroupNorm, without pre-activation (the
trunk of TransUNet and of timm's ``vit_base_r50_s16``); the transformer is a stack of timm
ViT ``Block``s with learnt absolute position embeddings (resampled by timm's
``resample_abs_pos_embed`` when the input size differs from ``img_size``).
The cascaded upsampler (CUP) is hand-written because no library provides it: smp's
U-Net decoder has no 3x3 "conv_more" projection of the token grid, upsamples with nearest
neighbour instead of bilinear interpolation and adds a centre block differently.

Layout (defaults, input ``H x W``): ResNetV2 root (7x7/2 conv, 64 ch, H/2) -> max-pool ->
stages of 256 (H/4), 512 (H/8), 1024 (H/16) channels -> 1x1 patch embedding to 768 ->
12 transformer layers (12 heads, MLP 3072) -> LayerNorm -> reshape to ``H/16 x W/16`` ->
3x3 conv to 512 -> 4 decoder blocks (bilinear x2 upsampling, concatenation with the
H/8, H/4, H/2 trunk features, two 3x3 conv-BN-ReLU) with 256, 128, 64, 16 channels ->
3x3 conv to ``classes``. Deviation: TransUNet's max-pool has no padding and pads odd
feature maps afterwards; here the pool pads by 1 (timm's default stem) so every stage is
exactly ``H / 2**k`` for H a multiple of 16.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from segbench.models.checks import check_int, check_ints, check_rate, is_int, is_ints
from segbench.models.registry import MODELS


class _ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class _DecoderBlock(nn.Module):
    """Bilinear x2 upsampling, optional skip concatenation, two 3x3 conv-BN-ReLU."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = _ConvBNReLU(c_in + c_skip, c_out)
        self.conv2 = _ConvBNReLU(c_out, c_out)

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


@MODELS.register(
    "transunet",
    divisor=lambda **_: 16,
    tiny={
        "img_size": 64,
        "resnet_layers": [1, 1, 1],
        "resnet_channels": [32, 64, 128],
        "stem_channels": 16,
        "norm_groups": 8,
        "embed_dim": 64,
        "depth": 2,
        "num_heads": 4,
        "head_channels": 32,
        "decoder_channels": [32, 16, 16, 8],
    },
    reference=(
        "Chen et al., TransUNet: Transformers Make Strong Encoders for Medical Image "
        "Segmentation, arXiv 2102.04306 (2021); paper 000 ref [2], trained from scratch"
    ),
)
class TransUNet(nn.Module):
    """TransUNet with an R50-ViT hybrid encoder and a cascaded upsampler (Chen et al. 2021).

    Args:
        in_channels: input channels (the trunk's first convolution takes them directly;
            TransUNet repeats a grey channel three times instead, for pretrained weights).
        classes: output channels (logits).
        img_size: training input size the position embeddings are made for (default 256,
            paper 000's; Chen et al. used 224). Other multiples of 16 also work: the
            embeddings are resampled bicubically.
        resnet_layers: bottleneck blocks per trunk stage (default ``(3, 4, 9)``).
        resnet_channels: output channels per trunk stage (default ``(256, 512, 1024)``).
        stem_channels: channels of the trunk's root convolution (default 64).
        embed_dim: transformer width (default 768, ViT-B).
        depth: transformer layers (default 12).
        num_heads: attention heads (default 12).
        mlp_ratio: MLP width / embed_dim (default 4).
        dropout: dropout on embeddings and MLPs (default 0.1, TransUNet's).
        attn_dropout: attention dropout (default 0.0, TransUNet's).
        head_channels: channels of the 3x3 conv on the token grid (default 512).
        decoder_channels: channels of the 4 decoder blocks (default ``(256, 128, 64, 16)``).
        n_skip: number of trunk skip connections used, 0-3 (default 3).
        norm_groups: GroupNorm groups in the trunk (default 32).

    Shape:
        ``[B, in_channels, H, W] -> [B, classes, H, W]``, H and W multiples of 16.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        img_size: int = 256,
        resnet_layers: Sequence[int] = (3, 4, 9),
        resnet_channels: Sequence[int] = (256, 512, 1024),
        stem_channels: int = 64,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        head_channels: int = 512,
        decoder_channels: Sequence[int] = (256, 128, 64, 16),
        n_skip: int = 3,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        from timm.layers import GroupNormAct, StdConv2d
        from timm.models.resnetv2 import ResNetV2
        from timm.models.vision_transformer import Block

        _validate(
            img_size, resnet_layers, resnet_channels, stem_channels, embed_dim, depth,
            num_heads, mlp_ratio, dropout, attn_dropout, head_channels, decoder_channels, n_skip,
            norm_groups,
        )  # fmt: skip
        self.img_size = img_size
        self.n_skip = n_skip
        self.trunk = ResNetV2(
            layers=list(resnet_layers),
            channels=tuple(resnet_channels),
            num_classes=0,
            in_chans=in_channels,
            global_pool="",
            stem_chs=stem_channels,
            stem_type="",
            preact=False,
            conv_layer=partial(StdConv2d, eps=1e-5),
            norm_layer=partial(GroupNormAct, num_groups=norm_groups, eps=1e-6),
        )
        grid = img_size // 16
        self.patch_embed = nn.Conv2d(resnet_channels[-1], embed_dim, kernel_size=1)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, embed_dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(
            *[
                Block(
                    embed_dim,
                    num_heads,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=True,
                    proj_drop=dropout,
                    attn_drop=attn_dropout,
                    norm_layer=partial(nn.LayerNorm, eps=1e-6),
                )
                for _ in range(depth)
            ]
        )
        for block in self.blocks:
            # TransUNet drops the attention output projection at attention_dropout_rate
            # (0.0), only the MLP at dropout_rate; timm's Block uses proj_drop for both.
            block.attn.proj_drop = nn.Dropout(attn_dropout)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

        # Cascaded upsampler: skips at H/8, H/4, H/2 (trunk stage 2, stage 1, root).
        skip_channels = [resnet_channels[1], resnet_channels[0], stem_channels, 0]
        skip_channels = [c if i < n_skip else 0 for i, c in enumerate(skip_channels)]
        self.conv_more = _ConvBNReLU(embed_dim, head_channels)
        c_in = [head_channels, *decoder_channels[:-1]]
        self.decoder = nn.ModuleList(
            _DecoderBlock(ci, cs, co)
            for ci, cs, co in zip(c_in, skip_channels, decoder_channels, strict=True)
        )
        self.head = nn.Conv2d(decoder_channels[-1], classes, kernel_size=3, padding=1)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def _pos_embed(self, h: int, w: int) -> Tensor:
        grid = self.img_size // 16
        if (h, w) == (grid, grid):
            return self.pos_embed
        from timm.layers import resample_abs_pos_embed

        return resample_abs_pos_embed(
            self.pos_embed, [h, w], old_size=[grid, grid], num_prefix_tokens=0
        )

    def forward(self, x: Tensor) -> Tensor:
        trunk = self.trunk
        stem = trunk.stem
        x = stem.norm(stem.conv(x))  # root, H/2
        feats = [x]
        x = stem.pool(x)
        for i, stage in enumerate(trunk.stages):
            x = stage(x)
            if i < len(trunk.stages) - 1:
                feats.append(x)  # H/4, H/8
        x = self.patch_embed(x)  # [B, D, H/16, W/16]
        b, d, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = self.pos_drop(tokens + self._pos_embed(h, w))
        tokens = self.norm(self.blocks(tokens))
        x = tokens.transpose(1, 2).reshape(b, d, h, w)
        x = self.conv_more(x)
        skips = [feats[2], feats[1], feats[0], None]
        for i, block in enumerate(self.decoder):
            x = block(x, skips[i] if i < self.n_skip else None)
        return self.head(x)


def _validate(
    img_size: Any,
    resnet_layers: Any,
    resnet_channels: Any,
    stem_channels: Any,
    embed_dim: Any,
    depth: Any,
    num_heads: Any,
    mlp_ratio: Any,
    dropout: Any,
    attn_dropout: Any,
    head_channels: Any,
    decoder_channels: Any,
    n_skip: Any,
    norm_groups: Any,
) -> None:
    if not is_int(img_size) or img_size % 16:
        raise ValueError(f"img_size must be a positive multiple of 16, got {img_size!r}")
    check_ints("resnet_layers", resnet_layers, length=3)
    check_int("norm_groups", norm_groups)
    if not is_ints(resnet_channels, 3) or any(c % (4 * norm_groups) for c in resnet_channels):
        raise ValueError(
            f"resnet_channels must be 3 positive multiples of 4 * norm_groups = "
            f"{4 * norm_groups} (GroupNorm on the bottleneck width c/4), got {resnet_channels!r}"
        )
    if not is_int(stem_channels) or stem_channels % norm_groups:
        raise ValueError(
            f"stem_channels must be a positive multiple of norm_groups={norm_groups}, "
            f"got {stem_channels!r}"
        )
    if not is_int(num_heads) or not is_int(embed_dim) or embed_dim % num_heads:
        raise ValueError(
            f"embed_dim must be a positive multiple of num_heads, got embed_dim={embed_dim!r}, "
            f"num_heads={num_heads!r}"
        )
    check_int("depth", depth)
    if not isinstance(mlp_ratio, int | float) or mlp_ratio <= 0:
        raise ValueError(f"mlp_ratio must be a positive number, got {mlp_ratio!r}")
    check_rate("dropout", dropout)
    check_rate("attn_dropout", attn_dropout)
    check_int("head_channels", head_channels)
    check_ints("decoder_channels", decoder_channels, length=4)
    check_int("n_skip", n_skip, lo=0, hi=3)
