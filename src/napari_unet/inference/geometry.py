"""Overlap-tile geometry: which input window feeds which output tile, with mirrored borders.

The image is cut into output tiles on a grid anchored at pixel (0, 0) whose step is a
multiple of the network's alignment (2**depth). Each tile's input adds the network's full
context, taken from the image or, past its border, from its mirror image. Because every
tile sees exactly the context an untiled pass would, and the pooling grids line up, the
stitched result equals the untiled one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..events import Tile
from ..models.blocks import round_up


@dataclass(frozen=True)
class AxisGeometry:
    """How one axis of a tile maps from input to output.

    ``step`` output pixels are kept per tile. The network reads ``input_size`` pixels
    starting ``halo`` pixels before the first kept pixel, and the kept pixels start at index
    ``keep_start`` of its output.
    """

    step: int
    input_size: int
    halo: int
    keep_start: int


def axis_geometry(network, step: int, level: int | None = None) -> AxisGeometry:
    """Smallest input that yields ``step`` kept output pixels on one axis.

    ``step`` must be a multiple of ``network.alignment(level)``.
    """
    alignment = network.alignment(level)
    if step % alignment:
        raise ValueError(f"tile step {step} must be a multiple of the network alignment {alignment}")
    if network.config.padding == "same":
        # zero padding inside the network must stay outside the receptive field of kept pixels
        halo = round_up(network.receptive_radius(level), alignment)
        return AxisGeometry(step=step, input_size=step + 2 * halo, halo=halo, keep_start=halo)
    size = step
    while True:
        output = network.output_size(size, level)
        if output is not None and output >= step:
            return AxisGeometry(step=step, input_size=size, halo=(size - output) // 2, keep_start=0)
        size += 1


def tile_step(requested: int | None, extent: int, alignment: int, default: int) -> int:
    """Output tile step on an axis of ``extent`` pixels: requested (or default) size rounded
    up to the alignment, but no larger than the aligned extent (a small image is one tile)."""
    wanted = default if requested is None else requested
    return max(alignment, min(round_up(wanted, alignment), round_up(extent, alignment)))


def plan_tiles(shape: tuple[int, int], steps: tuple[int, int],
               focus: tuple[float, float] | None = None) -> list[Tile]:
    """Tiles covering ``shape``; with ``focus`` (y, x) the nearest tiles come first."""
    (height, width), (step_y, step_x) = shape, steps
    origins = [(y, x) for y in range(0, height, step_y) for x in range(0, width, step_x)]
    if focus is not None:
        fy, fx = focus
        origins.sort(key=lambda o: (o[0] + step_y / 2 - fy) ** 2 + (o[1] + step_x / 2 - fx) ** 2)
    return [Tile(index=i, y=slice(y, min(y + step_y, height)), x=slice(x, min(x + step_x, width)))
            for i, (y, x) in enumerate(origins)]


def mirror_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Indices ``start..stop-1`` folded into ``[0, size)`` by mirroring at the borders.

    The border pixel itself is not repeated (numpy's "reflect"); a 1-pixel axis maps
    everything to 0. Works for any distance outside the image.
    """
    indices = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(indices)
    period = 2 * (size - 1)
    folded = np.mod(indices, period)
    return np.where(folded >= size, period - folded, folded)


def read_window(plane, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``plane[rows][:, cols]`` reading only the bounding box from (possibly lazy) arrays."""
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    c0, c1 = int(cols.min()), int(cols.max()) + 1
    block = np.asarray(plane[r0:r1, c0:c1])
    return block[np.ix_(rows - r0, cols - c0)]
