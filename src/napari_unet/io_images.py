"""Reading and writing image files for the command line (TIFF, PNG/JPEG, .npy)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_image(path) -> np.ndarray:
    """Read a TIFF, PNG/JPEG/BMP or .npy file into an ndarray (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            return tifffile.imread(path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix in PLAIN_SUFFIXES:
            from skimage.io import imread

            return imread(path)
    except (ValueError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: cannot be read as an image ({error})") from None
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .tif, .png, .jpg or .npy)")


def write_tiff(path, data: np.ndarray) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    import tifffile

    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        tifffile.imwrite(temporary, data, compression="zlib")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
