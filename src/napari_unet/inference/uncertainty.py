"""Where the model is least sure: disagreement between flipped predictions, and the regions
to annotate next.

The network is not built to be flip-equivariant; where it has learned the cells well, the
image and its mirror images give the same answer, and where it has not (a new stain, an
unusual shape, a cluster it cannot split) the answers differ. The disagreement of a pixel
is the mean total-variation distance of each flipped prediction (flipped back) from their
average — 0 when all agree, 1 when they are certain of different classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PredictConfig, resolve_config
from .runner import FLIPS


@dataclass(frozen=True)
class Uncertainty:
    """Disagreement per pixel and the regions where it is largest.

    Attributes
    ----------
    disagreement : (Y, X) float32 ndarray
        In [0, 1]; on the input grid.
    regions : list of (y0, y1, x0, x1, score)
        Windows of about ``window`` pixels, most uncertain first, not overlapping; the score
        is their mean disagreement.
    window : int
        Side of the windows (pixels): a few cell diameters, so one holds several cells.
    diameter : float or None
        The object diameter the prediction used.
    """

    disagreement: np.ndarray
    regions: list[tuple[int, int, int, int, float]]
    window: int
    diameter: float | None


def _flipped_probabilities(plane: np.ndarray, model, config: PredictConfig) -> list[np.ndarray]:
    from .segment import predict_probabilities

    flipped = []
    for axes in FLIPS:
        view = np.flip(plane, axes) if axes else plane
        probabilities = predict_probabilities(np.ascontiguousarray(view), model, config)
        flipped.append(np.flip(probabilities, tuple(a + 1 for a in axes)) if axes else probabilities)
    return flipped


def rank_regions(disagreement: np.ndarray, window: int, count: int) -> list[tuple[int, int, int, int, float]]:
    """The ``count`` windows of side ``window`` (on a half-window grid) with the largest mean
    disagreement, greedily, none overlapping an earlier one."""
    height, width = disagreement.shape
    window_y, window_x = min(window, height), min(window, width)
    step_y, step_x = max(1, window_y // 2), max(1, window_x // 2)
    candidates = []
    for top in sorted(set(list(range(0, height - window_y + 1, step_y)) + [height - window_y])):
        for left in sorted(set(list(range(0, width - window_x + 1, step_x)) + [width - window_x])):
            score = float(disagreement[top:top + window_y, left:left + window_x].mean())
            candidates.append((score, top, left))
    chosen: list[tuple[int, int, int, int, float]] = []
    for score, top, left in sorted(candidates, reverse=True):
        if len(chosen) == count:
            break
        if all(top >= y1 or top + window_y <= y0 or left >= x1 or left + window_x <= x0
               for y0, y1, x0, x1, _ in chosen):
            chosen.append((top, top + window_y, left, left + window_x, score))
    return chosen


def uncertainty(image, model="nuclei", config: PredictConfig | None = None, *, count: int = 5,
                cells_per_window: float = 6.0, **options) -> Uncertainty:
    """Where to annotate next: the model's disagreement with itself on ``image`` (one plane).

    Parameters
    ----------
    image : (Y, X) or colour (Y, X, 3) array
        One plane (take a plane of a stack first).
    model : SegmentationModel, str or path
    config : PredictConfig, optional
    count : int
        How many regions to suggest.
    cells_per_window : float
        Window side in object diameters (for a model without a working diameter: 20 px
        objects are assumed).
    **options
        Fields of :class:`napari_unet.PredictConfig`.

    Returns
    -------
    Uncertainty
    """
    import dataclasses

    from ..checks import check_positive_int
    from .reading import read_for_model

    check_positive_int("count", count)
    config = resolve_config(PredictConfig, config, options)
    reading = read_for_model(image, model, config)
    if reading.layout.stacked:
        raise ValueError(f"image has {reading.layout.planes} planes (axes {reading.layout.axes}): give one plane")
    plane = np.asarray(reading.input_plane(image))
    # decided once: every flip is read the same way (same size, polarity, the chosen channel)
    fixed = dataclasses.replace(config, diameter=reading.diameter, invert=reading.appearance.inverted,
                                channel=None, axes="YXC" if plane.ndim == 3 else "YX")
    probabilities = _flipped_probabilities(plane, reading.model, fixed)
    mean = np.mean(probabilities, axis=0)
    disagreement = np.mean([0.5 * np.abs(p - mean).sum(axis=0) for p in probabilities], axis=0).astype(np.float32)
    window = int(round(cells_per_window * (reading.diameter or 20.0)))
    window = max(16, window)
    return Uncertainty(disagreement, rank_regions(disagreement, window, count), window, reading.diameter)
