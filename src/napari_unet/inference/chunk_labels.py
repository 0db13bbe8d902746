"""Instance labels of lazy probabilities, chunk by chunk, with ids consistent across chunks."""

from __future__ import annotations

import numpy as np

from ..checks import check_choice
from ..config import SEEDS, Labelling
from .labels import DEFAULT_SEEDS, probabilities_to_labels


def label_lazy(probabilities, *, overlap: int = 64, threshold: float = Labelling.threshold,
               foreground: float | None = None, min_size: int | None = None, seeds: str = DEFAULT_SEEDS,
               split_depth: float = Labelling.split_depth):
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
    threshold, foreground, min_size, seeds, split_depth
        As in :func:`napari_unet.probabilities_to_labels`.

    Returns
    -------
    (Y, X) or (Z, Y, X) uint32 or uint64 dask array
        0 is background; ids are unique per plane but not sequential (see
        :func:`napari_unet.inference.labels.sequential_labels`).
    """
    import dask.array as da

    if probabilities.ndim not in (3, 4) or probabilities.shape[0] != 3:
        raise ValueError(f"probabilities must be (3, Y, X) or (3, Z, Y, X), got shape {probabilities.shape}")
    check_choice("seeds", seeds, SEEDS)
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0:
        raise ValueError(f"overlap must be a non-negative integer, got {overlap!r}")
    probabilities = da.asarray(probabilities)
    stacked = probabilities.ndim == 4
    height, width = probabilities.shape[-2:]
    chunks = [(3,)] + ([(1,) * probabilities.shape[1]] if stacked else [])
    chunks += [_merge_small_chunks(sizes, overlap) for sizes in probabilities.chunks[-2:]]
    probabilities = probabilities.rechunk(tuple(chunks))
    spatial = (probabilities.ndim - 2, probabilities.ndim - 1)
    # an axis held by one chunk borrows nothing (and may be narrower than the overlap)
    depth = {axis: overlap if len(sizes) > 1 else 0 for axis, sizes in zip(spatial, chunks[-2:])}
    extended = da.overlap.overlap(probabilities, depth=depth, boundary="none")
    dtype = np.dtype(np.uint32) if height * width < 2**32 - 1 else np.dtype(np.uint64)
    options = {"threshold": threshold, "seeds": seeds, "foreground": foreground, "split_depth": split_depth} \
        | ({} if min_size is None else {"min_size": min_size})
    return extended.map_blocks(
        _label_chunk, dtype=dtype, drop_axis=0, chunks=tuple(chunks[1:]),
        meta=np.empty((0,) * (probabilities.ndim - 1), dtype),
        grid=tuple(chunks[-2:]), overlap=overlap, width=width, out_dtype=dtype, options=options)


def _merge_small_chunks(sizes: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """Fold chunks smaller than ``minimum`` into their neighbour (dask borrows that much)."""
    merged = list(sizes)
    while len(merged) > 1 and min(merged) < minimum:
        index = merged.index(min(merged))
        size = merged.pop(index)
        # the chunk before it, or (for the first chunk) the one that now comes first
        merged[index - 1 if index > 0 else 0] += size
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
