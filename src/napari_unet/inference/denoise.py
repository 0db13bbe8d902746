"""Very noisy images smoothed before the network (``PredictConfig.denoise``).

The shipped networks learned from images whose pixel noise is small against their contrast:
the robust standard deviation of neighbouring-pixel differences over the 1-99.8 percentile
range (:func:`noise_ratio`) is at most 0.072 on every image of the training and evaluation
sources here (all 608 DSB2018 images at most 0.070; medians 0.009-0.031). Light-sheet
and fast confocal stacks can be ten times noisier (the GoNuclear ovule stacks: 0.10-0.14); the
network then outlines the grain, and the size estimate measures specks (1.4 px for 25 px
nuclei). Above :data:`NOISE_FREE` a Gaussian of :func:`choose_sigma` brings the noise down to
about the training images' median; in a Z stack it reaches across the planes too, by the same
width in pixels (sigma / z step planes). On the two GoNuclear stacks (shipped ``nuclei``,
3-D labelling) the 3-D AP@0.5 went from 0.00 to about 0.5 (docs/benchmarks.md); no image of
the other sources is noisy enough to be touched.

:class:`SmoothedPlane` reads any window of a plane as the smoothed whole plane would give it
(it reads a margin of 3 sigma around the window, and the planes on either side), so tiled
prediction stays equal to untiled and lazy (dask, zarr) images are never loaded whole.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# noise ratios up to this are left as they are (every image the models were trained and judged on)
NOISE_FREE = 0.08
# the noise ratio smoothing aims at: the median of the training images
TARGET_NOISE = 0.012
# the Gaussian is cut at this many sigmas (the margin a window is read with)
TRUNCATE = 3.0
# the widest Gaussian the noise alone chooses (pixels): wider would blur small nuclei away
MAX_SIGMA = 4.0
# pixels per side of the central window the noise is measured on
NOISE_WINDOW = 1024


def noise_ratio(plane) -> float:
    """Robust noise standard deviation of a (Y, X[, C]) plane over its 1-99.8 percentile range
    (a central window of at most :data:`NOISE_WINDOW` px a side; channels averaged)."""
    height, width = plane.shape[:2]
    top, left = max(0, (height - NOISE_WINDOW) // 2), max(0, (width - NOISE_WINDOW) // 2)
    window = np.asarray(plane[top:top + NOISE_WINDOW, left:left + NOISE_WINDOW], dtype=np.float32)
    if window.ndim == 3:
        window = window.mean(axis=-1)
    if window.shape[1] < 2:
        return 0.0
    low, high = np.percentile(window, (1.0, 99.8))
    steps = np.diff(window, axis=1)
    sigma = np.median(np.abs(steps - np.median(steps))) / 0.6745 / np.sqrt(2)
    return float(sigma / (high - low)) if high > low else 0.0


def choose_sigma(ratio: float) -> float:
    """The Gaussian sigma (pixels) for a plane of noise ``ratio``: 0 up to :data:`NOISE_FREE`,
    else the width that divides white noise by ``ratio / TARGET_NOISE`` (a 2-D Gaussian of
    sigma s divides it by about 2 sqrt(pi) s), at most :data:`MAX_SIGMA`."""
    if ratio <= NOISE_FREE:
        return 0.0
    return float(min(MAX_SIGMA, ratio / (TARGET_NOISE * 2 * np.sqrt(np.pi))))


def _span(key: slice, length: int) -> tuple[int, int, int]:
    start, stop, step = key.indices(length)
    return start, max(start, stop), step


class SmoothedPlane:
    """Plane ``index`` of ``image`` smoothed by a Gaussian of ``sigma`` pixels in Y and X and
    ``z_sigma`` planes across a stack; array-like (``shape``, ``ndim``, ``dtype`` and
    ``view[rows, cols]``) like the :class:`.layout.PlaneView` it wraps."""

    def __init__(self, layout, image, index: int, channel, sigma: float, z_sigma: float = 0.0):
        self.layout, self.image, self.index, self.channel = layout, image, index, channel
        self.sigma, self.z_sigma = float(sigma), float(z_sigma)
        plane = layout.plane(image, index, channel)
        self.shape, self.ndim, self.dtype = plane.shape, plane.ndim, np.dtype(np.float32)

    def __array__(self, dtype=None, copy=None):
        array = self[:, :]
        return array if dtype is None else array.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        rows, cols, *channels = key
        height, width = self.shape[:2]
        (y0, y1, ystep), (x0, x1, xstep) = _span(rows, height), _span(cols, width)
        margin = int(np.ceil(TRUNCATE * self.sigma))
        top, bottom = max(0, y0 - margin), min(height, y1 + margin)
        left, right = max(0, x0 - margin), min(width, x1 + margin)
        reach = int(np.ceil(TRUNCATE * self.z_sigma))
        neighbours = range(max(0, self.index - reach), min(self.layout.planes, self.index + reach + 1))
        block = np.stack([np.asarray(self.layout.plane(self.image, z, self.channel)[top:bottom, left:right],
                                     dtype=np.float32) for z in neighbours])
        sigmas = (self.z_sigma, self.sigma, self.sigma) + (0.0,) * (block.ndim - 3)
        smoothed = ndimage.gaussian_filter(block, sigmas, mode="reflect", truncate=TRUNCATE)
        plane = smoothed[self.index - neighbours.start]
        return plane[(slice(y0 - top, y1 - top, ystep), slice(x0 - left, x1 - left, xstep), *channels)]
