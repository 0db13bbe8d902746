"""Annotations: images with (possibly sparse) instance labels, checked and made into targets.

One set of checks for every front end: the API, the command line and the napari widget
all call :func:`check_annotation` on each (image, labels, regions) triple, so a bad input
gets the same message everywhere, before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..checks import check_labels
from ..config import TrainConfig
from ..inference.appearance import detect_appearance, intensity_range, network_input
from ..inference.labels import labels_to_classes
from ..inference.layout import describe_image
from .weightmap import border_weight_map, class_frequency_weights


def annotated_mask(shape: tuple[int, int], regions, *, name: str = "regions") -> np.ndarray:
    """Where pixels are annotated: everywhere (None), a bool mask, or rectangles.

    Parameters
    ----------
    shape : (int, int)
        ``(Y, X)`` of the image.
    regions : None, (Y, X) ndarray of bool, or sequence of (y0, y1, x0, x1)
        None: the whole image. Rectangles are in pixels, ends exclusive, non-empty and
        inside the image; several rectangles are united.
    name : str
        How the argument is called in error messages.

    Returns
    -------
    (Y, X) ndarray of bool
        True where the labels are to be learned from (a new array, also for a mask).
    """
    if regions is None:
        return np.ones(shape, dtype=bool)
    array = np.asarray(regions) if not isinstance(regions, list) else None
    if array is not None and array.dtype == bool:
        if array.shape != shape:
            raise ValueError(f"{name} mask has shape {array.shape}, the image is {shape}")
        return array.copy()
    mask = np.zeros(shape, dtype=bool)
    for rectangle in regions:
        try:
            y0, y1, x0, x1 = (int(round(float(v))) for v in rectangle)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a bool mask or (y0, y1, x0, x1) rectangles, got {rectangle!r}") from None
        if not (0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]):
            raise ValueError(f"{name}: rectangle {(y0, y1, x0, x1)} is empty or outside the image {shape}")
        mask[y0:y1, x0:x1] = True
    return mask


def cut_cell_pixels(labels: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """Cell pixels with a 4-neighbour outside the regions.

    Where a region cuts through a cell, whether such a pixel is interior or boundary depends
    on labels outside the region, which are unknown: it is left out of the loss rather than
    taught as a boundary that is not there.
    """
    cross = ndimage.generate_binary_structure(2, 1)
    return (labels > 0) & ndimage.binary_dilation(~annotated, structure=cross)


@dataclass(frozen=True)
class CheckedAnnotation:
    """One usable (image, labels, annotated mask) triple; labels are 0 outside the mask."""

    image: np.ndarray
    labels: np.ndarray
    annotated: np.ndarray
    axes: str


def check_annotation(image, labels, regions=None, *, image_name: str = "images[0]",
                     labels_name: str = "labels[0]", regions_name: str = "regions[0]") -> CheckedAnnotation:
    """Check one training image with its labels and regions; raise naming what is wrong.

    The image must be one 2-D plane: grey, colour, or a few channels last (e.g. cytoplasm
    and nucleus, (Y, X, 2)); labels whole numbers >= 0 of the
    plane's shape; regions anything :func:`annotated_mask` takes. The names are how the
    caller's user knows the three (``images[2]`` in the API, ``--image cells.tif`` on the
    command line, a layer name in napari).
    """
    layout = describe_image(image)
    if layout.stacked or (layout.multichannel and not layout.axes.endswith("C")):
        raise ValueError(f"{image_name}: shape {layout.shape} is a stack or has its channels first (axes "
                         f"{layout.axes}); train on 2-D (Y, X) planes, colour (Y, X, 3) or channels last "
                         f"(Y, X, C), e.g. np.moveaxis(image, 0, -1)")
    label = check_labels(labels, name=labels_name)
    if label.shape != layout.plane_shape:
        raise ValueError(f"{labels_name}: shape {label.shape}, but {image_name} is {layout.plane_shape}")
    annotated = annotated_mask(layout.plane_shape, regions, name=regions_name)
    return CheckedAnnotation(np.asarray(image), np.where(annotated, label, 0), annotated, layout.axes)


@dataclass
class Annotation:
    """One image prepared for training: normalised pixels and per-pixel targets."""

    image: np.ndarray  # (C, Y, X) float32, normalised
    labels: np.ndarray  # (Y, X) instance labels
    weights: np.ndarray  # (Y, X) float32, 0 where ignored
    annotated: np.ndarray  # (Y, X) bool
    cell_pixels: np.ndarray  # flat indices of annotated cell pixels
    any_pixels: np.ndarray  # flat indices of annotated pixels


def as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def check_annotations(images, labels, regions=None, *, name: str = "images") -> list[CheckedAnnotation]:
    """:func:`check_annotation` for lists (or single items) that pair up, with at least one cell."""
    images, labels = as_list(images), as_list(labels)
    regions = as_list(regions) if regions is not None else [None] * len(images)
    if not images:
        raise ValueError(f"{name}: no image given")
    if len(labels) != len(images) or len(regions) != len(images):
        raise ValueError(f"{name}, labels and regions must pair up: got {len(images)} images, "
                         f"{len(labels)} labels and {len(regions)} regions")
    checked = [check_annotation(image, label, region, image_name=f"{name}[{index}]", labels_name=f"labels[{index}]",
                                regions_name=f"regions[{index}]")
               for index, (image, label, region) in enumerate(zip(images, labels, regions))]
    if not any((item.labels > 0).any() for item in checked):
        raise ValueError("labels: no annotated cell (inside the regions) — paint at least one cell")
    return checked


def annotated_diameter(checked: list[CheckedAnnotation]) -> float:
    """Median equivalent diameter (pixels) of all annotated cells."""
    from ..datasets import median_diameter

    areas = np.concatenate([np.bincount(item.labels.ravel())[1:] for item in checked])
    areas = areas[areas > 0]
    return median_diameter(np.repeat(np.arange(1, areas.size + 1), areas)) if areas.size else float("nan")


def rescaled(item: CheckedAnnotation, factor: float) -> CheckedAnnotation:
    """``item`` with its image, labels and mask on the grid rescaled by ``factor``."""
    from ..inference.rescale import is_unit, resample, resample_nearest

    if is_unit(factor):
        return item
    image = resample(np.asarray(item.image, dtype=np.float32), factor)
    shape = image.shape[:2]
    return CheckedAnnotation(image, resample_nearest(item.labels, factor, shape),
                             resample_nearest(item.annotated, factor, shape), item.axes)


def training_scale(model, checked: list[CheckedAnnotation], config: TrainConfig) -> tuple[float, float | None]:
    """(factor, cell diameter): how much the annotations are rescaled for ``model``.

    A model with a working diameter learns at that scale; the cells' diameter is
    ``config.diameter`` or measured from the labels. Models without one train as they are.
    """
    if model.diameter is None:
        return 1.0, config.diameter
    diameter = config.diameter or annotated_diameter(checked)
    if not np.isfinite(diameter):
        return 1.0, None
    return model.diameter / diameter, float(diameter)


def prepare_annotations(model, images, labels, regions=None, config: TrainConfig | None = None, *,
                        name: str = "images", factor: float = 1.0) -> list[Annotation]:
    """Check and prepare (image, labels, region) triples; raise before any training starts.

    Pixels go through the prediction input path (polarity detected, colour kept or made
    grey, percentiles normalised; rescaled by ``factor``, see :func:`training_scale`), so
    the network learns from what it will be shown.
    Weight maps are U-Net eq. 2 with class weights balanced over all images together; they
    are 0 outside the regions and on cell pixels next to a region's edge (their class
    depends on unknown labels). The inputs are never modified.
    """
    config = config or TrainConfig()
    checked = [rescaled(item, factor) for item in check_annotations(images, labels, regions, name=name)]
    classes = [labels_to_classes(item.labels) for item in checked]
    counts = sum(np.bincount(c[item.annotated], minlength=3) for c, item in zip(classes, checked))
    class_weights = class_frequency_weights(counts) if config.class_balance else np.ones(3)
    in_channels = model.config.in_channels
    annotations = []
    for item, item_classes in zip(checked, classes):
        colour = item.axes.endswith("C")
        appearance = detect_appearance(item.image, colour=colour)
        scale = intensity_range(item.image, appearance, model.normalization, in_channels)
        pixels = network_input(item.image, appearance, scale, in_channels)
        weights = border_weight_map(item.labels, w0=config.w0, sigma=config.sigma, ignore=~item.annotated,
                                    classes=item_classes, class_weights=class_weights)
        weights[cut_cell_pixels(item.labels, item.annotated)] = 0
        annotations.append(Annotation(
            image=pixels, labels=item.labels, weights=weights, annotated=item.annotated,
            cell_pixels=np.flatnonzero(item.annotated & (item.labels > 0)), any_pixels=np.flatnonzero(item.annotated)))
    return annotations


def training_weight_map(labels, *, regions=None, config: TrainConfig | None = None) -> np.ndarray:
    """The per-pixel loss weights training uses for one labelled image (see
    :func:`prepare_annotations`): eq. 2 of the U-Net paper, 0 where nothing is learned."""
    config = config or TrainConfig()
    labels = check_labels(labels, ndim=2)
    annotated = annotated_mask(labels.shape, regions)
    classes = labels_to_classes(np.where(annotated, labels, 0))
    class_weights = None if config.class_balance else np.ones(3)
    weights = border_weight_map(np.where(annotated, labels, 0), w0=config.w0, sigma=config.sigma,
                                ignore=~annotated, classes=classes, class_weights=class_weights)
    weights[cut_cell_pixels(labels, annotated)] = 0
    return weights


def check_validation_pairs(validation) -> list[tuple[np.ndarray, np.ndarray]]:
    """Check held-out ``(image, labels)`` pairs before training rather than at the first score."""
    pairs = []
    for index, pair in enumerate(validation or []):
        try:
            image, labels = pair
        except (TypeError, ValueError):
            raise ValueError(f"validation[{index}] must be an (image, labels) pair") from None
        layout = describe_image(image)
        labels = check_labels(labels, name=f"validation labels[{index}]")
        if layout.stacked or layout.multichannel or labels.shape != layout.plane_shape:
            raise ValueError(f"validation labels[{index}] have shape {labels.shape}, their image "
                             f"has shape {layout.shape}; pass 2-D (Y, X) or RGB images with matching labels")
        pairs.append((np.asarray(image), labels))
    return pairs
