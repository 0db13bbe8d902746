"""Chunk-by-chunk prediction with dask: larger-than-memory images, napari layers, clusters.

:func:`predict_lazy` returns a dask array of class probabilities. Each output chunk is
computed from its own pixels plus the network's context, taken from the neighbouring chunks
or, past the image border, from the mirror image, so the result equals
:func:`napari_unet.predict_probabilities` pixel for pixel; a napari layer built on it
computes only the chunks that are on screen, and a ``dask.distributed`` cluster computes
them in parallel. The model travels to workers as safetensors bytes, never as a pickle.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import ImageLayout, describe_image, intensity_range
from .instances import DEFAULT_SEEDS, check_seeds, probabilities_to_labels
from .models import SegmentationModel, load_model, save_model
from .models.blocks import round_up
from .predict import DEFAULT_TILE, PredictOptions, _BatchRunner, predict_plane_tiles
from .tiling import Tile, axis_geometry, mirror_indices, plan_tiles, tile_step

DEFAULT_CHUNK = 1024


@dataclass(frozen=True)
class ModelPayload:
    """A model as the bytes of its safetensors file: what a dask task carries to a worker."""

    data: bytes

    @classmethod
    def from_model(cls, model: SegmentationModel) -> ModelPayload:
        with tempfile.TemporaryDirectory() as folder:
            path = save_model(model, Path(folder) / "model.safetensors")
            return cls(path.read_bytes())

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


_loaded: dict[tuple[str, str], SegmentationModel] = {}
_loaded_lock = threading.Lock()


def _worker_model(payload: ModelPayload, device: str) -> SegmentationModel:
    """Load ``payload`` once per process and device, through the checked file loader."""
    key = (payload.digest, device)
    with _loaded_lock:
        if key not in _loaded:
            handle, path = tempfile.mkstemp(suffix=".safetensors")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(payload.data)
                model = load_model(path, device=device)
            finally:
                os.unlink(path)
            model.network.eval()
            _loaded[key] = model
        return _loaded[key]


@dataclass(frozen=True)
class _ChunkPlan:
    """Per-axis geometry shared by every chunk: tile step, network context, chunk sizes."""

    steps: tuple[int, int]
    context: tuple[int, int]
    chunks: tuple[tuple[int, ...], tuple[int, ...]]


def _plan(network, layout: ImageLayout, chunk_size: int, tile_size: int | None, level: int | None) -> _ChunkPlan:
    alignment = network.alignment(level)
    steps, contexts, chunks = [], [], []
    for extent in layout.plane_shape:
        step = tile_step(tile_size, min(extent, chunk_size), alignment, DEFAULT_TILE["cpu"])
        geometry = axis_geometry(network, step, level)
        # pixels each side of a chunk that any of its kept outputs can see: a valid U-Net's
        # receptive field is wider than its halo (pooling phases), so take the larger
        context = max(geometry.halo, geometry.input_size - geometry.halo - geometry.step,
                      network.receptive_radius(level))
        # chunks start on the tile grid (so the pooling grid lines up with an untiled pass)
        # and are at least as large as the context dask borrows from their neighbours
        chunk = round_up(max(chunk_size, context), step)
        sizes = [chunk] * (extent // chunk) + ([extent % chunk] if extent % chunk else [])
        steps.append(step)
        contexts.append(context)
        chunks.append(tuple(sizes))
    return _ChunkPlan(steps=tuple(steps), context=tuple(contexts), chunks=tuple(chunks))


def predict_lazy(image, model, *, chunk_size: int = DEFAULT_CHUNK, tile_size: int | None = None,
                 batch_size: int | None = None, device: str = "auto", precision: str = "fp32",
                 prune_level: int | None = None, rgb: bool | None = None):
    """Class probabilities as a lazy dask array, computed chunk by chunk (seamless).

    Parameters
    ----------
    image : (Y, X), (Y, X, 3|4) or (Z|T, Y, X) array
        numpy, zarr or dask array; it is read chunk by chunk (plus context) when computed.
    model : SegmentationModel, str or path
    chunk_size : int
        Output pixels per chunk edge, rounded up to a multiple of the tile step.
    tile_size, batch_size, device, precision, prune_level, rgb
        As in :func:`napari_unet.predict_probabilities`; ``device`` is resolved where the
        chunk is computed (on each worker of a cluster).

    Returns
    -------
    (C, Y, X) or (C, Z, Y, X) float32 dask array
        Equal to :func:`napari_unet.predict_probabilities` of the same image. Intensity
        percentiles are computed now, once per plane (from a sparse subsample), never per chunk.
    """
    import dask.array as da

    layout = describe_image(image, rgb=rgb)
    options = PredictOptions(tile_size, batch_size, device, precision, prune_level)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not isinstance(model, SegmentationModel):
        model = load_model(model, device="cpu")  # a model object stays where the caller has it
    model.network.check_level(prune_level)
    plan = _plan(model.network, layout, int(chunk_size), tile_size, prune_level)
    source = image if isinstance(image, da.Array) else da.from_array(image, chunks=_source_chunks(layout, plan))
    scales = tuple(intensity_range(layout.plane(source, index), layout, model.normalization,
                                   model.config.in_channels) for index in range(layout.planes))
    axes = (1, 2) if layout.stacked else (0, 1)
    padded = source
    for axis, extent, context in zip(axes, layout.plane_shape, plan.context):
        padded = da.take(padded, mirror_indices(-context, extent + context, extent), axis=axis)
    padded_chunks = list(padded.shape)
    for axis, sizes, context in zip(axes, plan.chunks, plan.context):
        padded_chunks[axis] = _padded_sizes(sizes, context)
    if layout.stacked:
        padded_chunks[0] = 1
    padded = padded.rechunk(tuple(padded_chunks))
    extended = da.overlap.overlap(padded, depth={axes[0]: plan.context[0], axes[1]: plan.context[1]},
                                  boundary="none")
    classes = model.config.out_channels
    output_chunks = ((1,) * layout.planes,) if layout.stacked else ()
    output_chunks += plan.chunks + ((classes,),)
    payload = ModelPayload.from_model(model)
    kwargs = dict(payload=payload, options=options, layout=layout, plan=plan, scales=scales, classes=classes)
    result = extended.map_blocks(
        _predict_chunk, dtype=np.float32, chunks=output_chunks,
        new_axis=None if layout.rgb else [extended.ndim], meta=np.empty((0,) * len(output_chunks), np.float32),
        **kwargs)
    return da.moveaxis(result, -1, 0)


def _source_chunks(layout: ImageLayout, plan: _ChunkPlan) -> tuple:
    chunks = (1,) if layout.stacked else ()
    chunks += plan.chunks
    return chunks + ((layout.channels,) if layout.rgb else ())


def _padded_sizes(sizes: tuple[int, ...], context: int) -> tuple[int, ...]:
    if len(sizes) == 1:
        return (sizes[0] + 2 * context,)
    return (sizes[0] + context,) + sizes[1:-1] + (sizes[-1] + context,)


def _predict_chunk(block: np.ndarray, *, payload: ModelPayload, options: PredictOptions, layout: ImageLayout,
                   plan: _ChunkPlan, scales, classes: int, block_info=None) -> np.ndarray:
    """One output chunk, (1?, cy, cx, C), from its input block with ``plan.context`` around it."""
    from .devices import resolve_device

    location = block_info[None]["chunk-location"]
    plane_index = location[0] if layout.stacked else 0
    spatial = location[1:3] if layout.stacked else location[:2]
    height, width = (plan.chunks[axis][index] for axis, index in enumerate(spatial))
    plane = block[0] if layout.stacked else block
    block_layout = describe_image(plane, rgb=layout.rgb)
    device = resolve_device(options.device)
    model = _worker_model(payload, str(device))
    runner = _BatchRunner(model, device, options)
    network = model.network
    geometry = [axis_geometry(network, step, options.prune_level) for step in plan.steps]
    cy, cx = plan.context
    tiles = [Tile(index=tile.index, y=slice(tile.y.start + cy, tile.y.stop + cy),
                  x=slice(tile.x.start + cx, tile.x.stop + cx))
             for tile in plan_tiles((height, width), plan.steps)]
    out = np.empty((height, width, classes), dtype=np.float32)
    for tile, probabilities in predict_plane_tiles(plane, block_layout, runner, tiles, geometry,
                                                   scales[plane_index]):
        out[tile.y.start - cy:tile.y.stop - cy, tile.x.start - cx:tile.x.stop - cx] = np.moveaxis(probabilities, 0, -1)
    return out[np.newaxis] if layout.stacked else out


def label_lazy(probabilities, *, overlap: int = 64, threshold: float = 0.5, min_size: int | None = None,
               seeds: str = DEFAULT_SEEDS):
    """Instance labels of lazy class probabilities, chunk by chunk, consistent across chunks.

    Each chunk is labelled together with ``overlap`` pixels of its neighbours, so a cell
    crossing a chunk border is seen whole from both sides; every cell is named after its
    own centroid (``y * width + x + 1``), which both sides compute identically. A cell is
    therefore never cut in two and two cells never share an id, without any pass over the
    whole image. Cells wider than ``overlap`` that cross a chunk border may be split.

    Parameters
    ----------
    probabilities : (3, Y, X) or (3, Z, Y, X) float dask array
        Background, interior and boundary, e.g. from :func:`predict_lazy`.
    overlap : int
        Pixels of context each side of a chunk; larger than the largest cell.
    threshold, min_size, seeds
        As in :func:`napari_unet.instances.probabilities_to_labels`.

    Returns
    -------
    (Y, X) or (Z, Y, X) uint32 or uint64 dask array
        0 is background; ids are unique per plane but not sequential (see
        :func:`napari_unet.instances.relabel_sequential`).
    """
    import dask.array as da

    if probabilities.ndim not in (3, 4) or probabilities.shape[0] != 3:
        raise ValueError(f"probabilities must be (3, Y, X) or (3, Z, Y, X), got shape {probabilities.shape}")
    check_seeds(seeds)
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0:
        raise ValueError(f"overlap must be a non-negative integer, got {overlap!r}")
    probabilities = da.asarray(probabilities)
    stacked = probabilities.ndim == 4
    height, width = probabilities.shape[-2:]
    chunks = [(3,)] + ([(1,) * probabilities.shape[1]] if stacked else [])
    chunks += [_merge_small_chunks(sizes, overlap) for sizes in probabilities.chunks[-2:]]
    probabilities = probabilities.rechunk(tuple(chunks))
    spatial = (probabilities.ndim - 2, probabilities.ndim - 1)
    extended = da.overlap.overlap(probabilities, depth={spatial[0]: overlap, spatial[1]: overlap},
                                  boundary="none")
    dtype = np.dtype(np.uint32) if height * width < 2**32 - 1 else np.dtype(np.uint64)
    options = {"threshold": threshold, "seeds": seeds} | ({} if min_size is None else {"min_size": min_size})
    return extended.map_blocks(
        _label_chunk, dtype=dtype, drop_axis=0, chunks=tuple(chunks[1:]),
        meta=np.empty((0,) * (probabilities.ndim - 1), dtype),
        grid=tuple(chunks[-2:]), overlap=overlap, width=width, out_dtype=dtype, options=options)


def _merge_small_chunks(sizes: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """Fold chunks smaller than ``minimum`` into their neighbour (dask borrows that much)."""
    merged = list(sizes)
    while len(merged) > 1 and min(merged) < minimum:
        index = merged.index(min(merged))
        neighbour = index - 1 if index > 0 else 1
        merged[neighbour] += merged.pop(index)
    return tuple(merged)


def _label_chunk(block: np.ndarray, *, grid, overlap: int, width: int, out_dtype, options: dict,
                 block_id=None) -> np.ndarray:
    """Label one extended chunk; keep its core, each cell named after its global centroid."""
    stacked = block.ndim == 4
    row, col = block_id[-2:]
    y0, x0 = sum(grid[0][:row]), sum(grid[1][:col])
    top, left = (overlap if row > 0 else 0), (overlap if col > 0 else 0)
    height, width_here = grid[0][row], grid[1][col]
    planes = [block[:, 0]] if stacked else [block]
    out = []
    for probabilities in planes:
        labels = probabilities_to_labels(probabilities, **options).astype(np.int64)
        count = int(labels.max())
        yy, xx = np.indices(labels.shape)
        # integer sums of global coordinates: both chunks that see a cell get the same id
        pixels = np.bincount(labels.ravel(), minlength=count + 1)
        sum_y = np.bincount(labels.ravel(), weights=(yy + y0 - top).ravel(), minlength=count + 1)
        sum_x = np.bincount(labels.ravel(), weights=(xx + x0 - left).ravel(), minlength=count + 1)
        pixels[0] = 1
        centre_y = np.floor_divide(sum_y.astype(np.int64), pixels)
        centre_x = np.floor_divide(sum_x.astype(np.int64), pixels)
        names = (centre_y * width + centre_x + 1).astype(out_dtype)
        names[0] = 0
        core = labels[top:top + height, left:left + width_here]
        out.append(names[core])
    return np.stack(out) if stacked else out[0]


def segment_lazy(image, model, *, chunk_size: int = DEFAULT_CHUNK, overlap: int = 64, tile_size: int | None = None,
                 batch_size: int | None = None, device: str = "auto", precision: str = "fp32",
                 prune_level: int | None = None, rgb: bool | None = None, min_size: int | None = None,
                 seeds: str = DEFAULT_SEEDS):
    """Instance labels as a lazy dask array: :func:`predict_lazy` then :func:`label_lazy`.

    Returns
    -------
    (Y, X) or (Z, Y, X) uint32/uint64 dask array; ids unique per plane, not sequential.
    """
    probabilities = predict_lazy(image, model, chunk_size=chunk_size, tile_size=tile_size, batch_size=batch_size,
                                 device=device, precision=precision, prune_level=prune_level, rgb=rgb)
    return label_lazy(probabilities, overlap=overlap, min_size=min_size, seeds=seeds)
