"""Everything decided about an image before its first tile: axes, channel, polarity, scale.

:func:`read_for_model` is the one place where an image meets a model: it resolves the
device and precision, reads the axes, chooses the channel of a multi-channel image,
detects the polarity and, for a model with a working diameter, finds the object size
(given or estimated) and so the factor the image is rescaled by. Every prediction path
(whole images, tiles streamed to napari, dask chunks) reads its planes through the
resulting :class:`Reading`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..config import Labelling, PredictConfig, SegmentConfig, resolve_config
from ..devices import resolve_device, resolve_precision
from ..events import ImageRead
from ..models import SegmentationModel, load_model
from .appearance import Appearance, detect_appearance, intensity_range
from .denoise import SmoothedPlane, choose_sigma, noise_ratio
from .diameter import DiameterEstimate, choose_channel, estimate_stack
from .layout import ImageLayout, PlaneView, describe_image
from .rescale import RescaledPlane, is_unit, scaled_length
from .runner import TilePlan, TileRunner, TileSource, plan_tiling


@dataclass(frozen=True)
class Reading:
    """How one image is read for one model.

    Attributes
    ----------
    layout : ImageLayout
    channel : int, tuple of int, or None
        The channel segmented of a multi-channel image, or the channels the model reads
        (in order); None for grey or colour images.
    appearance : Appearance
        Colour and polarity (the modality).
    diameter : float or None
        Object diameter in input pixels (given or estimated); None: not rescaled.
    estimated : bool
        ``diameter`` was estimated from the image.
    factor : float
        Network-grid pixels per input pixel: ``model.diameter / diameter`` (1 when not
        rescaled).
    model : SegmentationModel
        On ``device``.
    device : torch.device
    precision : str
        Resolved ("fp32", "bf16" or "fp16").
    config : PredictConfig
    rival : float or None
        An estimated ``diameter`` that a scale far from it nearly matched (the estimate is
        uncertain): that scale's diameter; None otherwise.
    denoise, z_denoise : float
        Gaussian sigma in input pixels and in planes the planes are smoothed with before
        the network (0: not smoothed; :mod:`.denoise`).
    """

    layout: ImageLayout
    channel: int | tuple[int, ...] | None
    appearance: Appearance
    diameter: float | None
    estimated: bool
    factor: float
    model: SegmentationModel
    device: torch.device
    precision: str
    config: PredictConfig
    rival: float | None = None
    denoise: float = 0.0
    z_denoise: float = 0.0

    @property
    def rescaled(self) -> bool:
        return not is_unit(self.factor)

    def labelling(self, config: SegmentConfig) -> Labelling:
        """The labelling in force on the network's grid: the model's, with ``config``'s fields."""
        return config.labelling(self.model.labelling, self.factor if self.rescaled else 1.0)

    @property
    def network_shape(self) -> tuple[int, int]:
        """(y, x) of a plane on the network's grid."""
        if not self.rescaled:
            return self.layout.plane_shape
        return tuple(scaled_length(n, self.factor) for n in self.layout.plane_shape)

    def input_plane(self, image, index: int = 0) -> PlaneView | SmoothedPlane:
        if self.denoise > 0:
            return SmoothedPlane(self.layout, image, index, self.channel, self.denoise, self.z_denoise)
        return self.layout.plane(image, index, self.channel)

    def network_plane(self, plane):
        """``plane`` (input grid) as seen on the network's grid."""
        return RescaledPlane(plane, self.factor) if self.rescaled else plane

    def source(self, plane) -> TileSource:
        """Tiles of ``plane`` (input grid) on the network's grid; percentiles of the input plane."""
        in_channels = self.model.config.in_channels
        scale = intensity_range(plane, self.appearance, self.model.normalization, in_channels)
        return TileSource(self.network_plane(plane), self.appearance, scale, in_channels)

    def tile_plan(self, shape: tuple[int, int] | None = None) -> TilePlan:
        config = self.config
        return plan_tiling(self.model.network, shape or self.network_shape, self.device, self.precision,
                           config.tile_size, config.batch_size, config.prune_level)

    def runner(self, batch_size: int, flips: bool | None = None) -> TileRunner:
        """Runs this reading's tiles; ``flips`` (default: the config's) averages mirrored runs."""
        return TileRunner(self.model, self.device, self.precision, batch_size, self.config.prune_level,
                          self.config.flips if flips is None else flips)

    def event(self) -> ImageRead:
        return ImageRead(axes=self.layout.axes, modality=self.appearance.modality, channel=self.channel,
                         diameter=self.diameter, estimated=self.estimated, factor=self.factor,
                         denoise=self.denoise)


def check_segmentation_model(model: SegmentationModel) -> None:
    """Instance labels need the three classes background, interior, boundary."""
    from ..config import CLASS_NAMES

    if tuple(model.class_names) != CLASS_NAMES or model.config.out_channels != len(CLASS_NAMES):
        raise ValueError(f"model {model.name!r} predicts {list(model.class_names)}; instance labels need the "
                         f"classes {list(CLASS_NAMES)}")


def _with_denoising(reading: Reading, image, middle: int) -> Reading:
    """``reading`` with the smoothing its config asks for, or its noise needs (:mod:`.denoise`)."""
    config = reading.config
    sigma = config.denoise
    if sigma is None:
        sigma = choose_sigma(noise_ratio(reading.input_plane(image, middle)))
    if sigma <= 0:
        return reading
    z_sigma = sigma / (getattr(config, "z_step", None) or 1.0) if reading.layout.stack_axis == "Z" else 0.0
    return dataclasses.replace(reading, denoise=float(sigma), z_denoise=z_sigma)


def read_for_model(image, model, config: PredictConfig) -> Reading:
    """Decide how ``image`` is read for ``model`` (see the module docstring).

    Parameters
    ----------
    image : array
        numpy, dask or zarr (see :func:`napari_unet.inference.layout.describe_image`).
    model : SegmentationModel, str or path
    config : PredictConfig

    Raises
    ------
    ValueError
        Unusable axes, channel, prune level or device; a model whose input channels the
        image cannot give.
    """
    layout = describe_image(image, axes=config.axes)
    device = resolve_device(config.device)
    model = load_model(model, device=device)
    model.network.check_level(config.prune_level)
    if config.channel is not None and "C" not in layout.axes:
        raise ValueError(f"channel={config.channel} but the image has no channel axis (axes {layout.axes})")
    if model.channel_names and (not layout.multichannel and config.channel is None):
        raise ValueError(f"model {model.name!r} reads {len(model.channel_names)} channels "
                         f"({', '.join(model.channel_names)}); the image (axes {layout.axes}) has none to give")
    middle = layout.planes // 2
    reading = Reading(layout=layout, channel=config.channel, appearance=Appearance(colour=False, inverted=False),
                      diameter=None, estimated=False, factor=1.0, model=model, device=device,
                      precision=resolve_precision(config.precision, device), config=config)
    probes = None
    if layout.multichannel and config.channel is None and model.channel_names:
        wanted = len(model.channel_names)
        if layout.channels < wanted:
            raise ValueError(f"model {model.name!r} reads {wanted} channels ({', '.join(model.channel_names)}); "
                             f"the image has {layout.channels} (axes {layout.axes})")
        reading = dataclasses.replace(reading, channel=tuple(range(wanted)))
    elif layout.multichannel and config.channel is None:
        channel, probes = choose_channel(image, reading)
        reading = dataclasses.replace(reading, channel=channel)
    reading = _with_denoising(reading, image, middle)
    plane = reading.input_plane(image, middle)
    appearance = detect_appearance(plane, colour=plane.ndim == 3, invert=config.invert)
    reading = dataclasses.replace(reading, appearance=appearance)
    if model.diameter is None:
        return reading
    if config.diameter is not None:
        return dataclasses.replace(reading, diameter=float(config.diameter),
                                   factor=model.diameter / float(config.diameter))
    estimate = estimate_stack(image, reading, probes if probes and config.invert is None else None)
    if estimate.diameter is None:
        return reading
    return dataclasses.replace(reading, diameter=estimate.diameter, estimated=True,
                               factor=model.diameter / estimate.diameter, rival=estimate.rival)


def estimate_diameter(image, model="nuclei", config=None, **options) -> DiameterEstimate:
    """Estimate the typical object diameter (pixels) of ``image`` with ``model``.

    Parameters
    ----------
    image : array
        As for :func:`napari_unet.segment`; the middle plane of a time series is measured,
        five planes of a Z stack (their objects pooled; the sections' size times 4 / pi).
    model : SegmentationModel, str or path
        Must have a working diameter (``model.diameter``).
    config : PredictConfig, optional
    **options
        Fields of :class:`napari_unet.PredictConfig` (``channel``, ``invert``, ``axes``,
        ``device``, ...); ``diameter`` is ignored.

    Returns
    -------
    DiameterEstimate
        ``diameter`` (None if the model found nothing at any scale) and the probes.
    """
    config = resolve_config(PredictConfig, config, options).replace(diameter=None)
    reading = read_for_model(image, model, dataclasses.replace(config, diameter=1.0))
    if reading.model.diameter is None:
        raise ValueError(f"model {reading.model.name!r} has no working diameter: it segments images at "
                         "their own scale")
    return estimate_stack(image, dataclasses.replace(reading, diameter=None, factor=1.0))
