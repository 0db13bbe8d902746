"""Resampling between an image's pixel grid and the model's working scale.

Objects are brought to the size the model was trained on (its ``diameter``) by resampling
the image with a factor ``f = model diameter / object diameter``. Output pixel ``i`` of the
resampled axis sits at input coordinate ``(i + 0.5) / f - 0.5`` (pixel centres line up, as
in ``skimage.transform.rescale``). Shrinking (``f < 1``) first blurs with a Gaussian of
sigma ``(1/f - 1) / 2`` input pixels against aliasing; values are then interpolated
linearly. Past the border the image is mirrored, as the overlap-tile prediction does.

Every output window is computed from a bounded window of the input, so a window of the
resampled image is bit-for-bit the same slice of the whole resampled image: tiled and
chunked prediction stay seamless at any scale (:class:`RescaledPlane`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .geometry import mirror_indices

# scipy's gaussian_filter reaches int(truncate * sigma + 0.5) pixels (truncate = 4)
_TRUNCATE = 4.0
# factors this close to 1 are treated as 1: no resampling, no blur
UNIT_TOLERANCE = 0.02


def is_unit(factor: float) -> bool:
    return abs(float(factor) - 1.0) <= UNIT_TOLERANCE


def scaled_length(length: int, factor: float) -> int:
    """Pixels of an axis of ``length`` pixels resampled by ``factor`` (at least 1)."""
    return max(1, int(round(length * factor)))


def antialias_sigma(factor: float) -> float:
    """Gaussian sigma (input pixels) applied before shrinking by ``factor`` (0 when growing)."""
    return max(0.0, (1.0 / factor - 1.0) / 2.0)


def _axis_plan(start: int, stop: int, factor: float, size: int, margin: int):
    """Input window (mirrored indices) and interpolation taps for output pixels start..stop-1."""
    coordinates = (np.arange(start, stop, dtype=np.float64) + 0.5) / factor - 0.5
    lower = np.floor(coordinates).astype(np.int64)
    fraction = (coordinates - lower).astype(np.float32)
    first = int(lower.min()) - margin
    last = int(lower.max()) + 1 + margin
    window = mirror_indices(first, last + 1, size)
    return window, lower - first, fraction


def _interpolate(block: np.ndarray, axis: int, index: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    shape = [1] * block.ndim
    shape[axis] = -1
    weight = fraction.reshape(shape)
    return np.take(block, index, axis=axis) * (1 - weight) + np.take(block, index + 1, axis=axis) * weight


def resample_window(plane, factor: float, rows: slice, cols: slice) -> np.ndarray:
    """``rows`` x ``cols`` of ``plane`` resampled by ``factor`` (float32, linear interpolation).

    Parameters
    ----------
    plane : (Y, X) or (Y, X, C) array
        numpy, dask or zarr; only the window the output needs is read.
    factor : float
        > 1 enlarges, < 1 shrinks (after an anti-aliasing blur).
    rows, cols : slice
        Output window, within ``scaled_length`` of each axis (step 1).

    Returns
    -------
    (len(rows), len(cols)[, C]) float32 ndarray
    """
    height, width = plane.shape[:2]
    sigma = antialias_sigma(factor)
    margin = int(_TRUNCATE * sigma + 0.5) + 1
    row_window, row_index, row_fraction = _axis_plan(rows.start, rows.stop, factor, height, margin)
    col_window, col_index, col_fraction = _axis_plan(cols.start, cols.stop, factor, width, margin)
    r0, r1 = int(row_window.min()), int(row_window.max()) + 1
    c0, c1 = int(col_window.min()), int(col_window.max()) + 1
    block = np.asarray(plane[r0:r1, c0:c1], dtype=np.float32)
    block = block[np.ix_(row_window - r0, col_window - c0)]
    if sigma > 0:
        # the margin holds the filter's whole reach, so its edge mode never matters
        sigmas = (sigma, sigma) + (0.0,) * (block.ndim - 2)
        block = ndimage.gaussian_filter(block, sigmas, truncate=_TRUNCATE, mode="nearest")
    block = _interpolate(block, 0, row_index, row_fraction)
    return np.ascontiguousarray(_interpolate(block, 1, col_index, col_fraction), dtype=np.float32)


def resample(plane, factor: float) -> np.ndarray:
    """The whole ``plane`` resampled by ``factor`` (see :func:`resample_window`)."""
    height, width = plane.shape[:2]
    return resample_window(plane, factor, slice(0, scaled_length(height, factor)),
                           slice(0, scaled_length(width, factor)))


def nearest_indices(length: int, factor: float, size: int) -> np.ndarray:
    """For each of ``length`` output pixels, the nearest of ``size`` input pixels."""
    indices = np.floor((np.arange(length, dtype=np.float64) + 0.5) / factor).astype(np.int64)
    return np.clip(indices, 0, size - 1)


def resample_nearest(array: np.ndarray, factor: float, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Labels or masks (Y, X) resampled by ``factor`` with nearest neighbour (values kept).

    Output pixel ``i`` takes input pixel ``floor((i + 0.5) / factor)``: the pixel whose
    area holds the output pixel's centre, on the grid of :func:`resample_window`.
    ``shape`` (default: :func:`scaled_length` of each axis) fixes the output size, e.g. to
    map labels from the network's grid back onto the exact input shape.
    """
    array = np.asarray(array)
    if shape is None:
        shape = (scaled_length(array.shape[0], factor), scaled_length(array.shape[1], factor))
    rows = nearest_indices(shape[0], factor, array.shape[0])
    cols = nearest_indices(shape[1], factor, array.shape[1])
    return array[np.ix_(rows, cols)]


class RescaledPlane:
    """A (Y, X[, C]) plane seen through :func:`resample_window`: slice it like an array.

    Only ``plane[r0:r1, c0:c1]`` with step 1 (what the tiler reads) is supported; each
    read resamples just that window.
    """

    def __init__(self, plane, factor: float):
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"scale factor must be a positive number, got {factor!r}")
        self.plane, self.factor = plane, float(factor)
        height, width = plane.shape[:2]
        self.shape = (scaled_length(height, factor), scaled_length(width, factor)) + tuple(plane.shape[2:])
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, slice) for k in key)):
            raise TypeError("a rescaled plane is read by two slices, plane[r0:r1, c0:c1]")
        rows, cols = (slice(*k.indices(n)[:2]) for k, n in zip(key, self.shape[:2]))
        if any(k.step not in (None, 1) for k in key):
            raise TypeError("a rescaled plane is read with step 1")
        return resample_window(self.plane, self.factor, rows, cols)

    def __array__(self, dtype=None, copy=None):
        whole = self[0:self.shape[0], 0:self.shape[1]]
        return whole if dtype is None else whole.astype(dtype)
