"""The architectures, in one registry, and ``create_model``: one entry point for all of them.

Adding an architecture is a module with its network class (a
:class:`~napari_unet.models.base.SegmentationNetwork` built from a
:class:`~napari_unet.config.ModelConfig`) and one :class:`Architecture` entry here: model
files, the bioimage.io export (its self-contained source, citation and tags) and the
command line read everything from the entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_choice
from ..config import ModelConfig, Normalization
from .base import SegmentationModel, SegmentationNetwork
from .unet import UNet
from .unetplusplus import UNetPlusPlus


@dataclass(frozen=True)
class Architecture:
    """One architecture: its network class, how it is called and cited, what it supports."""

    network: type[SegmentationNetwork]
    title: str
    citation: dict
    deep_supervision: bool = False


ARCHITECTURES: dict[str, Architecture] = {
    "unet": Architecture(UNet, "U-Net", {
        "text": "Ronneberger O, Fischer P, Brox T. U-Net: Convolutional Networks for Biomedical Image "
                "Segmentation. MICCAI 2015, LNCS 9351, 234-241", "doi": "10.1007/978-3-319-24574-4_28"}),
    "unetplusplus": Architecture(UNetPlusPlus, "UNet++", {
        "text": "Zhou Z, Rahman Siddiquee MM, Tajbakhsh N, Liang J. UNet++: A Nested U-Net Architecture for "
                "Medical Image Segmentation. DLMIA 2018, LNCS 11045, 3-11", "doi": "10.1007/978-3-030-00889-5_1"},
        deep_supervision=True),
}


def architecture(config: ModelConfig) -> Architecture:
    """The registry entry of ``config.arch``; ValueError for an unknown name or an option it
    does not support."""
    check_choice("arch", config.arch, tuple(ARCHITECTURES))
    entry = ARCHITECTURES[config.arch]
    if config.deep_supervision and not entry.deep_supervision:
        supported = [name for name, other in ARCHITECTURES.items() if other.deep_supervision]
        raise ValueError(f"deep_supervision=True needs arch={' or '.join(map(repr, supported))}")
    return entry


def build_network(config: ModelConfig) -> SegmentationNetwork:
    """Instantiate the torch module for ``config`` (randomly initialised)."""
    return architecture(config).network(config)


def create_model(arch: str = "unet", *, name: str | None = None,
                 normalization: Normalization | None = None, **config) -> SegmentationModel:
    """Create a new, randomly initialised segmentation model.

    Parameters
    ----------
    arch : str
        A name of :data:`ARCHITECTURES` ("unet", "unetplusplus").
    name : str, optional
        Display name; defaults to the architecture.
    normalization : Normalization, optional
        Input normalisation stored with the model.
    **config
        Fields of :class:`napari_unet.config.ModelConfig` (depth, base_channels,
        in_channels, out_channels, padding, upsampling, batch_norm, dropout,
        deep_supervision).

    Returns
    -------
    SegmentationModel
        ``model.network`` is the ``torch.nn.Module``.

    Examples
    --------
    >>> model = create_model("unet", depth=2, base_channels=8)
    >>> model.network.output_size(64)
    36
    """
    model_config = ModelConfig(arch=arch, **config)
    return SegmentationModel(
        network=build_network(model_config),
        normalization=normalization or Normalization(),
        name=name or arch,
    )
