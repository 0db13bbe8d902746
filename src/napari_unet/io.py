"""Files: reading images, writing results and model files atomically.

Every way a file can fail to be an image ends in one ``ValueError`` (or
``FileNotFoundError``) whose one-line message starts with the path, so the command line
can print it as ``error: <file>: <what is wrong>`` and go on with the next file. Every
file written goes through :func:`atomic_write`: a crash never leaves a half-written file
under the final name, and the file gets the permissions the umask allows (readable by the
group on shared lab storage), not the private ones of a temporary file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


def output_stem(path) -> str:
    """File name without its image suffix (``a.ome.tif`` -> ``a``, ``cells.v2.tif`` -> ``cells.v2``)."""
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


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


def is_image_path(path) -> bool:
    """Whether ``path`` is something :func:`read_image_file` reads (by its name, or a zarr folder)."""
    from .formats import BIOIO_SUFFIXES, is_zarr_folder

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
    from . import formats

    path = Path(path)
    if path.is_dir() and formats.is_zarr_folder(path):
        return formats.read_ome_zarr(path)
    if path.suffix.lower() in formats.BIOIO_SUFFIXES and path.is_file():
        return formats.read_bioio(path)
    data = read_image(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return ImageFile(data=data)
    try:
        return formats.read_tiff_file(path)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - metadata of any kind can be damaged
        raise ValueError(f"{path}: cannot read its TIFF metadata ({one_line_message(error)})") from None


def atomic_write(path, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, then move the finished file to ``path``.

    The temporary file lives in the target folder (so the final rename is atomic), is
    flushed to disk, and gets the permissions ``0666 & ~umask`` before it takes the name.
    On any failure it is removed and ``path`` (if it existed) is left as it was.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~umask)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_folder(path, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_folder)``, then move the finished folder to ``path``.

    The folder (e.g. an OME-Zarr image) takes its name only once every file in it is
    written, with the permissions the umask allows; a folder already at ``path`` is
    replaced then. On any failure the temporary folder is removed and ``path`` is left as
    it was.
    """
    path = Path(path)
    temporary = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    aside = None  # where a folder already at ``path`` waits until the new one is in place
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(temporary)
        for root, _, files in os.walk(temporary):
            os.chmod(root, 0o777 & ~umask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~umask)
        if path.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, aside / "previous")
        os.replace(temporary, path)
    except BaseException:
        if aside is not None and (aside / "previous").exists():
            os.replace(aside / "previous", path)
        shutil.rmtree(temporary, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return path


def write_tiff(path, data: np.ndarray) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Always grey-level planes: a (3, Y, X) stack of labels or probabilities must not be
    stored (and shown by other viewers) as an RGB image.
    """
    import tifffile

    return atomic_write(path, lambda temporary: tifffile.imwrite(temporary, data, photometric="minisblack",
                                                                 compression="zlib"))
