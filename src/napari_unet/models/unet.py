"""U-Net (Ronneberger, Fischer & Brox, 2015): encoder, copy-and-crop skips, decoder."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .base import SegmentationNetwork
from .blocks import ConvBlock, Encoder, Upsample, centre_crop, channel_plan, he_initialise


class UNet(SegmentationNetwork):
    """U-Net; ``padding="valid"`` reproduces the paper's 572 -> 388 geometry at depth 4."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        channels = channel_plan(config.base_channels, config.depth)
        block = dict(padding=config.padding, batch_norm=config.batch_norm)
        self.encoder = Encoder(config.in_channels, channels, dropout=config.dropout, **block)
        self.up = nn.ModuleList(
            Upsample(channels[level + 1], channels[level], mode=config.upsampling,
                         padding=config.padding)
            for level in range(config.depth)
        )
        self.decoder = nn.ModuleList(
            ConvBlock(2 * channels[level], channels[level], **block) for level in range(config.depth)
        )
        self.head = nn.Conv2d(channels[0], config.out_channels, 1)
        he_initialise(self)

    def forward_heads(self, x: torch.Tensor, level: int | None = None) -> list[torch.Tensor]:
        self.check_level(level)
        features = self.encoder(x)
        y = features[-1]
        for depth in reversed(range(self.config.depth)):
            up = self.up[depth](y)
            skip = centre_crop(features[depth], *up.shape[-2:])
            y = self.decoder[depth](torch.cat([skip, up], dim=1))
        return [self.head(y)]
