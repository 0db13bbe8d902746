"""TIFF with its OME or ImageJ metadata (axes, pixel size), and TIFF output."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .metadata import ImageFile, micrometres, squeeze

# tifffile's axis letters that mean the same as ours (S: samples of an RGB pixel)
_TIFF_AXES = {"T": "T", "Z": "Z", "C": "C", "S": "C", "Y": "Y", "X": "X"}
def _ome_pixel_size(xml: str) -> dict | None:
    pixels = next((element for element in ElementTree.fromstring(xml).iter() if element.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    sizes = {axis: micrometres(pixels.get(f"PhysicalSize{axis}"), pixels.get(f"PhysicalSize{axis}Unit"))
             for axis in "XYZ" if pixels.get(f"PhysicalSize{axis}") is not None}
    return {axis: size for axis, size in sizes.items() if size is not None} or None


def _imagej_pixel_size(tif) -> dict | None:
    metadata = tif.imagej_metadata or {}
    unit = metadata.get("unit")
    if unit in (None, "pixel", "pixels"):
        return None
    sizes = {}
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        resolution = tif.pages[0].tags.get(tag)
        if resolution is not None and resolution.value[0]:
            sizes[axis] = micrometres(resolution.value[1] / resolution.value[0], unit)
    if "spacing" in metadata:
        sizes["Z"] = micrometres(metadata["spacing"], unit)
    return {axis: size for axis, size in sizes.items() if size is not None} or None


def read_tiff_file(path: Path) -> ImageFile:
    """A TIFF with the axes and pixel size of its OME or ImageJ metadata (plain TIFFs: axes None)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        axes = None
        if tif.is_ome or tif.is_imagej:
            letters = series.axes.upper()
            if set(letters) <= set(_TIFF_AXES) and not {"C", "S"} <= set(letters):
                axes = "".join(_TIFF_AXES[letter] for letter in letters)
        pixel_size = _ome_pixel_size(tif.ome_metadata) if tif.is_ome else (
            _imagej_pixel_size(tif) if tif.is_imagej else None)
    data, axes = squeeze(data, axes)
    return ImageFile(data=data, axes=axes, pixel_size=pixel_size)


def write_tiff(path, data: np.ndarray) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Always grey-level planes: a (3, Y, X) stack of labels or probabilities must not be
    stored (and shown by other viewers) as an RGB image.
    """
    import tifffile

    return atomic_write(path, lambda temporary: tifffile.imwrite(temporary, data, photometric="minisblack",
                                                                 compression="zlib"))
