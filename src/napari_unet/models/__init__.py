"""Architectures, the model container and safe model files."""

from .base import SegmentationModel, SegmentationNetwork
from .io import ModelFileError, list_models, load_model, save_model
from .registry import NETWORKS, build_network, create_model

__all__ = [
    "NETWORKS",
    "ModelFileError",
    "SegmentationModel",
    "SegmentationNetwork",
    "build_network",
    "create_model",
    "list_models",
    "load_model",
    "save_model",
]
