"""Running the network on tiles: batches on a device, memory-based tile sizes, OOM recovery.

:class:`TileRunner` turns stacks of network inputs into class probabilities;
:class:`TileSource` cuts a tile's input (with its mirrored context) out of a plane; and
:func:`predict_plane_tiles` joins them. Everything above (whole images, stacks, chunks,
rescaling) is built from these.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..devices import autocast, free_memory_bytes, is_out_of_memory
from ..events import Tile
from ..models import SegmentationModel
from ..models.blocks import round_up
from .appearance import Appearance, IntensityRange, network_input
from .geometry import AxisGeometry, axis_geometry, mirror_indices, plan_tiles, read_window, tile_step

# kept output pixels per tile edge when the caller does not choose; larger tiles waste less
# compute on context, smaller ones show up sooner in a viewer
DEFAULT_TILE = {"cpu": 512, "cuda": 1024, "mps": 512}
DEFAULT_BATCH = {"cpu": 1, "cuda": 4, "mps": 2}
# share of the free memory that tiles in flight may take, and bytes of activations per
# input pixel and base channel of a forward pass (an upper estimate: skip connections of
# every level are alive at once, plus the decoder's concatenations)
MEMORY_SHARE = 0.5
ACTIVATION_BYTES_PER_PIXEL_CHANNEL = {"fp32": 64, "bf16": 40, "fp16": 40}
MAX_BATCH = {"cpu": 2, "cuda": 16, "mps": 4}


_PLACEMENT_LOCK = threading.Lock()


def place_network(network, device: torch.device) -> None:
    """Put ``network`` on ``device``, channels-last, in eval mode — once.

    Converting moves every parameter, so it must not happen while another thread (dask
    computes chunks in parallel on one shared model) runs the network: it is done under a
    lock, and only when needed.
    """
    with _PLACEMENT_LOCK:
        weight = next(network.parameters())
        placed = weight.device == device and (weight.dim() != 4 or weight.is_contiguous(
            memory_format=torch.channels_last))
        if not placed:
            network.to(device, memory_format=torch.channels_last)
        if network.training:
            network.eval()


# the image as it is, and mirrored along Y, X and both (spatial axes of a plane)
FLIPS = ((), (0,), (1,), (0, 1))


class TileRunner:
    """Runs batches of tiles, halving the batch on out-of-memory, then falling back to CPU.

    The network runs channels-last (about twice as fast on CPUs, and what AMP prefers on
    GPUs) under the autocast of ``precision`` (already resolved, not "auto"). With
    ``flips`` each tile is also run mirrored along Y, X and both, and the four
    probabilities (mirrored back) are averaged: test-time augmentation, four times the work.
    A valid network's output is centred in its input, so a mirrored tile's output mirrors
    back onto the same pixels, and tiled stays equal to untiled.

    What the user should know (the batch halved, a fall-back to the CPU) goes to
    ``notify(message)`` when it is set (:func:`napari_unet.iter_segment` turns it into
    :class:`~napari_unet.events.Notice` events), else it is a RuntimeWarning.
    """

    notify = None

    def __init__(self, model: SegmentationModel, device: torch.device, precision: str, batch_size: int,
                 prune_level: int | None = None, flips: bool = False):
        self.model, self.device, self.precision = model, device, precision
        self.batch_size, self.prune_level, self.flips = batch_size, prune_level, flips
        place_network(model.network, device)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 inputs -> (N, classes, h, w) float32 probabilities."""
        results = []
        start = 0
        while start < len(inputs):
            chunk = inputs[start:start + self.batch_size]
            try:
                results.append(self._forward(chunk))
            except Exception as error:  # noqa: BLE001 - only allocation failures are retried
                if not is_out_of_memory(error):
                    raise
                self._shrink(error)
                continue
            start += len(chunk)
        return np.concatenate(results)

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device, memory_format=torch.channels_last)
        views = FLIPS if self.flips else ((),)
        total = None
        for axes in views:
            dims = tuple(axis - 2 for axis in axes)
            view = tensor.flip(dims).contiguous(memory_format=torch.channels_last) if dims else tensor
            with torch.inference_mode(), autocast(self.device, self.precision):
                logits = self.model.network(view, level=self.prune_level)
            probabilities = torch.softmax(logits.float(), dim=1)
            probabilities = probabilities.flip(dims) if dims else probabilities
            total = probabilities if total is None else total + probabilities
        return (total / len(views)).cpu().numpy()

    def _shrink(self, error: BaseException) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size //= 2
            self._say(f"out of memory; continuing with batch size {self.batch_size}")
        elif self.device.type != "cpu":
            self._say(f"out of memory on {self.device} even with one tile; continuing on the CPU")
            self.device = torch.device("cpu")
            place_network(self.model.network, self.device)
        else:
            raise MemoryError("out of memory with one tile on the CPU; use a smaller tile_size") from error


    def _say(self, message: str) -> None:
        if self.notify is not None:
            self.notify(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=4)


def tile_memory_bytes(network, step: int, precision: str) -> int:
    """Estimated peak memory of predicting one tile of ``step`` output pixels per edge."""
    size = axis_geometry(network, round_up(step, network.alignment())).input_size
    per_pixel = ACTIVATION_BYTES_PER_PIXEL_CHANNEL.get(precision, 64) * network.config.base_channels
    return size * size * per_pixel


def automatic_tiling(network, device: torch.device, precision: str, free_bytes: int | None) -> tuple[int, int]:
    """Tile step and batch size from the free memory: the device's default tile, halved
    until one tile fits in half the free memory, then as many tiles per batch as fit."""
    tile = DEFAULT_TILE.get(device.type, 512)
    batch = DEFAULT_BATCH.get(device.type, 1)
    if free_bytes is None:
        return tile, batch
    budget = MEMORY_SHARE * free_bytes
    alignment = network.alignment()
    while tile > alignment and tile_memory_bytes(network, tile, precision) > budget:
        tile = max(alignment, round_up(tile // 2, alignment))
    fitting = int(budget // tile_memory_bytes(network, tile, precision))
    return tile, max(1, min(fitting, MAX_BATCH.get(device.type, 1)))


def even_step(step: int, extent: int, alignment: int) -> int:
    """The step that covers ``extent`` with as many tiles as ``step`` needs, but evenly: the
    last tile then reaches less than ``tiles * alignment`` past the end (no wasted compute,
    and a chunk's tiles never read far beyond the chunk)."""
    tiles = -(-extent // step)
    return min(step, round_up(-(-extent // tiles), alignment))


@dataclass(frozen=True)
class TilePlan:
    """Tile step per axis, the geometry of each axis, and tiles per forward pass."""

    steps: tuple[int, int]
    geometry: tuple[AxisGeometry, AxisGeometry]
    batch_size: int

    def tiles(self, shape: tuple[int, int], focus: tuple[float, float] | None = None) -> list[Tile]:
        return plan_tiles(shape, self.steps, focus)


def plan_tiling(network, shape: tuple[int, int], device: torch.device, precision: str,
                tile_size: int | None, batch_size: int | None, prune_level: int | None) -> TilePlan:
    """Tile steps for a plane of ``shape`` (requested, or from the free memory), capped at the plane."""
    alignment = network.alignment(prune_level)
    default, automatic_batch = automatic_tiling(network, device, precision, free_memory_bytes(device))
    steps = tuple(even_step(tile_step(tile_size, extent, alignment, default), extent, alignment) for extent in shape)
    geometry = tuple(axis_geometry(network, step, prune_level) for step in steps)
    return TilePlan(steps=steps, geometry=geometry, batch_size=batch_size or automatic_batch)


@dataclass(frozen=True)
class TileSource:
    """Where tiles read their input: a (Y, X[, C]) plane, its appearance and intensity range.

    Past the borders of ``plane`` the context of a tile is mirrored.
    """

    plane: object
    appearance: Appearance
    scale: IntensityRange
    in_channels: int

    def tile_input(self, tile: Tile, geometry) -> np.ndarray:
        gy, gx = geometry
        height, width = self.plane.shape[:2]
        rows = mirror_indices(tile.y.start - gy.halo, tile.y.start - gy.halo + gy.input_size, height)
        cols = mirror_indices(tile.x.start - gx.halo, tile.x.start - gx.halo + gx.input_size, width)
        return network_input(read_window(self.plane, rows, cols), self.appearance, self.scale, self.in_channels)


def predict_plane_tiles(source: TileSource, runner: TileRunner, tiles: list[Tile],
                        geometry) -> Iterator[tuple[Tile, np.ndarray]]:
    """Probabilities of ``tiles`` of one plane, in batches of ``runner.batch_size``."""
    gy, gx = geometry
    start = 0
    while start < len(tiles):
        group = tiles[start:start + runner.batch_size]
        inputs = np.stack([source.tile_input(tile, geometry) for tile in group])
        for tile, output in zip(group, runner(inputs)):
            height, width = tile.y.stop - tile.y.start, tile.x.stop - tile.x.start
            yield tile, output[:, gy.keep_start:gy.keep_start + height, gx.keep_start:gx.keep_start + width]
        start += len(group)


def predict_plane(source: TileSource, runner: TileRunner, plan: TilePlan, classes: int) -> np.ndarray:
    """(classes, y, x) probabilities of a whole plane, tile by tile (equal to one untiled pass)."""
    shape = source.plane.shape[:2]
    out = np.empty((classes,) + tuple(shape), dtype=np.float32)
    for tile, probabilities in predict_plane_tiles(source, runner, plan.tiles(shape), plan.geometry):
        out[:, tile.y, tile.x] = probabilities
    return out
