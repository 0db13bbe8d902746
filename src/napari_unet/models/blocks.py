"""Building blocks shared by U-Net and UNet++: conv blocks, up-sampling, cropping, geometry."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

CONVS_PER_BLOCK = 2
KERNEL = 3
# pixels one "valid" 3x3 conv block removes on each side, at the block's own scale
_BLOCK_SHRINK = CONVS_PER_BLOCK * (KERNEL - 1) // 2


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by optional batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, padding: str, batch_norm: bool):
        layers: list[nn.Module] = []
        pad = 1 if padding == "same" else 0
        for index in range(CONVS_PER_BLOCK):
            layers.append(
                nn.Conv2d(in_channels if index == 0 else out_channels, out_channels, KERNEL,
                          padding=pad, bias=not batch_norm)
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Upsample(nn.Module):
    """Double the spatial size and change channels: 2x2 transposed conv or bilinear + 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, *, mode: str, padding: str):
        super().__init__()
        self.mode = mode
        # unpadded nets keep only pixels computed from real neighbours: bilinear output at
        # the map edge reads a clamped neighbour, so it is cropped away
        self.crop = 1 if (mode == "bilinear" and padding == "valid") else 0
        if mode == "transpose":
            self.layer = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.layer = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "bilinear":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            if self.crop:
                x = x[..., self.crop:-self.crop, self.crop:-self.crop]
        return self.layer(x)


class Encoder(nn.Module):
    """Contracting path: a conv block per level, 2x2 max-pooling between levels.

    Returns the feature map of every level, finest first: ``depth + 1`` tensors.
    """

    def __init__(self, in_channels: int, channels: list[int], *, padding: str, batch_norm: bool,
                 dropout: float):
        super().__init__()
        inputs = [in_channels] + channels[:-1]
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, padding=padding, batch_norm=batch_norm)
            for c_in, c_out in zip(inputs, channels)
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, depth: int | None = None) -> list[torch.Tensor]:
        depth = len(self.blocks) - 1 if depth is None else depth
        features = []
        for level in range(depth + 1):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = self.blocks[level](x)
            features.append(x)
        features[-1] = self.dropout(features[-1])
        return features


def centre_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop the last two axes of ``x`` symmetrically to ``(height, width)``."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    if top == 0 and left == 0 and x.shape[-2] == height and x.shape[-1] == width:
        return x
    return x[..., top:top + height, left:left + width]


def channel_plan(base_channels: int, depth: int) -> list[int]:
    """Channels per level: ``base * 2**level`` for levels ``0..depth``."""
    return [base_channels * 2**level for level in range(depth + 1)]


def he_initialise(module: nn.Module) -> None:
    """Gaussian weights with std sqrt(2 / fan_in) (the U-Net paper's rule), zero biases."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def nested_output_sizes(input_size: int, depth: int, padding: str,
                        upsampling: str = "transpose") -> dict[tuple[int, int], int] | None:
    """Spatial size of every node X(level, column) of a U-Net/UNet++ grid for one axis.

    Column 0 is the encoder; node (i, j) with j >= 1 up-samples node (i+1, j-1) and
    concatenates the (cropped) earlier nodes of level i. U-Net's decoder is the diagonal
    (i, depth - i). Returns None when the size is not usable: a pooling would see an odd
    size, a map would vanish, or a crop would be asymmetric.
    """
    sizes: dict[tuple[int, int], int] = {}
    shrink = 2 * _BLOCK_SHRINK if padding == "valid" else 0
    up_crop = 2 if (padding == "valid" and upsampling == "bilinear") else 0
    size = input_size
    for level in range(depth + 1):
        if level > 0:
            if size % 2:
                return None
            size //= 2
        size -= shrink
        if size < 1:
            return None
        sizes[(level, 0)] = size
    for column in range(1, depth + 1):
        for level in range(depth + 1 - column):
            upsampled = 2 * sizes[(level + 1, column - 1)] - up_crop
            for earlier in range(column):
                excess = sizes[(level, earlier)] - upsampled
                if excess < 0 or excess % 2:
                    return None
            size = upsampled - shrink
            if size < 1:
                return None
            sizes[(level, column)] = size
    return sizes


def receptive_radius(depth: int, upsampling: str) -> int:
    """Pixels of context each side of an output pixel that can influence it (an upper bound).

    Unpadded 3x3 blocks need exactly 6 * 2**depth - 4 (92 px for depth 4, the paper's
    572 -> 388). Each 2x2 pooling can round a border effect up by one pixel of its level,
    adding at most 2**depth in all; bilinear up-sampling reads one more low-resolution
    pixel per level, adding as much again.
    """
    radius = 7 * 2**depth - 4
    if upsampling == "bilinear":
        radius += 2**depth
    return radius


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)
