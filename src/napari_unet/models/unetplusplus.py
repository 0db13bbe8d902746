"""UNet++ (Zhou et al., 2018): nested dense skip paths, deep supervision, pruning."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .base import SegmentationNetwork
from .blocks import ConvBlock, Encoder, Upsample, centre_crop, channel_plan, he_initialise


def _node(level: int, column: int) -> str:
    return f"x{level}_{column}"


class UNetPlusPlus(SegmentationNetwork):
    """UNet++: node X(i, j) concatenates X(i, 0..j-1) with the up-sampled X(i+1, j-1).

    With deep supervision every X(0, j) has a 1x1 head; the sub-network ending at X(0, L)
    is a complete model, so ``level=L`` computes only nodes with ``i + j <= L``. Without a
    level the heads' probabilities are averaged (the paper's "accurate" mode).
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        channels = channel_plan(config.base_channels, config.depth)
        block = dict(padding=config.padding, batch_norm=config.batch_norm)
        self.encoder = Encoder(config.in_channels, channels, dropout=config.dropout, **block)
        self.up = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for column in range(1, config.depth + 1):
            for level in range(config.depth + 1 - column):
                key = _node(level, column)
                self.up[key] = Upsample(channels[level + 1], channels[level], mode=config.upsampling,
                         padding=config.padding)
                self.nodes[key] = ConvBlock((column + 1) * channels[level], channels[level], **block)
        head_columns = range(1, config.depth + 1) if config.deep_supervision else [config.depth]
        self.heads = nn.ModuleDict(
            {str(column): nn.Conv2d(channels[0], config.out_channels, 1) for column in head_columns}
        )
        he_initialise(self)

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(int(column) for column in self.heads)

    def forward_heads(self, x: torch.Tensor, level: int | None = None) -> list[torch.Tensor]:
        depth = self.check_level(level)
        nodes = {(i, 0): feature for i, feature in enumerate(self.encoder(x, depth=depth))}
        for column in range(1, depth + 1):
            for row in range(depth + 1 - column):
                key = _node(row, column)
                up = self.up[key](nodes[(row + 1, column - 1)])
                height, width = up.shape[-2:]
                earlier = [centre_crop(nodes[(row, j)], height, width) for j in range(column)]
                nodes[(row, column)] = self.nodes[key](torch.cat(earlier + [up], dim=1))
        if level is not None or len(self.heads) == 1:
            return [self.heads[str(depth)](nodes[(0, depth)])]
        return [self.heads[column](nodes[(0, int(column))]) for column in self.heads]
