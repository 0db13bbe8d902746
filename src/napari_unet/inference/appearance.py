"""How pixels of any modality become network input: bright objects on a dark background,
then intensities normalised per plane.

The shipped models are trained on one convention, so every image is brought to it first:

- **grey** images keep their intensities, or are **inverted** when their background is
  bright (brightfield: dark nuclei on a light background);
- **colour** (RGB) images keep their colours (alpha dropped) and are inverted when the
  background is bright (stained slides, H&E), so background is dark and stains are bright;
- models reading 3 channels get grey images replicated; models reading 1 channel get colour
  images averaged to grey.

Polarity is detected from the intensity distribution of the (grey-averaged) image, scaled
so its 1st percentile is 0 and its 99.8th is 1: the background is bright when the median is
above 0.35 or the most common intensity (histogram mode) above 0.5. On the 608 images of
DSB2018 this rule is right for every image (fluorescence: median at most 0.20, mode at most
0.08; brightfield and stained: median at least 0.43).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..config import Normalization

# a background is bright when either statistic of the scaled intensities is above its limit
MEDIAN_LIMIT = 0.35
MODE_LIMIT = 0.5
_HISTOGRAM_BINS = 32
# polarity is judged on at most this many pixels (a regular subsample)
_SAMPLE_PIXELS = 1_000_000


@dataclass(frozen=True)
class Appearance:
    """How an image is turned into network input.

    Attributes
    ----------
    colour : bool
        The image has colour channels (RGB); they are kept.
    inverted : bool
        The background is bright, so intensities are negated (then normalised).
    """

    colour: bool
    inverted: bool

    @property
    def modality(self) -> str:
        """"fluorescence", "brightfield", "stained" or "fluorescence (colour)"."""
        if self.colour:
            return "stained" if self.inverted else "fluorescence (colour)"
        return "brightfield" if self.inverted else "fluorescence"

    def to_dict(self) -> dict:
        return {"modality": self.modality, "colour": self.colour, "inverted": self.inverted}


def grey(block: np.ndarray, colour: bool) -> np.ndarray:
    """float32 (h, w) intensities: the mean over colour channels (alpha dropped)."""
    data = np.asarray(block, dtype=np.float32)
    return data[..., :3].mean(axis=-1) if colour else data


def bright_background(plane: np.ndarray, colour: bool) -> bool:
    """Whether a (Y, X) or (Y, X, C) plane shows dark objects on a bright background.

    See the module docstring for the rule and how it was checked.
    """
    height, width = plane.shape[:2]
    stride = max(1, int(np.ceil(np.sqrt(height * width / _SAMPLE_PIXELS))))
    sample = grey(np.asarray(plane[::stride, ::stride]), colour)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return False
    # a 3x3 mean keeps pixel noise from spreading the histogram of a noisy background
    smooth = ndimage.uniform_filter(np.where(np.isfinite(sample), sample, np.median(finite)), 3)
    low, high = np.percentile(smooth, [1.0, 99.8])
    if high <= low:
        return False
    scaled = np.clip((smooth - low) / (high - low), 0.0, 1.0)
    counts, _ = np.histogram(scaled, bins=_HISTOGRAM_BINS, range=(0.0, 1.0))
    mode = (np.argmax(ndimage.uniform_filter1d(counts.astype(float), 3)) + 0.5) / _HISTOGRAM_BINS
    return bool(np.median(scaled) > MEDIAN_LIMIT or mode > MODE_LIMIT)


def detect_appearance(plane, *, colour: bool, invert: bool | None = None) -> Appearance:
    """The :class:`Appearance` of a plane; ``invert`` (True/False) overrides the detection."""
    if invert is not None and not isinstance(invert, (bool, np.bool_)):
        raise ValueError(f"invert must be True, False or None (detect), got {invert!r}")
    inverted = bright_background(plane, colour) if invert is None else bool(invert)
    return Appearance(colour=bool(colour), inverted=inverted)


def model_channels(block, appearance: Appearance, in_channels: int) -> np.ndarray:
    """Raw (h, w) or (h, w, k) pixels -> float32 (in_channels, h, w) in the model's polarity.

    Parameters
    ----------
    block : (h, w) or (h, w, k) ndarray
        Pixels of one plane: grey, or ``k`` kept channels (colour, or chosen channels).
    appearance : Appearance
    in_channels : int
        Channels the network reads. Grey goes to a one-channel network or is replicated
        to a colour (3-channel) one; ``k`` channels go to the first ``k`` (the rest are 0),
        or are averaged for a one-channel network.

    Returns
    -------
    (in_channels, h, w) float32 ndarray
        Negated when ``appearance.inverted``; intensity normalisation comes after.
    """
    data = np.asarray(block, dtype=np.float32)
    if appearance.colour and data.ndim == 3:
        kept = data.shape[-1]
        if in_channels == 1:
            channels = data.mean(axis=-1)[np.newaxis]
        elif kept <= in_channels:
            channels = np.zeros((in_channels,) + data.shape[:2], dtype=np.float32)
            channels[:kept] = np.moveaxis(data, -1, 0)
        else:
            raise ValueError(f"the model reads {in_channels} channels; the image gives {kept}: choose "
                             f"{in_channels} of them (channel=)")
    elif in_channels in (1, 3):
        channels = np.repeat(data[np.newaxis], in_channels, axis=0)
    else:
        raise ValueError(f"the model reads {in_channels} channels; the image gives 1: give it an image with "
                         f"{in_channels} channels")
    # negation makes a new array: the caller's pixels are never changed
    return -channels if appearance.inverted else np.array(channels, copy=True)


# percentiles are computed on at most this many pixels (a regular subsample), so a huge or
# lazy image is read once, sparsely, and the result does not depend on the tiling
PERCENTILE_SAMPLE_PIXELS = 4_000_000
# normalised intensities are kept in this range (0 = low percentile, 1 = high percentile)
CLIP = (-1.0, 3.0)


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


def intensity_range(plane, appearance: Appearance, normalization: Normalization, in_channels: int) -> IntensityRange:
    """Percentile range of one (Y, X[, C]) plane in model polarity, from a regular subsample of at most ~4 Mpx."""
    height, width = plane.shape[:2]
    stride = max(1, int(np.ceil(np.sqrt(height * width / PERCENTILE_SAMPLE_PIXELS))))
    sample = model_channels(np.asarray(plane[::stride, ::stride]), appearance, in_channels)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        raise ValueError("image plane has no finite pixel (all NaN or infinite)")
    low, high = np.percentile(finite, [normalization.low, normalization.high])
    if high <= low:
        # constant (or nearly constant) plane: shift only, so it maps to 0 rather than NaN
        high = low
    return IntensityRange(low=float(low), high=float(high))


def network_input(block, appearance: Appearance, scale: IntensityRange, in_channels: int) -> np.ndarray:
    """Raw (h, w[, C]) pixels -> normalised float32 (in_channels, h, w), as the network reads them."""
    return scale.apply(model_channels(block, appearance, in_channels))
