"""Microscopy file formats: OME-TIFF / ImageJ axes and pixel sizes, OME-Zarr in and out, CZI / ND2 / LIF.

Used through :func:`napari_unet.io.read_image_file`, which says what every axis of a file
is (so a CZYX stack is read as channels of a volume, never as 4 x Z planes). OME-Zarr needs
``zarr`` (``pip install "napari-unet[zarr]"``); CZI, ND2 and LIF need ``bioio`` and its
reader plugins (``pip install "napari-unet[formats]"``): a missing one is named in the error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from .config import AXES_LETTERS
from .io import ImageFile, atomic_write_folder, one_line_message, output_stem

BIOIO_SUFFIXES = (".czi", ".nd2", ".lif")
FORMATS_EXTRA = 'pip install "napari-unet[formats]"'
ZARR_EXTRA = 'pip install "napari-unet[zarr]"'
# tifffile's axis letters that mean the same as ours (S: samples of an RGB pixel)
_TIFF_AXES = {"T": "T", "Z": "Z", "C": "C", "S": "C", "Y": "Y", "X": "X"}
_MICROMETRES = {"nm": 1e-3, "nanometer": 1e-3, "µm": 1.0, "\u03bcm": 1.0, "um": 1.0, "micron": 1.0,
                "micrometer": 1.0, "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6,
                "meter": 1e6, "Å": 1e-4, "angstrom": 1e-4}
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def is_zarr_folder(path) -> bool:
    """Whether ``path`` is a zarr folder (``*.zarr``, or one holding zarr metadata)."""
    path = Path(path)
    return path.is_dir() and (path.suffix.lower() == ".zarr"
                              or any((path / name).is_file() for name in (".zgroup", ".zattrs", "zarr.json")))


def _micrometres(value, unit) -> float | None:
    """``value`` in ``unit`` as micrometres (None when either is unknown or not positive)."""
    factor = _MICROMETRES.get(str(unit if unit is not None else "µm").strip().lower().replace("\\u00b5", "µ"))
    try:
        size = float(value) * factor
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


def _squeeze(data, axes: str | None):
    """Drop axes of length 1 other than Y and X (a T of 1 is no time series)."""
    if axes is None:
        return data, None
    index = tuple(0 if size == 1 and letter not in "YX" else slice(None) for size, letter in zip(data.shape, axes))
    kept = "".join(letter for size, letter in zip(data.shape, axes) if size != 1 or letter in "YX")
    return data[index], kept


def _ome_pixel_size(xml: str) -> dict | None:
    pixels = next((element for element in ElementTree.fromstring(xml).iter() if element.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    sizes = {axis: _micrometres(pixels.get(f"PhysicalSize{axis}"), pixels.get(f"PhysicalSize{axis}Unit"))
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
            sizes[axis] = _micrometres(resolution.value[1] / resolution.value[0], unit)
    if "spacing" in metadata:
        sizes["Z"] = _micrometres(metadata["spacing"], unit)
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
    data, axes = _squeeze(data, axes)
    return ImageFile(data=data, axes=axes, pixel_size=pixel_size)


def _import_zarr(path):
    try:
        import zarr
    except ImportError:
        raise ValueError(f"{path}: OME-Zarr needs the zarr package: {ZARR_EXTRA}") from None
    return zarr


def _ngff_scale(multiscale: dict, dataset: dict, ndim: int) -> list[float]:
    scale = [1.0] * ndim
    for transforms in (dataset.get("coordinateTransformations") or [],
                       multiscale.get("coordinateTransformations") or []):
        for transform in transforms:
            if transform.get("type") == "scale" and len(transform.get("scale", [])) == ndim:
                scale = [a * float(b) for a, b in zip(scale, transform["scale"])]
    return scale


def read_ome_zarr(path: Path) -> ImageFile:
    """The full-resolution level of an OME-Zarr image (NGFF 0.4 or 0.5) as a lazy dask array."""
    import dask.array as da

    zarr = _import_zarr(path)
    try:
        group = zarr.open_group(str(path), mode="r")
        attributes = group.attrs.asdict()
    except Exception as error:  # noqa: BLE001 - zarr raises many kinds on a damaged store
        raise ValueError(f"{path}: cannot be read as zarr ({one_line_message(error)})") from None
    multiscales = attributes.get("ome", attributes).get("multiscales")
    if not multiscales:
        raise ValueError(f"{path}: a zarr folder but not an OME-Zarr image (no multiscales metadata)")
    multiscale = multiscales[0]
    dataset = multiscale["datasets"][0]
    array = group[dataset["path"]]
    entries = [axis if isinstance(axis, dict) else {"name": axis} for axis in multiscale.get("axes", [])]
    names = "".join(str(entry.get("name", "?")).upper() for entry in entries) or ("TCZYX" if array.ndim == 5 else "")
    axes = names if len(names) == array.ndim and set(names) <= set(AXES_LETTERS) else None
    pixel_size = None
    if axes is not None:
        units = [entry.get("unit") for entry in entries] or [None] * array.ndim
        scale = _ngff_scale(multiscale, dataset, array.ndim)
        sizes = {letter: _micrometres(value, unit) for letter, value, unit in zip(axes, scale, units)
                 if letter in "ZYX" and unit is not None}
        pixel_size = {letter: size for letter, size in sizes.items() if size is not None} or None
    data, axes = _squeeze(da.from_zarr(array), axes)
    return ImageFile(data=data, axes=axes, pixel_size=pixel_size)


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
    data, axes = _squeeze(data, order)
    return ImageFile(data=data, axes=axes, pixel_size=pixel_size)


def _ngff_axes(axes: str, pixel_size: dict | None) -> list[dict]:
    entries = []
    for letter in axes:
        entry = {"name": letter.lower(), "type": _NGFF_TYPES[letter]}
        if letter in "ZYX" and pixel_size and letter in pixel_size:
            entry["unit"] = "micrometer"
        entries.append(entry)
    return entries


def write_ome_zarr(path, data, axes: str, *, pixel_size: dict | None = None, labels: bool = False,
                   chunk_size: int = 1024) -> Path:
    """Write ``data`` as an OME-Zarr image (NGFF 0.4, one resolution level), chunk by chunk.

    Axes are stored in the order NGFF prescribes (T, C, Z, Y, X).

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` folder to write; it appears (or replaces one there) only when complete.
    data : numpy or dask array
        Computed one chunk at a time when lazy (e.g. :func:`napari_unet.segment_lazy`).
    axes : str
        One letter per axis of ``data`` from "TZCYX".
    pixel_size : dict, optional
        Micrometres per pixel of "Z", "Y" and "X" (as :class:`~napari_unet.io.ImageFile` gives).
    labels : bool
        Mark the image as a label image (NGFF ``image-label``), as viewers expect of labels.
    chunk_size : int
        Pixels per chunk edge in Y and X; other axes are chunked one plane at a time.

    Returns
    -------
    Path
    """
    import dask.array as da

    zarr = _import_zarr(path)
    data = da.asarray(data)
    if len(axes) != data.ndim or set(axes) - set(AXES_LETTERS):
        raise ValueError(f"axes {axes!r} must give one letter of {AXES_LETTERS!r} per axis of shape {data.shape}")
    order = sorted(range(data.ndim), key=lambda axis: "TCZYX".index(axes[axis]))
    data, axes = data.transpose(order), "".join(axes[axis] for axis in order)
    chunks = tuple(min(chunk_size, size) if letter in "YX" else 1 for letter, size in zip(axes, data.shape))
    scale = [float((pixel_size or {}).get(letter, 1.0)) if letter in "ZYX" else 1.0 for letter in axes]
    multiscale = {"version": "0.4", "name": output_stem(path), "axes": _ngff_axes(axes, pixel_size),
                  "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]}

    def write(folder: str) -> None:
        group = zarr.open_group(folder, mode="w", zarr_format=2)
        array = group.create_array("0", shape=data.shape, chunks=chunks, dtype=data.dtype, fill_value=0,
                                   chunk_key_encoding={"name": "v2", "separator": "/"})
        da.store(data.rechunk(chunks), array, lock=False)
        group.attrs["multiscales"] = [multiscale]
        if labels:
            group.attrs["image-label"] = {"version": "0.4"}

    return atomic_write_folder(path, write)
