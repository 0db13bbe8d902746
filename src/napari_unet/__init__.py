"""napari-unet: U-Net / UNet++ cell segmentation for napari, Python scripts and clusters.

The public API is importable without Qt or napari; torch is imported on first use, so
``import napari_unet`` stays cheap (napari reads the plugin manifest without it).
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": "napari_unet.models",
    "load_model": "napari_unet.models",
    "save_model": "napari_unet.models",
    "list_models": "napari_unet.models",
    "SegmentationModel": "napari_unet.models",
    "ModelFileError": "napari_unet.models",
    "predict_probabilities": "napari_unet.predict",
    "predict_tiles": "napari_unet.predict",
    "segment": "napari_unet.predict",
    "probabilities_to_labels": "napari_unet.instances",
    "predict_lazy": "napari_unet.lazy",
    "segment_lazy": "napari_unet.lazy",
    "label_lazy": "napari_unet.lazy",
    "iter_finetune": "napari_unet.train",
    "finetune": "napari_unet.train",
    "ModelConfig": "napari_unet.config",
    "Normalization": "napari_unet.config",
    "TrainConfig": "napari_unet.config",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'napari_unet' has no attribute {name!r}")


def __dir__():
    return __all__
