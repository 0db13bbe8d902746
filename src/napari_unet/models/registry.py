"""``create_model``: one entry point for every architecture."""

from __future__ import annotations

from ..config import ModelConfig, Normalization
from .base import SegmentationModel, SegmentationNetwork
from .unet import UNet
from .unetplusplus import UNetPlusPlus

NETWORKS: dict[str, type[SegmentationNetwork]] = {"unet": UNet, "unetplusplus": UNetPlusPlus}


def build_network(config: ModelConfig) -> SegmentationNetwork:
    """Instantiate the torch module for ``config`` (randomly initialised)."""
    return NETWORKS[config.arch](config)


def create_model(arch: str = "unet", *, name: str | None = None,
                 normalization: Normalization | None = None, **config) -> SegmentationModel:
    """Create a new, randomly initialised segmentation model.

    Parameters
    ----------
    arch : {"unet", "unetplusplus"}
        Architecture.
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
