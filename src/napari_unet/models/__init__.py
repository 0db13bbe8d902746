"""Architectures, the model container and safe model files."""

from .base import SegmentationModel, SegmentationNetwork
from .io import ModelFileError, list_models, load_model, save_model
from .registry import ARCHITECTURES, build_network, create_model

__all__ = [
    "ARCHITECTURES",
    "ModelFileError",
    "SegmentationModel",
    "SegmentationNetwork",
    "build_network",
    "create_model",
    "list_models",
    "load_model",
    "save_model",
]
