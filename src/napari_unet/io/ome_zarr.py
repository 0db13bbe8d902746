"""OME-Zarr (NGFF 0.4 / 0.5) in and out, chunk by chunk; needs ``pip install "napari-unet[zarr]"``."""

from __future__ import annotations

from pathlib import Path

from ..config import AXES_LETTERS
from .atomic import atomic_write_folder
from .metadata import ImageFile, micrometres, output_stem, squeeze
from .plain import one_line_message

ZARR_EXTRA = 'pip install "napari-unet[zarr]"'
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def is_zarr_folder(path) -> bool:
    """Whether ``path`` is a zarr folder (``*.zarr``, or one holding zarr metadata)."""
    path = Path(path)
    return path.is_dir() and (path.suffix.lower() == ".zarr"
                              or any((path / name).is_file() for name in (".zgroup", ".zattrs", "zarr.json")))


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
        sizes = {letter: micrometres(value, unit) for letter, value, unit in zip(axes, scale, units)
                 if letter in "ZYX" and unit is not None}
        pixel_size = {letter: size for letter, size in sizes.items() if size is not None} or None
    data, axes = squeeze(da.from_zarr(array), axes)
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
