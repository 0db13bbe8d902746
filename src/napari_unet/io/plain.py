"""Plain image files: TIFF pixels, PNG, JPEG, BMP and .npy, each checked by its first bytes.

Every way a file can fail to be an image ends in one ``ValueError`` (or
``FileNotFoundError``) whose one-line message starts with the path, so the command line
can print it as ``error: <file>: <what is wrong>`` and go on with the next file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SUPPORTED_SUFFIXES = TIFF_SUFFIXES + (".npy",) + PLAIN_SUFFIXES
# the first bytes of each format: a file that does not start with them is refused before
# any decoder sees it (decoders answer junk with long, multi-line or misleading messages)
_SIGNATURES = {
    "TIFF": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    "NPY": (b"\x93NUMPY",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "BMP": (b"BM",),
}
_FORMAT_OF_SUFFIX = {".tif": "TIFF", ".tiff": "TIFF", ".npy": "NPY", ".png": "PNG", ".jpg": "JPEG",
                     ".jpeg": "JPEG", ".bmp": "BMP"}


def one_line_message(error: BaseException) -> str:
    """The message of ``error`` on one line (decoders and torch like multi-line messages)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def read_image(path) -> np.ndarray:
    """Read a TIFF, PNG/JPEG/BMP or .npy file into an ndarray (never unpickles).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray
        As stored: (Y, X), (Y, X, C), (Z, Y, X), ...

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a folder, empty, of an unsupported type, or not decodable; the
        one-line message starts with the path.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an image file")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix or '(no suffix)'!r} "
                         "(use .tif, .png, .jpg, .bmp or .npy)")
    kind = _FORMAT_OF_SUFFIX[suffix]
    try:
        with open(path, "rb") as stream:
            head = stream.read(8)
    except OSError as error:
        raise ValueError(f"{path}: cannot be opened ({one_line_message(error)})") from None
    if not head:
        raise ValueError(f"{path}: empty file (0 bytes)")
    if not head.startswith(_SIGNATURES[kind]):
        raise ValueError(f"{path}: not a {kind} file (its first bytes are {head[:4]!r})")
    try:
        if kind == "TIFF":
            import tifffile

            return tifffile.imread(path)
        if kind == "NPY":
            return np.load(path, allow_pickle=False)
        from skimage.io import imread

        return imread(path)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - decoders raise anything on a damaged file
        raise ValueError(f"{path}: cannot be read as {kind} ({one_line_message(error)})") from None
