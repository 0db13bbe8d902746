"""How an array is read: its axes (planes, channels, colour) and lazy 2-D plane views.

An image has two spatial axes Y and X, at most one plane axis (Z: a volume, T: a time
series) and at most one channel axis C. A trailing C of 3 or 4 is colour (RGB, RGBA);
any other C holds separate channels (fluorescence stains), one of which is segmented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import AXES_LETTERS

# a leading axis this short is read as channels, never silently as planes
MAX_GUESSED_CHANNELS = 4


@dataclass(frozen=True)
class ImageLayout:
    """The axes of an image and what they mean.

    Attributes
    ----------
    shape : tuple of int
    axes : str
        One letter per axis of ``shape``, from "TZCYX".
    guessed : bool
        ``axes`` were guessed from the shape (no ``axes=`` given).
    """

    shape: tuple[int, ...]
    axes: str
    guessed: bool

    @property
    def plane_shape(self) -> tuple[int, int]:
        return self.shape[self.axes.index("Y")], self.shape[self.axes.index("X")]

    @property
    def stack_axis(self) -> str | None:
        """"Z", "T" or None."""
        return next((letter for letter in "ZT" if letter in self.axes), None)

    @property
    def stacked(self) -> bool:
        return self.stack_axis is not None

    @property
    def planes(self) -> int:
        return self.shape[self.axes.index(self.stack_axis)] if self.stacked else 1

    @property
    def channels(self) -> int:
        return self.shape[self.axes.index("C")] if "C" in self.axes else 1

    @property
    def colour(self) -> bool:
        """A trailing channel axis of 3 or 4: RGB(A) colour."""
        return self.axes.endswith("C") and self.channels in (3, 4)

    @property
    def multichannel(self) -> bool:
        """Separate channels (not colour), of which one is segmented."""
        return "C" in self.axes and not self.colour

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(Y, X), or (planes, Y, X) for a stack: the shape of the labels."""
        return ((self.planes,) if self.stacked else ()) + self.plane_shape

    def describe(self) -> str:
        """E.g. "ZYX, 12 planes of 512x512" for messages."""
        parts = [f"{self.planes} {'planes' if self.stack_axis == 'Z' else 'frames'}"] if self.stacked else []
        if "C" in self.axes:
            parts.append("colour" if self.colour else f"{self.channels} channels")
        return f"{self.axes}, " + ", ".join(parts + [f"{self.plane_shape[0]}x{self.plane_shape[1]}"])

    def plane(self, image, index: int = 0, channel: int | tuple[int, ...] | None = None) -> PlaneView:
        """A lazy view of plane ``index``: (Y, X) for one channel, (Y, X, k) for ``k`` chosen
        channels, or the colour planes (Y, X, 3) (alpha dropped) of a colour image."""
        if self.multichannel and channel is None:
            raise ValueError(f"image with axes {self.axes} has {self.channels} channels: choose one (channel=)")
        for value in (channel if isinstance(channel, tuple) else () if channel is None else (channel,)):
            if not 0 <= value < self.channels:
                raise ValueError(f"channel {value} does not exist: the image has {self.channels} channel(s) "
                                 f"(axes {self.axes}, shape {self.shape})")
        if not 0 <= index < self.planes:
            raise ValueError(f"plane {index} does not exist: the image has {self.planes}")
        return PlaneView(image, self, index, channel)


class PlaneView:
    """Plane ``index`` of an image as a (Y, X) or colour (Y, X, C) array-like.

    Slicing ``view[r0:r1, c0:c1]`` reads only that window of the underlying numpy, dask
    or zarr array, so a huge image is never loaded whole.
    """

    def __init__(self, image, layout: ImageLayout, index: int, channel: int | tuple[int, ...] | None):
        self.image, self.layout, self.index, self.channel = image, layout, index, channel
        # which channels the view keeps (last axis), None for a single grey channel
        if layout.colour and channel is None:
            self.kept = slice(0, 3)  # RGB(A): colour without alpha
        elif isinstance(channel, tuple):
            self.kept = list(channel)
        else:
            self.kept = None
        self.colour = self.kept is not None
        channels = (3 if isinstance(self.kept, slice) else len(self.kept),) if self.colour else ()
        self.shape = layout.plane_shape + channels
        self.ndim = len(self.shape)
        self.dtype = np.dtype(image.dtype)

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key
        index, kept = [], []
        for letter in self.layout.axes:
            if letter in "ZT":
                index.append(self.index)
            elif letter == "C":
                index.append(slice(None) if self.colour else self.channel)
                if self.colour:
                    kept.append("C")
            else:
                index.append(rows if letter == "Y" else cols)
                kept.append(letter)
        block = np.asarray(self.image[tuple(index)])
        order = [kept.index(letter) for letter in "YXC" if letter in kept]
        block = np.transpose(block, order)
        return block[..., self.kept] if self.colour else block

    def __array__(self, dtype=None, copy=None):
        whole = self[0:self.shape[0], 0:self.shape[1]]
        return whole if dtype is None else whole.astype(dtype)


def _guess_axes(shape: tuple[int, ...]) -> str:
    ndim = len(shape)
    if ndim == 2:
        return "YX"
    if ndim == 3:
        if shape[-1] in (3, 4) or (shape[-1] <= MAX_GUESSED_CHANNELS < shape[0]):
            return "YXC"  # colour, or a few channels last (e.g. cytoplasm + nucleus)
        return "CYX" if shape[0] <= MAX_GUESSED_CHANNELS else "ZYX"
    if ndim == 4:
        if shape[-1] in (3, 4):
            return "ZYXC"
        if shape[1] <= MAX_GUESSED_CHANNELS:
            return "ZCYX"
        if shape[0] <= MAX_GUESSED_CHANNELS:
            return "CZYX"
    raise ValueError(f"image shape {shape} is not (Y, X), (Y, X, 3|4), (C, Y, X) or (Z|T, Y, X) and its axes "
                     f"cannot be guessed: pass axes= (letters of {AXES_LETTERS!r}, e.g. 'ZCYX')")


def describe_image(image, *, axes: str | None = None) -> ImageLayout:
    """Validate ``image`` and say how it will be read.

    Parameters
    ----------
    image : array
        numpy, dask or zarr; bool, integer or float dtype.
    axes : str, optional
        One letter per axis from "TZCYX" (Y and X required, at most one of Z and T).
        Guessed when omitted: (Y, X); a last axis of 3 or 4 is colour, a shorter last axis
        channels (Y, X, C); a first axis of at most 4 is channels (C, Y, X), a longer one
        planes (Z, Y, X); 4-D images are
        (Z, Y, X, 3|4), (Z, C, Y, X) or (C, Z, Y, X) by the same rules. A guessed
        channel axis is reported (never silently taken for planes); pass ``axes="ZYX"``
        for a stack of 4 planes or fewer.

    Returns
    -------
    ImageLayout
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
    guessed = axes is None
    axes = _guess_axes(shape) if guessed else axes.upper()
    if len(axes) != len(shape):
        raise ValueError(f"axes {axes!r} name {len(axes)} axes, the image has {len(shape)} (shape {shape})")
    if set(axes) - set(AXES_LETTERS) or len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes) \
            or {"Z", "T"} <= set(axes) or axes.index("Y") > axes.index("X"):
        raise ValueError(f"axes {axes!r} must be distinct letters of {AXES_LETTERS!r} with Y before X and at "
                         f"most one of Z and T, e.g. 'YX', 'YXC', 'CYX', 'ZYX'")
    return ImageLayout(shape=shape, axes=axes, guessed=guessed)
