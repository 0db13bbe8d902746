"""Files: every image format read through one dispatch, results and models written atomically.

:func:`read_image_file` reads TIFF (OME and ImageJ axes and pixel size), PNG, JPEG, BMP,
``.npy``, OME-Zarr folders and CZI / ND2 / LIF with what the file says about its axes;
:func:`read_image` gives the plain pixels. Every way a file can fail to be an image ends in
one ``ValueError`` (or ``FileNotFoundError``) whose one-line message starts with the path.
Every file written goes through :func:`atomic_write` / :func:`atomic_write_folder`.
"""

from .atomic import atomic_write, atomic_write_folder
from .bioformats import BIOIO_SUFFIXES, FORMATS_EXTRA, read_bioio
from .dispatch import is_image_path, read_image_file
from .metadata import ImageFile, output_stem
from .ome_zarr import ZARR_EXTRA, is_zarr_folder, read_ome_zarr, write_ome_zarr
from .outlines import outlines, write_imagej_rois, write_outline_text
from .plain import SUPPORTED_SUFFIXES, TIFF_SUFFIXES, one_line_message, read_image
from .tiff import read_tiff_file, write_tiff

__all__ = ["BIOIO_SUFFIXES", "FORMATS_EXTRA", "ImageFile", "SUPPORTED_SUFFIXES", "TIFF_SUFFIXES", "ZARR_EXTRA",
           "atomic_write", "atomic_write_folder", "is_image_path", "is_zarr_folder", "one_line_message", "outlines",
           "output_stem", "read_bioio", "read_image", "read_image_file", "read_ome_zarr", "read_tiff_file",
           "write_imagej_rois", "write_ome_zarr", "write_outline_text", "write_tiff"]
