"""One way in for every image file: :func:`read_image_file` picks the reader by the path."""

from __future__ import annotations

from pathlib import Path

from .bioformats import BIOIO_SUFFIXES, read_bioio
from .metadata import ImageFile
from .ome_zarr import is_zarr_folder, read_ome_zarr
from .plain import SUPPORTED_SUFFIXES, TIFF_SUFFIXES, one_line_message, read_image
from .tiff import read_tiff_file


def is_image_path(path) -> bool:
    """Whether ``path`` is something :func:`read_image_file` reads (by its name, or a zarr folder)."""
    path = Path(path)
    if path.is_dir():
        return is_zarr_folder(path)
    return path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES + BIOIO_SUFFIXES


def read_image_file(path) -> ImageFile:
    """Read an image file with its axes and pixel size.

    TIFF (OME and ImageJ metadata honoured: channels, Z, T, pixel size), OME-Zarr folders
    (``pip install "napari-unet[zarr]"``), CZI, ND2 and LIF (``pip install
    "napari-unet[formats]"``), and everything :func:`read_image` reads (axes None).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ImageFile

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unreadable, unsupported, or a reader that is not installed (the message names the
        extra to install); the one-line message starts with the path.
    """
    path = Path(path)
    if path.is_dir() and is_zarr_folder(path):
        return read_ome_zarr(path)
    if path.suffix.lower() in BIOIO_SUFFIXES and path.is_file():
        return read_bioio(path)
    data = read_image(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return ImageFile(data=data)
    try:
        return read_tiff_file(path)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - metadata of any kind can be damaged
        raise ValueError(f"{path}: cannot read its TIFF metadata ({one_line_message(error)})") from None
