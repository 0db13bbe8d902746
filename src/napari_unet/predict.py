"""Overlap-tile prediction: a generator of finished tiles, and blocking wrappers.

``predict_tiles`` yields a :class:`TileDone` per tile as soon as it is computed, so a
viewer can paint it; ``predict_probabilities`` and ``segment`` drain it into arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .devices import autocast, free_memory_bytes, is_out_of_memory, resolve_device
from .images import ImageLayout, describe_image, intensity_range, to_model_channels
from .instances import DEFAULT_SEEDS, check_seeds, probabilities_to_labels, stack_planes
from .models import SegmentationModel, load_model
from .models.blocks import round_up
from .tiling import Tile, axis_geometry, mirror_indices, plan_tiles, read_window, tile_step

# kept output pixels per tile edge when the caller does not choose; larger tiles waste less
# compute on context, smaller ones show up sooner in a viewer
DEFAULT_TILE = {"cpu": 512, "cuda": 1024, "mps": 512}
DEFAULT_BATCH = {"cpu": 1, "cuda": 4, "mps": 2}


@dataclass(frozen=True)
class TileDone:
    """A finished tile: class probabilities for ``image[plane][y, x]``.

    Attributes
    ----------
    plane : int or None
        Index of the plane in a stack, None for a single 2-D image.
    tile : Tile
        Kept region (``tile.y``, ``tile.x`` slices of the plane) and processing index.
    done, total : int
        Tiles finished so far and in all, over every plane.
    probabilities : (C, h, w) float32 ndarray
    """

    plane: int | None
    tile: Tile
    done: int
    total: int
    probabilities: np.ndarray


@dataclass(frozen=True)
class PredictOptions:
    """Validated options of one prediction run."""

    tile_size: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    prune_level: int | None = None

    def __post_init__(self):
        for name in ("tile_size", "batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def _resolve(model, options: PredictOptions) -> tuple[SegmentationModel, torch.device]:
    device = resolve_device(options.device)
    model = load_model(model, device=device)
    model.network.eval()
    model.network.check_level(options.prune_level)
    return model, device


class _BatchRunner:
    """Runs batches of tiles, halving the batch on out-of-memory, then falling back to CPU."""

    def __init__(self, model: SegmentationModel, device: torch.device, options: PredictOptions):
        self.model, self.device, self.options = model, device, options
        self.batch_size = options.batch_size or DEFAULT_BATCH.get(device.type, 1)
        # channels-last convolutions are about twice as fast on CPUs (and suit AMP on GPUs)
        model.network.to(memory_format=torch.channels_last)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
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
        with torch.inference_mode(), autocast(self.device, self.options.precision):
            logits = self.model.network(tensor, level=self.options.prune_level)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def _shrink(self, error: BaseException) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size //= 2
            warnings.warn(f"out of memory; continuing with batch size {self.batch_size}", RuntimeWarning,
                          stacklevel=3)
        elif self.device.type != "cpu":
            warnings.warn(f"out of memory on {self.device} even with one tile; continuing on the CPU",
                          RuntimeWarning, stacklevel=3)
            self.device = torch.device("cpu")
            self.model.network.to(self.device, memory_format=torch.channels_last)
        else:
            raise MemoryError("out of memory with one tile on the CPU; use a smaller tile_size") from error


# share of the free memory that tiles in flight may take, and bytes of activations per
# input pixel and base channel of a forward pass (an upper estimate: skip connections of
# every level are alive at once, plus the decoder's concatenations)
MEMORY_SHARE = 0.5
ACTIVATION_BYTES_PER_PIXEL_CHANNEL = {"fp32": 64, "bf16": 40, "fp16": 40}
MAX_BATCH = {"cpu": 2, "cuda": 16, "mps": 4}


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


def predict_tiles(image, model, *, tile_size: int | None = None, batch_size: int | None = None,
                  device: str = "auto", precision: str = "fp32", prune_level: int | None = None,
                  rgb: bool | None = None, focus: tuple[float, float] | None = None,
                  planes: list[int] | None = None) -> Iterator[TileDone]:
    """Predict class probabilities tile by tile, yielding each tile when it is finished.

    Parameters
    ----------
    image : (Y, X), (Y, X, 3|4) or (Z|T, Y, X) array
        numpy, dask or zarr array of any bool, integer or float dtype.
    model : SegmentationModel, str or path
        A model, a shipped model name or a model file.
    tile_size : int, optional
        Output pixels per tile edge, rounded up to the network alignment (2**depth).
        Default: 512 on CPU and MPS, 1024 on CUDA, halved until one tile's estimated
        memory fits in half the free memory (GPU memory or available RAM), and capped at
        the image size (see :func:`automatic_tiling`).
    batch_size : int, optional
        Tiles per forward pass. Default: as many as fit in half the free memory (at most
        2 on CPU, 16 on CUDA). Halved automatically on out-of-memory, then the CPU is used.
    device : str
        "auto" (CUDA, MPS, CPU), "cpu", "cuda", "cuda:N" or "mps".
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision.
    prune_level : int, optional
        UNet++ with deep supervision: run only the sub-network ending at X(0, level).
    rgb : bool, optional
        Whether a trailing axis of 3 or 4 is colour (see :func:`describe_image`).
    focus : (y, x), optional
        Tiles nearest to this point of each plane come first (e.g. the visible canvas).
    planes : list of int, optional
        Planes of a stack to predict, in this order (default: all, in order).

    Yields
    ------
    TileDone
    """
    layout = describe_image(image, rgb=rgb)
    options = PredictOptions(tile_size, batch_size, device, precision, prune_level)
    model, resolved = _resolve(model, options)
    network = model.network
    alignment = network.alignment(prune_level)
    default, automatic_batch = automatic_tiling(network, resolved, precision, free_memory_bytes(resolved))
    steps = tuple(tile_step(tile_size, extent, alignment, default) for extent in layout.plane_shape)
    geometry = [axis_geometry(network, step, prune_level) for step in steps]
    tiles = plan_tiles(layout.plane_shape, steps, focus)
    order = _plane_order(layout, planes)
    runner = _BatchRunner(model, resolved, options)
    if batch_size is None:
        runner.batch_size = automatic_batch
    total, done = len(tiles) * len(order), 0
    for plane_index in order:
        plane = layout.plane(image, plane_index)
        scale = intensity_range(plane, layout, model.normalization, model.config.in_channels)
        for tile, probabilities in predict_plane_tiles(plane, layout, runner, tiles, geometry, scale):
            done += 1
            yield TileDone(plane=plane_index if layout.stacked else None, tile=tile, done=done,
                           total=total, probabilities=probabilities)


def predict_plane_tiles(plane, layout: ImageLayout, runner: _BatchRunner, tiles: list[Tile], geometry,
                        scale) -> Iterator[tuple[Tile, np.ndarray]]:
    """Probabilities of ``tiles`` of one (Y, X[, C]) plane, in batches, normalised by ``scale``.

    The building block shared by :func:`predict_tiles` and the lazy (dask) path, which
    passes an image-wide ``scale`` and a plane that is one chunk plus its context.
    """
    model = runner.model
    start = 0
    while start < len(tiles):
        group = tiles[start:start + runner.batch_size]
        inputs = np.stack([_tile_input(plane, layout, tile, geometry, scale, model) for tile in group])
        for tile, output in zip(group, runner(inputs)):
            yield tile, _kept(output, tile, geometry)
        start += len(group)


def _plane_order(layout: ImageLayout, planes: list[int] | None) -> list[int]:
    if planes is None:
        return list(range(layout.planes))
    order = [int(p) for p in planes]
    bad = [p for p in order if not 0 <= p < layout.planes]
    if bad or not layout.stacked and order != [0]:
        raise ValueError(f"planes must be indices below {layout.planes}, got {planes!r}")
    return order


def _tile_input(plane, layout, tile: Tile, geometry, scale, model) -> np.ndarray:
    gy, gx = geometry
    rows = mirror_indices(tile.y.start - gy.halo, tile.y.start - gy.halo + gy.input_size, layout.plane_shape[0])
    cols = mirror_indices(tile.x.start - gx.halo, tile.x.start - gx.halo + gx.input_size, layout.plane_shape[1])
    raw = read_window(plane, rows, cols)
    return scale.apply(to_model_channels(raw, layout, model.config.in_channels))


def _kept(output: np.ndarray, tile: Tile, geometry) -> np.ndarray:
    gy, gx = geometry
    height, width = tile.y.stop - tile.y.start, tile.x.stop - tile.x.start
    return output[:, gy.keep_start:gy.keep_start + height, gx.keep_start:gx.keep_start + width]


def predict_probabilities(image, model, *, tile_size: int | None = None, batch_size: int | None = None,
                          device: str = "auto", precision: str = "fp32", prune_level: int | None = None,
                          rgb: bool | None = None, progress: Callable[[int, int], None] | None = None,
                          out: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities of every pixel, predicted tile by tile (seamless).

    Takes the options of :func:`predict_tiles`, plus ``progress(done, total)`` called after
    each tile and ``out``, an array-like of the result's shape to write into (a memory map
    or zarr array keeps huge results off the RAM).

    Returns
    -------
    (C, Y, X) or (C, Z, Y, X) float32 array
        C = number of classes (background, interior, boundary); a stack keeps its plane axis.
    """
    layout = describe_image(image, rgb=rgb)
    model = load_model(model, device=device)
    shape = (model.config.out_channels,) + ((layout.planes,) if layout.stacked else ()) + layout.plane_shape
    if out is None:
        out = np.zeros(shape, dtype=np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out must have shape {shape}, got {tuple(out.shape)}")
    for event in predict_tiles(image, model, tile_size=tile_size, batch_size=batch_size, device=device,
                               precision=precision, prune_level=prune_level, rgb=rgb):
        index = (slice(None),) + (() if event.plane is None else (event.plane,)) + (event.tile.y, event.tile.x)
        out[index] = event.probabilities
        if progress is not None:
            progress(event.done, event.total)
    return out


def segment(image, model, *, tile_size: int | None = None, batch_size: int | None = None,
            device: str = "auto", precision: str = "fp32", prune_level: int | None = None,
            rgb: bool | None = None, progress: Callable[[int, int], None] | None = None,
            min_size: int | None = None, seeds: str = DEFAULT_SEEDS) -> np.ndarray:
    """Instance labels of every cell (touching cells separated), plane by plane for stacks.

    Takes the options of :func:`predict_probabilities`; ``min_size`` (pixels) removes
    smaller objects and ``seeds`` ("distance" or "interior") chooses how touching cells are
    split (defaults and details: :func:`napari_unet.instances.probabilities_to_labels`).

    Returns
    -------
    (Y, X) or (Z, Y, X) ndarray of uint8, uint16 or uint32
        0 is background; each plane is labelled 1..n, in the smallest dtype holding n.
    """
    check_seeds(seeds)
    layout = describe_image(image, rgb=rgb)
    model = load_model(model, device=device)
    options = {"seeds": seeds} | ({} if min_size is None else {"min_size": min_size})
    planes = []
    for index in range(layout.planes):
        plane = layout.plane(image, index) if layout.stacked else image
        probabilities = predict_probabilities(
            plane, model, tile_size=tile_size, batch_size=batch_size, device=device, precision=precision,
            prune_level=prune_level, rgb=layout.rgb,
            progress=None if progress is None else _offset_progress(progress, index, layout.planes))
        planes.append(probabilities_to_labels(probabilities, **options))
    return stack_planes(planes) if layout.stacked else planes[0]


def _offset_progress(progress, plane: int, planes: int):
    def report(done: int, total: int) -> None:
        progress(plane * total + done, planes * total)

    return report
