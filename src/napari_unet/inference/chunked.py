"""Chunk-by-chunk prediction with dask: larger-than-memory images, napari layers, clusters.

Each output chunk is computed from its own input chunk plus enough of its neighbours
(``dask.array.map_overlap``) to rescale it, give every tile its full network context and
interpolate back. Tiles start on the same alignment grid as a whole-plane pass, and every
pixel of a rescaled plane is computed from a fixed window of the input, so
:func:`predict_lazy` equals :func:`napari_unet.predict_probabilities` pixel for pixel. A
napari layer built on these arrays computes only what is on screen; a
``dask.distributed`` cluster computes chunks in parallel. The model travels to workers as
the bytes of its safetensors file, never as a pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from ..config import PredictConfig, SegmentConfig, resolve_config
from ..events import Tile
from ..models import SegmentationModel
from ..models.blocks import round_up
from ..models.io import model_from_bytes, model_to_bytes
from .chunk_labels import label_lazy
from .labels import sequential_labels
from .reading import Reading, check_segmentation_model, read_for_model
from .rescale import RescaledPlane, antialias_sigma, nearest_indices, resample_window
from .runner import TileSource, plan_tiling, predict_plane_tiles


@dataclass(frozen=True)
class ModelPayload:
    """A model as the bytes of its safetensors file: what a dask task carries to a worker."""

    data: bytes

    @classmethod
    def from_model(cls, model: SegmentationModel) -> ModelPayload:
        return cls(model_to_bytes(model))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


_loaded: dict[tuple[str, str], SegmentationModel] = {}
_loaded_lock = threading.Lock()


def _worker_model(payload: ModelPayload, device: str) -> SegmentationModel:
    """Load ``payload`` once per process and device, through the checked loader."""
    from .runner import place_network

    key = (payload.digest, device)
    with _loaded_lock:
        if key not in _loaded:
            model = model_from_bytes(payload.data, device=device)
            place_network(model.network, model.device)
            _loaded[key] = model
        return _loaded[key]


class OffsetPlane:
    """A block of a larger plane, sliced with the larger plane's coordinates."""

    def __init__(self, block: np.ndarray, origin: tuple[int, int], shape: tuple[int, ...]):
        self.block, self.origin, self.shape = block, origin, tuple(shape)
        self.ndim, self.dtype = len(self.shape), block.dtype

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key
        top, left = self.origin
        if rows.start < top or cols.start < left or rows.stop - top > self.block.shape[0] \
                or cols.stop - left > self.block.shape[1]:
            raise IndexError(f"window {key} reaches past the block at {self.origin} of shape {self.block.shape}")
        return self.block[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]


@dataclass(frozen=True)
class _Chunking:
    """Input and network chunk boundaries of one axis, and the input context a chunk borrows."""

    input_sizes: tuple[int, ...]
    network_bounds: tuple[int, ...]
    depth: int


def _chunking(reading: Reading, axis: int, chunk_size: int) -> _Chunking:
    """Chunks of ``chunk_size`` input pixels whose network-grid images start on the alignment."""
    network = reading.model.network
    level = reading.config.prune_level
    extent, factor = reading.layout.plane_shape[axis], reading.factor
    network_extent = reading.network_shape[axis]
    alignment = network.alignment(level)
    plan = reading.tile_plan()
    geometry = plan.geometry[axis]
    context = max(geometry.halo, geometry.input_size - geometry.halo - geometry.step,
                  network.receptive_radius(level))
    back = int(4 * antialias_sigma(1 / factor) + 0.5) + 2 if reading.rescaled else 0
    forward = int(4 * antialias_sigma(factor) + 0.5) + 2 if reading.rescaled else 0
    size = round_up(max(int(chunk_size), int(math.ceil((context + 2 * alignment + back + 2) / factor))), alignment)
    # tiles split a chunk's region evenly (runner.even_step): the last reads less than one
    # alignment per tile past the region
    tiles = -(-int(math.ceil(size * factor + 2 * back + 2 * alignment)) // geometry.step) + 1
    depth = int(math.ceil((context + (tiles + 1) * alignment + back + 2) / factor)) + forward + 2
    size = round_up(max(size, depth), alignment)
    bounds = list(range(0, extent, size)) + [extent]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < depth:
        del bounds[-2]  # fold a short last chunk into its neighbour (dask borrows depth pixels)
    network_bounds = [min(network_extent, alignment * int(round(b * factor / alignment))) for b in bounds[:-1]]
    network_bounds = tuple(network_bounds + [network_extent])
    # one chunk holds the whole axis (its mirror included): nothing to borrow
    return _Chunking(tuple(np.diff(bounds)), network_bounds, depth if len(bounds) > 2 else 0)


def _network_probabilities(block: np.ndarray, reading: Reading, scale, origin, region) -> np.ndarray:
    """Probabilities of the network-grid ``region`` ((y0, y1), (x0, x1)) from an input block."""
    plane = OffsetPlane(block, origin, reading.layout.plane_shape + block.shape[2:])
    network_plane = RescaledPlane(plane, reading.factor) if reading.rescaled else plane
    model = reading.model
    source = TileSource(network_plane, reading.appearance, scale, model.config.in_channels)
    (y0, y1), (x0, x1) = region
    plan = plan_tiling(model.network, (y1 - y0, x1 - x0), reading.device, reading.precision,
                       reading.config.tile_size, reading.config.batch_size, reading.config.prune_level)
    tiles = [Tile(t.index, slice(t.y.start + y0, t.y.stop + y0), slice(t.x.start + x0, t.x.stop + x0))
             for t in plan.tiles((y1 - y0, x1 - x0))]
    out = np.empty((model.config.out_channels, y1 - y0, x1 - x0), dtype=np.float32)
    for tile, probabilities in predict_plane_tiles(source, reading.runner(plan.batch_size), tiles, plan.geometry):
        out[:, tile.y.start - y0:tile.y.stop - y0, tile.x.start - x0:tile.x.stop - x0] = probabilities
    return out


def _block_reading(reading: Reading, payload: ModelPayload) -> Reading:
    """The reading with the model loaded on the worker that computes the block."""
    import dataclasses

    from ..devices import resolve_device

    device = resolve_device(reading.config.device)
    return dataclasses.replace(reading, model=_worker_model(payload, str(device)), device=device)


def _chunk_origin(block_info, axes_chunking) -> tuple[tuple[int, int], tuple[int, int]]:
    location = block_info[0]["chunk-location"][:2]
    starts = tuple(int(sum(c.input_sizes[:i])) for c, i in zip(axes_chunking, location))
    return starts, location


def _predict_block(block, *, reading, payload, scale, chunking, block_info=None) -> np.ndarray:
    """Input-grid probabilities (cy, cx, C) of one input chunk."""
    reading = _block_reading(reading, payload)
    starts, location = _chunk_origin(block_info, chunking)
    origin = tuple(max(0, s - c.depth) for s, c in zip(starts, chunking))
    sizes = tuple(c.input_sizes[i] for c, i in zip(chunking, location))
    if not reading.rescaled:
        region = tuple((s, s + n) for s, n in zip(starts, sizes))
        return np.moveaxis(_network_probabilities(block, reading, scale, origin, region), 0, -1)
    factor, shape = reading.factor, reading.network_shape
    margin = int(4 * antialias_sigma(1 / factor) + 0.5) + 2
    alignment = reading.model.network.alignment(reading.config.prune_level)
    # tiles start on the alignment grid of a whole-plane pass, so the pooling lines up
    region = tuple((alignment * (max(0, int(np.floor((s + 0.5) * factor)) - margin) // alignment),
                    min(n, int(np.ceil((s + size) * factor)) + margin))
                   for s, size, n in zip(starts, sizes, shape))
    probabilities = _network_probabilities(block, reading, scale, origin, region)
    window = OffsetPlane(np.moveaxis(probabilities, 0, -1), (region[0][0], region[1][0]), shape)
    return resample_window(window, 1 / factor, slice(starts[0], starts[0] + sizes[0]),
                           slice(starts[1], starts[1] + sizes[1]))


def _network_block(block, *, reading, payload, scale, chunking, block_info=None) -> np.ndarray:
    """Network-grid probabilities (ny, nx, C) of the network chunk of one input chunk."""
    reading = _block_reading(reading, payload)
    starts, location = _chunk_origin(block_info, chunking)
    origin = tuple(max(0, s - c.depth) for s, c in zip(starts, chunking))
    region = tuple((c.network_bounds[i], c.network_bounds[i + 1]) for c, i in zip(chunking, location))
    return np.moveaxis(_network_probabilities(block, reading, scale, origin, region), 0, -1)


def _plane_array(image, reading: Reading, index: int):
    """Plane ``index`` (input grid, the chosen channel or colour) as a dask array."""
    import dask.array as da

    layout = reading.layout
    if reading.denoise > 0:  # smoothed windows, read with their margins from the planes around
        return da.from_array(reading.input_plane(image, index), chunks="auto", asarray=False)
    array = image if isinstance(image, da.Array) else da.from_array(image, chunks="auto")
    key, kept = [], []
    for letter in layout.axes:
        if letter in "ZT":
            key.append(index)
        elif letter == "C" and not (layout.colour and reading.channel is None):
            key.append(reading.channel)
        else:
            key.append(slice(None))
            kept.append(letter)
    plane = array[tuple(key)]
    return plane.transpose([kept.index(letter) for letter in "YXC" if letter in kept])


def _map_plane(image, reading: Reading, index: int, function, output_chunks):
    import dask.array as da

    from .appearance import intensity_range

    model = reading.model
    chunking = tuple(_chunking(reading, axis, reading.config.chunk_size) for axis in (0, 1))
    plane = _plane_array(image, reading, index)
    plane = plane.rechunk(tuple(c.input_sizes for c in chunking) + plane.chunks[2:])
    scale = intensity_range(reading.input_plane(image, index), reading.appearance, model.normalization,
                            model.config.in_channels)
    depth = {0: chunking[0].depth, 1: chunking[1].depth} | ({2: 0} if plane.ndim == 3 else {})
    classes = model.config.out_channels
    return da.map_overlap(
        function, plane, depth=depth, boundary="none", trim=False, dtype=np.float32,
        chunks=output_chunks(chunking) + ((classes,),), new_axis=None if plane.ndim == 3 else [2],
        meta=np.empty((0, 0, 0), np.float32), reading=reading, payload=ModelPayload.from_model(model),
        scale=scale, chunking=chunking)


def predict_lazy(image, model="nuclei", config: PredictConfig | None = None, **options):
    """Class probabilities as a lazy dask array, computed chunk by chunk (seamless).

    Parameters
    ----------
    image : array
        numpy, zarr or dask; read chunk by chunk (plus context) when computed.
    model, config, **options
        As for :func:`napari_unet.predict_probabilities`; ``config.chunk_size`` sets the
        chunks (input pixels per edge), ``device`` is resolved where a chunk is computed.
        The object diameter, channel and polarity are decided now, once per image.

    Returns
    -------
    (C, Y, X) or (C, Z|T, Y, X) float32 dask array
        Equal to :func:`napari_unet.predict_probabilities` of the same image.
    """
    import dask.array as da

    config = resolve_config(PredictConfig, config, options)
    reading = _lazy_reading(image, model, config)
    planes = [_map_plane(image, reading, index, _predict_block, lambda c: tuple(a.input_sizes for a in c))
              for index in range(reading.layout.planes)]
    result = da.stack(planes, axis=0) if reading.layout.stacked else planes[0]
    return da.moveaxis(result, -1, 0)


def _lazy_reading(image, model, config) -> Reading:
    # a model object stays where the caller has it: chunks load their own copy
    reading = read_for_model(image, model if not isinstance(model, SegmentationModel) else _copy(model), config)
    return reading


def _copy(model: SegmentationModel) -> SegmentationModel:
    return model_from_bytes(model_to_bytes(model), device="cpu")


def network_probabilities_lazy(image, reading: Reading, index: int):
    """(C, y, x) dask probabilities of plane ``index`` on the network's grid."""
    import dask.array as da

    array = _map_plane(image, reading, index, _network_block,
                       lambda c: tuple(tuple(np.diff(a.network_bounds)) for a in c))
    return da.moveaxis(array, -1, 0)


def _to_input_grid(labels, reading: Reading):
    """Network-grid labels (dask) -> input grid, each pixel taking the nearest network pixel."""
    import dask.array as da

    if not reading.rescaled:
        return labels
    height, width = reading.layout.plane_shape
    rows = nearest_indices(height, 1 / reading.factor, labels.shape[-2])
    cols = nearest_indices(width, 1 / reading.factor, labels.shape[-1])
    return da.take(da.take(labels, rows, axis=0), cols, axis=1)


def _label_options(config: SegmentConfig, reading: Reading) -> dict:
    """Keyword arguments of :func:`label_lazy`: the labelling in force, on the network's grid."""
    return dataclasses.asdict(reading.labelling(config)) | {
        "overlap": config.overlap, "seeds": config.seeds}


def segment_lazy(image, model="nuclei", config: SegmentConfig | None = None, **options):
    """Instance labels as a lazy dask array, consistent across chunks.

    Probabilities are computed and labelled chunk by chunk on the network's grid (see
    :func:`label_lazy`: ``config.overlap`` pixels of context, cells named after their
    centroid), then mapped to the input grid by nearest neighbour.

    Returns
    -------
    (Y, X) or (Z|T, Y, X) uint32/uint64 dask array; ids unique per plane, not sequential.
    """
    import dask.array as da

    config = resolve_config(SegmentConfig, config, options)
    reading = _lazy_reading(image, model, config)
    check_segmentation_model(reading.model)
    options = _label_options(config, reading)
    planes = [_to_input_grid(label_lazy(network_probabilities_lazy(image, reading, index), **options), reading)
              for index in range(reading.layout.planes)]
    return da.stack(planes, axis=0) if reading.layout.stacked else planes[0]


def segment_plane_chunked(image, index: int, reading: Reading, config: SegmentConfig, *,
                          keep_probabilities: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Sequential labels of one huge plane, computed chunk by chunk (bounded memory), and
    with ``keep_probabilities`` its network-grid probabilities (C, y, x), predicted once for both."""
    import dask
    import dask.array as da

    network = network_probabilities_lazy(image, reading, index)
    kept = None
    if keep_probabilities:
        kept = np.empty(network.shape, dtype=np.float32)
        with dask.config.set(scheduler="sync"):
            da.store(network, kept, lock=False)
        network = da.from_array(kept, chunks=network.chunks)
    lazy = _to_input_grid(label_lazy(network, **_label_options(config, reading)), reading)
    labels = np.empty(lazy.shape, dtype=lazy.dtype)
    with dask.config.set(scheduler="sync"):
        da.store(lazy, labels, lock=False)
    return sequential_labels(labels, config.min_size or 0), kept
