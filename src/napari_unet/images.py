"""Image layouts (2-D, RGB(A), Z/T stacks) and per-plane intensity normalisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Normalization

# percentiles are computed on at most this many pixels (a regular subsample), so a huge or
# lazy image is read once, sparsely, and the result does not depend on the tiling
PERCENTILE_SAMPLE_PIXELS = 4_000_000
# normalised intensities are kept in this range (0 = low percentile, 1 = high percentile)
CLIP = (-1.0, 3.0)


@dataclass(frozen=True)
class ImageLayout:
    """How an array is read: ``planes`` 2-D planes of ``plane_shape``, ``channels`` each.

    ``stacked`` is True for (Z|T, Y, X[, C]) input, ``rgb`` for a trailing colour axis.
    """

    shape: tuple[int, ...]
    planes: int
    plane_shape: tuple[int, int]
    channels: int
    stacked: bool
    rgb: bool

    def plane(self, image, index: int):
        """The (Y, X) or (Y, X, C) view of plane ``index`` (lazy arrays stay lazy)."""
        return image[index] if self.stacked else image


def describe_image(image, *, rgb: bool | None = None) -> ImageLayout:
    """Validate ``image`` and say how it will be read.

    Parameters
    ----------
    image : (Y, X), (Y, X, 3|4), (Z|T, Y, X) or (Z|T, Y, X, 3|4) array
        numpy, dask or zarr; bool, integer or float dtype.
    rgb : bool, optional
        Whether a trailing axis of length 3 or 4 is colour. By default a 3-D array with
        such a last axis is RGB(A); pass ``rgb=False`` for a stack of 3 or 4 wide planes.
    """
    shape = tuple(int(s) for s in getattr(image, "shape", ()))
    dtype = getattr(image, "dtype", None)
    if dtype is None or not shape:
        raise TypeError(f"image must be an array with a shape and dtype, got {type(image).__name__}")
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"image dtype must be bool, integer or float, got {dtype}")
    if any(s == 0 for s in shape):
        raise ValueError(f"image is empty (shape {shape})")
    trailing_colour = len(shape) in (3, 4) and shape[-1] in (3, 4)
    is_rgb = trailing_colour if rgb is None else bool(rgb)
    if is_rgb and not trailing_colour:
        raise ValueError(f"rgb=True needs a last axis of length 3 or 4, image shape is {shape}")
    spatial = len(shape) - (1 if is_rgb else 0)
    if spatial not in (2, 3):
        raise ValueError(
            f"image shape {shape} is not (Y, X), (Y, X, 3|4) RGB(A) or (Z|T, Y, X): "
            f"select a single channel or plane of {len(shape)}-D data first"
        )
    stacked = spatial == 3
    plane_shape = shape[1:3] if stacked else shape[:2]
    return ImageLayout(shape=shape, planes=shape[0] if stacked else 1, plane_shape=plane_shape,
                       channels=shape[-1] if is_rgb else 1, stacked=stacked, rgb=is_rgb)


def to_model_channels(block: np.ndarray, layout: ImageLayout, in_channels: int) -> np.ndarray:
    """Raw (h, w[, C]) pixels -> float32 (in_channels, h, w); RGB becomes grey for 1 channel."""
    data = np.asarray(block, dtype=np.float32)
    if not layout.rgb:
        if in_channels != 1:
            raise ValueError(f"the model reads {in_channels} channels but the image has one; "
                             "use an RGB image or a single-channel model")
        return data[np.newaxis]
    colour = data[..., :3]
    if in_channels == 1:
        return colour.mean(axis=-1)[np.newaxis]
    if in_channels == 3:
        return np.moveaxis(colour, -1, 0)
    raise ValueError(f"the model reads {in_channels} channels; RGB images give 1 (grey) or 3")


@dataclass(frozen=True)
class IntensityRange:
    """Raw values mapped to 0 and 1 for one plane."""

    low: float
    high: float

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Scale float32 ``data`` in place, clipped to ``CLIP``; NaN/inf pixels become 0 (the low percentile).

        Clipping keeps a few extreme pixels (hot pixels, debris, a sparse image whose
        percentile range is tiny) from producing huge activations: the network's output then
        stays bounded and independent of how the image is tiled.
        """
        scale = self.high - self.low
        data -= self.low
        if scale > 0:
            data /= scale
        data[~np.isfinite(data)] = 0.0
        np.clip(data, *CLIP, out=data)
        return data


def intensity_range(plane, layout: ImageLayout, normalization: Normalization, in_channels: int) -> IntensityRange:
    """Percentile range of one plane, from a regular subsample of at most ~4 Mpx."""
    height, width = layout.plane_shape
    stride = max(1, int(np.ceil(np.sqrt(height * width / PERCENTILE_SAMPLE_PIXELS))))
    sample = to_model_channels(np.asarray(plane[::stride, ::stride]), layout, in_channels)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        raise ValueError("image plane has no finite pixel (all NaN or infinite)")
    low, high = np.percentile(finite, [normalization.low, normalization.high])
    if high <= low:
        # constant (or nearly constant) plane: shift only, so it maps to 0 rather than NaN
        high = low
    return IntensityRange(low=float(low), high=float(high))
