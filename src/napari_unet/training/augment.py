"""Data augmentation for training from few annotated images.

Geometric transforms (flips, 90 degree rotations, free rotation, elastic deformation, as
in the U-Net paper) move the image and every per-pixel target identically; intensity
transforms (scale, offset, gamma, noise) change the image only. The random generator is
always passed in, so a seed reproduces a sample exactly.

Out-of-image pixels after a free rotation or an elastic deformation are filled by
mirroring (``mode="reflect"``) for the image *and* the targets. The image content there is
a plausible mirrored image (the same mirroring the overlap-tile prediction applies at
image borders), and the targets mirrored with it stay correct for that content: nothing
becomes falsely background, and no pixel has to be dropped from the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..checks import check_interval, check_labels, check_mask, check_positive_int, check_probability


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations :func:`augment_sample` draws, and how strong they are.

    Parameters
    ----------
    flip : bool
        Flip each axis with probability 1/2.
    rotate90 : bool
        Rotate by a random multiple of 90 degrees (of 180 degrees for non-square images, so
        the shape is kept).
    rotation_probability : float
        Probability of an additional rotation by a uniform random angle.
    elastic_probability : float
        Probability of an elastic deformation. 0.8 keeps a share of undeformed samples so
        the network also sees the cells' true shapes.
    elastic_grid : int
        Coarse grid (``elastic_grid x elastic_grid`` nodes) of random displacements (paper: 3).
    elastic_std : float
        Standard deviation of the displacements at the grid nodes, in pixels (paper: 10).
    intensity_scale : (float, float)
        Range of the factor the image is multiplied by.
    intensity_offset : (float, float)
        Range of the offset added to the image, in units of the image's standard deviation.
    gamma : (float, float)
        Range of the gamma exponent, applied to the image rescaled to [0, 1].
    noise_std : (float, float)
        Range of the standard deviation of additive Gaussian noise, in units of the image's
        standard deviation.
    zoom : (float, float)
        Range of the magnification (drawn log-uniformly): > 1 shows objects larger. Teaches
        a model trained at one object size the spread of sizes it meets after rescaling.
    channel_gain : (float, float)
        Range of an extra factor drawn per channel (colour balance of stained images).
    blur : (float, float)
        Range of the sigma (pixels) of a Gaussian blur of the image (focus).
    image_order : int
        Spline order of the image resampling: 3 (bicubic, the paper's) or 1 (linear,
        about twice as fast, for long pretraining runs).

    An intensity transform is switched off by giving its range a single neutral value,
    e.g. ``intensity_scale=(1.0, 1.0)``, ``gamma=(1.0, 1.0)``, ``noise_std=(0.0, 0.0)``.
    """

    flip: bool = True
    rotate90: bool = True
    rotation_probability: float = 0.5
    elastic_probability: float = 0.8
    elastic_grid: int = 3
    elastic_std: float = 10.0
    intensity_scale: tuple[float, float] = (0.7, 1.3)
    intensity_offset: tuple[float, float] = (-0.1, 0.1)
    gamma: tuple[float, float] = (0.7, 1.5)
    noise_std: tuple[float, float] = (0.0, 0.05)
    zoom: tuple[float, float] = (1.0, 1.0)
    channel_gain: tuple[float, float] = (1.0, 1.0)
    blur: tuple[float, float] = (0.0, 0.0)
    image_order: int = 3

    def __post_init__(self):
        check_probability("rotation_probability", self.rotation_probability)
        check_probability("elastic_probability", self.elastic_probability)
        check_positive_int("elastic_grid", self.elastic_grid, minimum=2)
        if not self.elastic_std >= 0:
            raise ValueError(f"elastic_std must be >= 0 pixels, got {self.elastic_std!r}")
        check_interval("intensity_scale", self.intensity_scale, 0.0)
        check_interval("intensity_offset", self.intensity_offset, -np.inf)
        check_interval("gamma", self.gamma, np.finfo(float).tiny)
        check_interval("noise_std", self.noise_std, 0.0)
        check_interval("zoom", self.zoom, np.finfo(float).tiny)
        check_interval("channel_gain", self.channel_gain, 0.0)
        check_interval("blur", self.blur, 0.0)
        if self.image_order not in (1, 3):
            raise ValueError(f"image_order must be 1 (linear) or 3 (cubic), got {self.image_order!r}")


@dataclass(frozen=True)
class AugmentedSample:
    """One augmented training sample; ``weights`` and ``ignore`` are None when not given.

    Attributes
    ----------
    image : (Y, X) or (Y, X, C) ndarray of float32
    labels : (Y, X) ndarray of int, same dtype as the input labels
    weights : (Y, X) ndarray of float32 or None
    ignore : (Y, X) ndarray of bool or None
    """

    image: np.ndarray
    labels: np.ndarray
    weights: np.ndarray | None = None
    ignore: np.ndarray | None = None


def elastic_displacement(shape, rng: np.random.Generator, *, grid: int = 3, std: float = 10.0) -> np.ndarray:
    """Smooth random displacement field of the U-Net paper's elastic deformation.

    Displacement vectors drawn from ``N(0, std)`` (per component, in pixels) on a coarse
    ``grid x grid`` lattice whose corner nodes sit on the image corners are interpolated to
    every pixel with a cubic spline, which passes through the node values.

    Parameters
    ----------
    shape : (int, int)
        Image shape (Y, X).
    rng : numpy.random.Generator
        Source of the random displacements.
    grid : int
        Nodes per axis of the coarse lattice, >= 2.
    std : float
        Standard deviation of each displacement component at the nodes, in pixels.

    Returns
    -------
    displacement : (2, Y, X) ndarray of float32
        Row and column displacement of every pixel.
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be a 2D image shape (Y, X) with positive sizes, got {tuple(shape)}")
    nodes = rng.normal(0.0, std, size=(2, grid, grid))
    # the tensor-product spline, evaluated axis by axis: rows @ nodes @ columns.T
    rows = _spline_basis(shape[0], grid)
    columns = _spline_basis(shape[1], grid)
    return np.stack([rows @ component @ columns.T for component in nodes]).astype(np.float32)


def _spline_basis(length: int, grid: int) -> np.ndarray:
    """(length, grid) weights of the cubic spline through ``grid`` nodes spread over ``length`` pixels."""
    positions = np.linspace(0, grid - 1, length)
    return np.stack([ndimage.map_coordinates(np.eye(grid)[node], [positions], order=3, mode="mirror")
                     for node in range(grid)], axis=1)


def warp(array, displacement, *, order: int, mode: str = "reflect") -> np.ndarray:
    """Resample an image or a per-pixel target at ``pixel + displacement``.

    Parameters
    ----------
    array : (Y, X) or (Y, X, C) ndarray
        Image (channels last; every channel is warped the same way) or label/mask array.
    displacement : (2, Y, X) ndarray of float
        Where each output pixel reads the input, relative to its own position.
    order : int
        Spline order: 3 (bicubic) for images, 0 (nearest) for labels and masks, so no new
        label value appears.
    mode : str
        How points outside the input are filled (see ``scipy.ndimage.map_coordinates``).

    Returns
    -------
    warped : ndarray of the shape of ``array``
        Same dtype as ``array`` for ``order=0``, float32 otherwise.
    """
    array = np.asarray(array)
    displacement = np.asarray(displacement)
    if array.ndim not in (2, 3) or displacement.shape != (2, *array.shape[:2]):
        raise ValueError(
            f"displacement must have shape (2, Y, X) = {(2, *array.shape[:2])} for an array of "
            f"shape {array.shape}, got {displacement.shape}"
        )
    coordinates = np.indices(array.shape[:2], dtype=np.float64) + displacement
    if order == 0:
        # map_coordinates has no bool kernel; uint8 keeps masks exact.
        work = array.view(np.uint8) if array.dtype == bool else array
        output_dtype = work.dtype
    else:
        work = array.astype(np.float32, copy=False)
        output_dtype = np.float32
    if array.ndim == 2:
        warped = ndimage.map_coordinates(work, coordinates, order=order, mode=mode, output=output_dtype)
    else:
        warped = np.stack(
            [
                ndimage.map_coordinates(work[..., c], coordinates, order=order, mode=mode, output=output_dtype)
                for c in range(array.shape[2])
            ],
            axis=-1,
        )
    return warped.view(bool) if array.dtype == bool and order == 0 else warped


def _rotation_displacement(shape, angle: float) -> np.ndarray:
    """Displacement that rotates an image by ``angle`` radians about its centre."""
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    positions = np.indices(shape, dtype=np.float64) - centre[:, None, None]
    cos, sin = np.cos(angle), np.sin(angle)
    rotated = np.stack(
        [cos * positions[0] - sin * positions[1], sin * positions[0] + cos * positions[1]]
    )
    return rotated - positions


def _change_intensity(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Blur, channel gains, scale, offset, gamma and noise; statistics are taken per channel.

    Blur and channel gains draw from ``rng`` only when their range is not neutral, so
    configurations without them give the samples they always gave.
    """
    image = image.astype(np.float32)
    if config.blur != (0.0, 0.0):
        sigma = rng.uniform(*config.blur)
        image = ndimage.gaussian_filter(image, (sigma, sigma) + (0,) * (image.ndim - 2))
    if config.channel_gain != (1.0, 1.0) and image.ndim == 3:
        image = image * rng.uniform(*config.channel_gain, size=image.shape[-1]).astype(np.float32)
    spatial = (0, 1)
    std = image.std(axis=spatial, keepdims=True)
    image = image * rng.uniform(*config.intensity_scale) + rng.uniform(*config.intensity_offset) * std
    low = image.min(axis=spatial, keepdims=True)
    span = image.max(axis=spatial, keepdims=True) - low
    # Constant channels (span 0) are left as they are rather than divided by zero.
    safe_span = np.where(span > 0, span, 1)
    image = np.where(span > 0, ((image - low) / safe_span) ** rng.uniform(*config.gamma) * span + low, image)
    noise_std = rng.uniform(*config.noise_std) * std
    image = image + rng.standard_normal(image.shape, dtype=np.float32) * noise_std
    return image.astype(np.float32)


def _check_sample(image, labels, weights, ignore):
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (Y, X) or (Y, X, C) with channels last, got shape {image.shape}")
    labels = check_labels(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels must have the image's shape (Y, X) = {image.shape[:2]}, got {labels.shape}")
    if weights is not None and np.shape(weights) != labels.shape:
        raise ValueError(f"weights must have the shape of labels {labels.shape}, got {np.shape(weights)}")
    weights = None if weights is None else np.asarray(weights, dtype=np.float32)
    ignore = None if ignore is None else check_mask(ignore, labels.shape, "ignore")
    return image, labels, weights, ignore


def _apply_to_all(arrays, transform):
    """``transform`` applied to every array of the list that is not None."""
    return [None if array is None else transform(array) for array in arrays]


def _flip_and_turn(arrays: list, rng: np.random.Generator, config: AugmentConfig) -> list:
    """Random flips along both axes and quarter turns (half turns of a non-square patch)."""
    labels = arrays[1]
    if config.flip:
        for axis in (0, 1):
            if rng.random() < 0.5:
                arrays = _apply_to_all(arrays, lambda array: np.flip(array, axis=axis))
    if config.rotate90:
        square = labels.shape[0] == labels.shape[1]
        turns = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        arrays = _apply_to_all(arrays, lambda array: np.rot90(array, k=turns, axes=(0, 1)))
    return arrays


def _displacement(output_shape: tuple[int, int], rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """(2, Y, X) read offsets of a random rotation, zoom and elastic deformation."""
    displacement = np.zeros((2, *output_shape), dtype=np.float64)
    if rng.random() < config.rotation_probability:
        displacement += _rotation_displacement(output_shape, rng.uniform(0.0, 2 * np.pi))
    if config.zoom != (1.0, 1.0):
        zoom = float(np.exp(rng.uniform(*np.log(config.zoom))))
        centre = (np.asarray(output_shape, dtype=np.float64) - 1) / 2
        # read positions spread 1/zoom times as far from the centre (rotation included)
        displacement = (np.indices(output_shape, dtype=np.float64) - centre[:, None, None] + displacement) \
            * (1.0 / zoom) - (np.indices(output_shape, dtype=np.float64) - centre[:, None, None])
    if rng.random() < config.elastic_probability:
        displacement += elastic_displacement(output_shape, rng, grid=config.elastic_grid, std=config.elastic_std)
    return displacement


def _resample(arrays: list, displacement: np.ndarray, offset: np.ndarray, output_shape, image_order: int) -> list:
    """The arrays read at the displaced positions of the centred output window."""
    if np.any(displacement) or np.any(offset % 1):
        # Cubic for the image; nearest for labels, weights and ignore so they keep their
        # values and stay aligned with each other.
        orders = (image_order, 0, 0, 0)
        displacement = displacement + offset[:, None, None]
        return [None if array is None else _warp_to(array, displacement, order=order)
                for array, order in zip(arrays, orders)]
    if np.any(offset):
        top, left = (int(o) for o in offset)
        window = (slice(top, top + output_shape[0]), slice(left, left + output_shape[1]))
        return _apply_to_all(arrays, lambda array: array[window])
    return arrays


def augment_sample(
    image, labels, rng: np.random.Generator, *, weights=None, ignore=None, config: AugmentConfig = AugmentConfig(),
    output_shape: tuple[int, int] | None = None,
) -> AugmentedSample:
    """Draw one random augmentation and apply it to an image and its targets.

    Flips, 90 degree rotations, a free rotation, a zoom and an elastic deformation move all
    arrays identically (the last three in one resampling: cubic for the image, nearest for
    the targets, mirrored outside the image); blur, channel gains, intensity scale/offset,
    gamma and Gaussian noise change the image only.

    Parameters
    ----------
    image : (Y, X) or (Y, X, C) ndarray
        Image, channels last.
    labels : (Y, X) ndarray of int
        Instance labels or class map.
    rng : numpy.random.Generator
        Source of every random choice.
    weights : (Y, X) ndarray of float, optional
        Per-pixel loss weights, resampled with nearest neighbour so they stay aligned with
        ``labels``.
    ignore : (Y, X) ndarray of bool, optional
        True where pixels are not annotated.
    config : AugmentConfig
        Which transforms to draw and their ranges.
    output_shape : (int, int), optional
        Shape of the returned arrays, at most the input's: the centre of the transformed
        input (default: the input shape). A larger input gives a zoom that shrinks the
        objects real pixels to show instead of mirrored ones.

    Returns
    -------
    sample : AugmentedSample
        Arrays of ``output_shape``: image float32, labels of the input dtype holding a
        subset of the input label values, weights float32 and ignore bool (or None).
    """
    image, labels, weights, ignore = _check_sample(image, labels, weights, ignore)
    output_shape = tuple(labels.shape) if output_shape is None else tuple(int(n) for n in output_shape)
    if len(output_shape) != 2 or not all(1 <= n <= m for n, m in zip(output_shape, labels.shape)):
        raise ValueError(f"output_shape must be 2 sizes within the input shape {labels.shape}, got {output_shape}")
    arrays = _flip_and_turn([image, labels, weights, ignore], rng, config)
    displacement = _displacement(output_shape, rng, config)
    offset = (np.asarray(labels.shape) - np.asarray(output_shape)) / 2
    arrays = _resample(arrays, displacement, offset, output_shape, config.image_order)

    # Fresh C-ordered copies: no output may share memory with an input.
    image, labels, weights, ignore = _apply_to_all(arrays, lambda array: np.array(array, order="C"))
    return AugmentedSample(_change_intensity(image, rng, config), labels, weights, ignore)


def _warp_to(array: np.ndarray, displacement: np.ndarray, *, order: int) -> np.ndarray:
    """:func:`warp` onto the grid of ``displacement``, which may be smaller than ``array``."""
    if displacement.shape[1:] == array.shape[:2]:
        return warp(array, displacement, order=order)
    coordinates = np.indices(displacement.shape[1:], dtype=np.float64) + displacement
    work = array.view(np.uint8) if array.dtype == bool else array
    dtype = work.dtype if order == 0 else np.float32
    if order:
        work = work.astype(np.float32, copy=False)
    channels = [work] if array.ndim == 2 else [work[..., c] for c in range(array.shape[2])]
    warped = [ndimage.map_coordinates(c, coordinates, order=order, mode="reflect", output=dtype) for c in channels]
    result = warped[0] if array.ndim == 2 else np.stack(warped, axis=-1)
    return result.view(bool) if array.dtype == bool and order == 0 else result


def preview_augmentations(image, labels, *, n: int = 4, seed: int = 0, config: AugmentConfig = AugmentConfig()):
    """A few augmented versions of one sample, e.g. to show in the training widget.

    Sample ``i`` uses its own generator spawned from ``seed``, so it is the same for any
    ``n > i``.

    Parameters
    ----------
    image : (Y, X) or (Y, X, C) ndarray
    labels : (Y, X) ndarray of int
    n : int
        Number of samples.
    seed : int
        Seed of the augmentation draws.
    config : AugmentConfig

    Returns
    -------
    samples : list of AugmentedSample
    """
    return [
        augment_sample(image, labels, rng, config=config)
        for rng in np.random.default_rng(seed).spawn(n)
    ]
