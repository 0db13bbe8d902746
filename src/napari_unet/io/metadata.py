"""What a file says about its pixels (axes, pixel size), shared by every reader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_MICROMETRES = {"nm": 1e-3, "nanometer": 1e-3, "µm": 1.0, "\u03bcm": 1.0, "um": 1.0, "micron": 1.0,
                "micrometer": 1.0, "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6,
                "meter": 1e6, "Å": 1e-4, "angstrom": 1e-4}

def output_stem(path) -> str:
    """File name without its image suffix (``a.ome.tif`` -> ``a``, ``cells.v2.tif`` -> ``cells.v2``)."""
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: files compare by identity
class ImageFile:
    """An image file's pixels and what its metadata says about them.

    Attributes
    ----------
    data : ndarray or dask array
        As stored, axes of length 1 (other than Y, X) dropped when the axes are known;
        lazy (dask) for OME-Zarr, CZI, ND2 and LIF, so large files are read chunk by chunk.
    axes : str or None
        One letter per axis of ``data`` from "TZCYX" (what
        :attr:`napari_unet.PredictConfig.axes` takes), from OME / ImageJ / OME-Zarr / bioio
        metadata; None: the file does not say (the axes are then guessed from the shape).
    pixel_size : dict or None
        Micrometres per pixel along "X", "Y" and "Z" as far as the file says; None: unknown.
    """

    data: object
    axes: str | None = None
    pixel_size: dict | None = None


def micrometres(value, unit) -> float | None:
    """``value`` in ``unit`` as micrometres (None when either is unknown or not positive)."""
    factor = _MICROMETRES.get(str(unit if unit is not None else "µm").strip().lower().replace("\\u00b5", "µ"))
    try:
        size = float(value) * factor
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


def squeeze(data, axes: str | None):
    """Drop axes of length 1 other than Y and X (a T of 1 is no time series)."""
    if axes is None:
        return data, None
    index = tuple(0 if size == 1 and letter not in "YX" else slice(None) for size, letter in zip(data.shape, axes))
    kept = "".join(letter for size, letter in zip(data.shape, axes) if size != 1 or letter in "YX")
    return data[index], kept
