"""napari-unet: U-Net / UNet++ cell segmentation for napari, Python scripts and clusters.

The public API is importable without Qt or napari; its names load on first use
(``lazy_loader``, declared in ``__init__.pyi``), so ``import napari_unet`` stays cheap and
napari reads the plugin manifest without importing torch.
"""

import lazy_loader

__version__ = "0.2.0"

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
__all__ = [*__all__, "__version__"]
