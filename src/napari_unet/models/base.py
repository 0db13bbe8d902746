"""What U-Net and UNet++ share: forward with optional pruning, geometry, the model container."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..config import CLASS_NAMES, Labelling, ModelConfig, Normalization
from .blocks import centre_crop, nested_output_sizes, receptive_radius


class SegmentationNetwork(nn.Module):
    """A fully convolutional network returning per-pixel class logits.

    Subclasses implement :meth:`forward_heads`; everything geometric is derived here from
    the config so the tiler and the trainer treat both architectures alike.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    @property
    def levels(self) -> tuple[int, ...]:
        """Inference levels this network can be pruned to (UNet++ with deep supervision)."""
        return (self.config.depth,)

    def check_level(self, level: int | None) -> int:
        """Return the depth a forward pass at ``level`` uses; refuse levels the net lacks."""
        if level is None:
            return self.config.depth
        if isinstance(level, bool) or not isinstance(level, int) or level not in self.levels:
            raise ValueError(
                f"prune_level must be one of {list(self.levels)} or None for this "
                f"{self.config.arch} (depth {self.config.depth}"
                f"{', deep supervision' if self.config.deep_supervision else ''}), got {level!r}"
            )
        return level

    def forward_heads(self, x: torch.Tensor, level: int | None = None) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        """Class logits ``(N, classes, h, w)``; several heads are averaged as probabilities."""
        heads = self.forward_heads(x, level)
        if len(heads) == 1:
            return heads[0]
        height, width = heads[-1].shape[-2:]
        probabilities = torch.stack(
            [F.softmax(centre_crop(head, height, width).float(), dim=1) for head in heads]
        ).mean(0)
        return torch.log(probabilities.clamp_min(1e-12))

    def output_size(self, input_size: int, level: int | None = None) -> int | None:
        """Output size along one axis for ``input_size`` input pixels, None if unusable."""
        depth = self.check_level(level)
        sizes = nested_output_sizes(input_size, depth, self.config.padding, self.config.upsampling)
        return None if sizes is None else sizes[(0, depth)]

    def alignment(self, level: int | None = None) -> int:
        """Shifts that are multiples of this many pixels commute with the network."""
        return 2 ** self.check_level(level)

    def receptive_radius(self, level: int | None = None) -> int:
        return receptive_radius(self.check_level(level), self.config.upsampling)


# how a model's diameter estimate reads its probes (implemented in inference.diameter)
DIAMETER_RULES = ("confidence", "stable")


@dataclass
class SegmentationModel:
    """A network plus everything needed to use it on raw images.

    Attributes
    ----------
    network : SegmentationNetwork
        The torch module (``model.network``).
    normalization : Normalization
        Intensity normalisation applied once per image or plane.
    class_names : tuple of str
        Output classes, in channel order; instance labels need ("background", "interior",
        "boundary").
    name : str
        Shown in menus and stored in files.
    history : list of dict
        Training runs that produced these weights (recipe, steps, final loss, metrics).
    diameter : float or None
        Typical object diameter (pixels) the network works at: images are rescaled so
        their objects have this size before prediction. None: images are used as they
        are (models trained without rescaling).
    diameter_bias : float
        How much larger the model's own measurement of object size comes out than the
        annotated diameter it was trained with (median over held-out images); the
        diameter estimate divides by it.
    diameter_rule : str
        How the diameter estimate picks among the model's probes of an image:
        "confidence" (nuclei: the scale it is surest of) or "stable" (whole cells: the
        size that stays the same between probes an octave apart); see
        :mod:`napari_unet.inference.diameter`.
    labelling : Labelling
        How probabilities become instance labels (thresholds, split depth, smallest
        object), calibrated on held-out images for pretrained models.
    channel_names : tuple of str or None
        The image channels the model reads, in order, when it was trained on several
        (e.g. cytoplasm and nucleus): a multi-channel image gives it its first
        ``len(channel_names)`` channels by default. None: one channel (grey) or colour.
    """

    network: SegmentationNetwork
    normalization: Normalization = field(default_factory=Normalization)
    class_names: tuple[str, ...] = CLASS_NAMES
    name: str = "untitled"
    history: list[dict] = field(default_factory=list)
    diameter: float | None = None
    diameter_bias: float = 1.0
    diameter_rule: str = "confidence"
    labelling: Labelling = field(default_factory=Labelling)
    channel_names: tuple[str, ...] | None = None

    @property
    def config(self) -> ModelConfig:
        return self.network.config

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    def __repr__(self) -> str:
        c = self.config
        return (f"SegmentationModel(name={self.name!r}, arch={c.arch!r}, depth={c.depth}, "
                f"base_channels={c.base_channels}, padding={c.padding!r}, "
                f"parameters={self.parameter_count():,})")
