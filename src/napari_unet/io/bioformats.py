"""Zeiss CZI, Nikon ND2 and Leica LIF through bioio and its readers (``pip install
"napari-unet[formats]"``): a missing reader is named in the error."""

from __future__ import annotations

from pathlib import Path

from ..config import AXES_LETTERS
from .metadata import ImageFile, squeeze
from .plain import one_line_message

BIOIO_SUFFIXES = (".czi", ".nd2", ".lif")
FORMATS_EXTRA = 'pip install "napari-unet[formats]"'


def read_bioio(path: Path) -> ImageFile:
    """A CZI, ND2 or LIF file (its first scene) through bioio, lazily; needs the ``formats`` extra."""
    try:
        from bioio import BioImage
    except ImportError:
        raise ValueError(f"{path}: reading {path.suffix} files needs bioio and its readers: {FORMATS_EXTRA}") from None
    try:
        image = BioImage(path)
        data, order = image.dask_data, str(image.dims.order).upper()
        sizes = image.physical_pixel_sizes
    except Exception as error:  # noqa: BLE001 - readers raise anything, e.g. a missing plugin
        raise ValueError(f"{path}: cannot be read by bioio ({one_line_message(error)}); the readers of CZI, ND2 "
                         f"and LIF come with {FORMATS_EXTRA}") from None
    if not set(order) <= set(AXES_LETTERS) or len(order) != data.ndim:
        raise ValueError(f"{path}: bioio gives axes {order!r}; napari-unet reads only {AXES_LETTERS!r}")
    pixel_size = {axis: float(getattr(sizes, axis)) for axis in "ZYX" if getattr(sizes, axis, None)} or None
    data, axes = squeeze(data, order)
    return ImageFile(data=data, axes=axes, pixel_size=pixel_size)
