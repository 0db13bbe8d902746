"""Segmenting an image: one generator of events, and the blocking functions built on it.

:func:`iter_segment` reads the image for the model (:mod:`.reading`), predicts each plane
tile by tile on the network's grid (yielding every tile as it finishes), turns the
probabilities into instance labels there and maps them back onto the input grid. The API's
:func:`segment`, the command line and the napari widgets all consume it. Planes larger
than ``config.chunked_above`` pixels are segmented chunk by chunk (:mod:`.chunked`).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator

import numpy as np

from ..config import PredictConfig, SegmentConfig, resolve_config
from ..events import ImageRead, Notice, PlaneDone, SegmentDone, Tile, TileDone
from .labels import labels_to_grid, probabilities_to_labels, sequential_labels, stack_planes, stitch_planes
from .plausibility import implausibilities, model_target
from .reading import Reading, check_segmentation_model, read_for_model
from .rescale import resample_window
from .runner import predict_plane_tiles
from .volume import label_volume, labels_as_volume, volume_too_large


def _plane_order(reading: Reading, planes) -> list[int]:
    count = reading.layout.planes
    if planes is None:
        return list(range(count))
    order = [int(p) for p in planes]
    if any(not 0 <= p < count for p in order) or len(set(order)) != len(order):
        raise ValueError(f"planes must be distinct indices below {count}, got {planes!r}")
    return order


def _input_region(tile: Tile, factor: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The input-grid rows and columns a network-grid tile covers."""
    if factor == 1.0:
        return tile.y, tile.x
    rows = slice(int(np.floor(tile.y.start / factor)), min(shape[0], int(np.ceil(tile.y.stop / factor))))
    cols = slice(int(np.floor(tile.x.start / factor)), min(shape[1], int(np.ceil(tile.x.stop / factor))))
    return rows, cols


def _iter_plane(reading: Reading, plane, index: int | None, focus, counter: list[int],
                total: int, notices: list | None = None) -> Iterator[TileDone | Notice]:
    """TileDone events of one plane (and, with a ``notices`` list, a Notice for what the
    runner reports, e.g. a halved batch; else those are warnings)."""
    source = reading.source(plane)
    shape = reading.network_shape
    plan = reading.tile_plan(shape)
    runner = reading.runner(plan.batch_size)
    if notices is not None:
        runner.notify = notices.append
    if focus is not None and reading.rescaled:
        focus = (focus[0] * reading.factor, focus[1] * reading.factor)
    for tile, probabilities in predict_plane_tiles(source, runner, plan.tiles(shape, focus), plan.geometry):
        counter[0] += 1
        while notices:
            yield Notice(step=counter[0], message=notices.pop(0))
        yield TileDone(plane=index, tile=tile, region=_input_region(tile, reading.factor, reading.layout.plane_shape),
                       done=counter[0], total=total, probabilities=probabilities, factor=reading.factor)


def label_plane(probabilities: np.ndarray, reading: Reading, config: SegmentConfig) -> np.ndarray:
    """Network-grid probabilities of one plane -> instance labels on the input grid."""
    settings = reading.labelling(config)
    labels = probabilities_to_labels(probabilities, seeds=config.seeds, **dataclasses.asdict(settings))
    if not reading.rescaled:
        return labels
    labels = labels_to_grid(labels, 1 - probabilities[0], reading.layout.plane_shape, reading.factor,
                            settings.foreground)
    return sequential_labels(labels, config.min_size or 0)


def _tiles_per_plane(reading: Reading) -> int:
    return len(reading.tile_plan().tiles(reading.network_shape))


def iter_segment(image, model="nuclei", config: SegmentConfig | None = None, *, focus=None, planes=None,
                 keep_probabilities: bool = False, **options
                 ) -> Iterator[ImageRead | Notice | TileDone | PlaneDone | SegmentDone]:
    """Segment ``image``, yielding what happens as it happens.

    Parameters
    ----------
    image : array
        (Y, X), (Y, X, 3|4) colour, (C, Y, X) channels, (Z|T, Y, X) stacks and their
        combinations; numpy, dask or zarr (see ``axes`` in :class:`SegmentConfig`).
    model : SegmentationModel, str or path
        A model, a shipped model's name or a model file.
    config : SegmentConfig, optional
    focus : (y, x), optional
        Input pixel whose tiles come first (e.g. the centre of the visible canvas).
    planes : list of int, optional
        Planes of a stack to segment, in this order (default: all, in order).
    keep_probabilities : bool
        Put each plane's class probabilities (input grid) into its ``PlaneDone``.
    **options
        Fields of :class:`SegmentConfig` that replace those of ``config``.

    Yields
    ------
    ImageRead
        First: axes, modality, channel and the object diameter used (estimated or given).
    Notice
        What the user should know (a batch halved for memory, an implausible result);
        :func:`segment` turns these into RuntimeWarnings.
    TileDone
        Each tile (network grid, with its input-grid region); none for chunked planes.
    PlaneDone
        Each plane's labels (input grid, numbered within the plane) and probabilities if kept.
    SegmentDone
        Last: all labels, the object count and the time taken. A Z stack has 3-D objects
        (``config.stitch``: one id per cell through the planes, counted once), from its
        planes' probabilities labelled as one volume or its planes' cells linked
        (``config.z_labelling``, :mod:`.volume`); T frames are labelled on their own.
    """
    started = time.perf_counter()
    config = resolve_config(SegmentConfig, config, options)
    reading = read_for_model(image, model, config)
    check_segmentation_model(reading.model)
    yield reading.event()
    order = _plane_order(reading, planes)
    chunked = int(np.prod(reading.network_shape)) > config.chunked_above
    total = 0 if chunked else _tiles_per_plane(reading) * len(order)
    counter, results = [0], {}
    volume = {} if labels_as_volume(reading, config, chunked, len(order)) else None
    if volume is not None and (notice := volume_too_large(reading)):
        volume = None
        yield Notice(step=0, message=notice)
    for done, index in enumerate(order, start=1):
        labels, probabilities = yield from _segment_plane(image, index, reading, config, chunked, focus,
                                                          counter, total, keep_probabilities)
        results[index] = labels
        if volume is not None:
            volume[index] = probabilities.astype(np.float16)
        kept = to_input_grid(probabilities, reading) if keep_probabilities and probabilities is not None else None
        yield PlaneDone(plane=index if reading.layout.stacked else None, labels=labels, probabilities=kept,
                        done=done, total=len(order))
    if volume is not None:
        labels = label_volume([volume[i] for i in sorted(volume)], reading, config)
    else:
        labels = _assemble(results, reading, config)
    objects = len(np.unique(labels)) - 1 if reading.layout.stacked else int(labels.max())
    for message in implausibilities(labels, diameter=reading.diameter, target=model_target(reading.model),
                                    rival=reading.rival):
        yield Notice(step=len(order), message=message)
    yield SegmentDone(labels=labels, objects=objects, read=reading.event(), seconds=time.perf_counter() - started)


def _segment_plane(image, index: int, reading: Reading, config: SegmentConfig, chunked: bool, focus,
                   counter: list[int], total: int, keep_probabilities: bool):
    """One plane's events (tiles, notices); returns its labels (input grid) and network-grid
    probabilities (None for a chunked plane unless they are kept)."""
    if chunked:
        from .chunked import segment_plane_chunked

        return segment_plane_chunked(image, index, reading, config, keep_probabilities=keep_probabilities)
    plane = reading.input_plane(image, index)
    probabilities = np.empty((reading.model.config.out_channels,) + reading.network_shape, dtype=np.float32)
    for event in _iter_plane(reading, plane, index if reading.layout.stacked else None, focus, counter, total,
                             notices=[]):
        if isinstance(event, TileDone):
            probabilities[:, event.tile.y, event.tile.x] = event.probabilities
        yield event
    return label_plane(probabilities, reading, config), probabilities


def _assemble(results: dict, reading: Reading, config: SegmentConfig) -> np.ndarray:
    """The labels of all planes: one plane, frames labelled on their own, or 3-D objects."""
    if not reading.layout.stacked:
        return next(iter(results.values()))
    planes = [results[i] for i in sorted(results)]
    if reading.layout.stack_axis == "Z" and config.stitch and len(planes) == reading.layout.planes:
        return stitch_planes(planes)
    return stack_planes(planes)


def segment(image, model="nuclei", config: SegmentConfig | None = None, **options) -> np.ndarray:
    """Instance labels of every cell (touching cells separated).

    Takes the arguments of :func:`iter_segment`; ``**options`` are fields of
    :class:`SegmentConfig` (``diameter``, ``channel``, ``invert``, ``axes``, ``device``,
    ``precision``, ``tile_size``, ``min_size``, ``seeds``, ...).

    Returns
    -------
    (Y, X) or (Z|T, Y, X) ndarray of uint8, uint16 or uint32
        0 is background; objects are numbered 1..n in the smallest dtype holding n: over
        the whole stack for Z (3-D objects), per frame for T.
    """
    for event in iter_segment(image, model, config, **options):
        if isinstance(event, Notice):
            warnings.warn(event.message, RuntimeWarning, stacklevel=2)
        elif isinstance(event, SegmentDone):
            return event.labels
    raise RuntimeError("segmentation ended without a result")


def to_input_grid(probabilities: np.ndarray, reading: Reading) -> np.ndarray:
    """(C, y, x) network-grid probabilities -> (C, Y, X) on the input grid (linear interpolation)."""
    if not reading.rescaled:
        return probabilities
    height, width = reading.layout.plane_shape
    channels_last = resample_window(np.moveaxis(probabilities, 0, -1), 1 / reading.factor,
                                    slice(0, height), slice(0, width))
    return np.ascontiguousarray(np.moveaxis(channels_last, -1, 0))


def predict_probabilities(image, model="nuclei", config: PredictConfig | None = None, *,
                          progress=None, out=None, **options) -> np.ndarray:
    """Class probabilities of every pixel, predicted tile by tile (seamless).

    Parameters
    ----------
    image, model, config, **options
        As for :func:`segment` (``**options``: fields of :class:`PredictConfig`).
    progress : callable, optional
        ``progress(done, total)`` after each tile.
    out : array-like, optional
        Written into instead of a new array (a memory map or zarr array keeps huge results
        off the RAM); must have the result's shape.

    Returns
    -------
    (C, Y, X) or (C, Z|T, Y, X) float32 array
        C = number of classes (background, interior, boundary), on the input grid.
    """
    config = resolve_config(PredictConfig, config, options)
    reading = read_for_model(image, model, config)
    layout = reading.layout
    classes = reading.model.config.out_channels
    shape = (classes,) + ((layout.planes,) if layout.stacked else ()) + layout.plane_shape
    if out is None:
        out = np.zeros(shape, dtype=np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out must have shape {shape}, got {tuple(out.shape)}")
    counter, total = [0], _tiles_per_plane(reading) * layout.planes
    for index in range(layout.planes):
        probabilities = np.empty((classes,) + reading.network_shape, dtype=np.float32)
        for event in _iter_plane(reading, reading.input_plane(image, index), index, None, counter, total):
            probabilities[:, event.tile.y, event.tile.x] = event.probabilities
            if progress is not None:
                progress(event.done, event.total)
        out[(slice(None),) + ((index,) if layout.stacked else ())] = to_input_grid(probabilities, reading)
    return out


def predict_tiles(image, model="nuclei", config: PredictConfig | None = None, *, focus=None, planes=None,
                  **options) -> Iterator[TileDone]:
    """Class probabilities tile by tile, each :class:`TileDone` as soon as it is computed.

    Tiles lie on the network's grid (the image rescaled to the model's working diameter);
    ``TileDone.region`` is the same area on the input grid. Arguments as for
    :func:`iter_segment`.
    """
    config = resolve_config(PredictConfig, config, options)
    reading = read_for_model(image, model, config)
    order = _plane_order(reading, planes)
    counter, total = [0], _tiles_per_plane(reading) * len(order)
    for index in order:
        plane = reading.input_plane(image, index)
        yield from _iter_plane(reading, plane, index if reading.layout.stacked else None, focus, counter, total)
