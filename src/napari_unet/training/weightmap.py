"""Per-pixel loss weights of the U-Net paper (Ronneberger et al. 2015, eq. 2).

``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))``

``w_c`` balances the class frequencies; the second term makes the thin gaps between
touching cells expensive to get wrong, so the network learns to separate them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..checks import check_labels, check_mask

#: The border term is truncated where it falls below this fraction of ``w0``.
BORDER_TERM_TOLERANCE = 1e-3


def class_frequency_weights(counts) -> np.ndarray:
    """Per-class weights ``n / (n_present * n_k)`` from the pixel count ``n_k`` of each class.

    Each present class then carries the same total weight and annotated pixels average to
    1; absent classes get 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros(counts.shape, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def class_balance_weights(classes, *, ignore=None) -> np.ndarray:
    """Weight every pixel so that each present class carries the same total weight.

    Parameters
    ----------
    classes : (Y, X) ndarray of int
        Class of every pixel (e.g. 0 background, 1 interior, 2 boundary), >= 0.
    ignore : (Y, X) ndarray of bool, optional
        True where a pixel is not annotated; it gets weight 0 and is not counted.

    Returns
    -------
    weights : (Y, X) ndarray of float32
        :func:`class_frequency_weights` of the annotated pixels, per pixel.
    """
    classes = check_labels(classes, "classes", ndim=2)
    ignore = check_mask(ignore, classes.shape, "ignore")
    counts = np.bincount(classes[~ignore].ravel(), minlength=int(classes.max(initial=0)) + 1)
    weights = class_frequency_weights(counts)[classes].astype(np.float32)
    weights[ignore] = 0.0
    return weights


def border_cutoff(sigma: float) -> float:
    """Distance ``d1 + d2`` beyond which the border term is below 1e-3 of ``w0``.

    ``exp(-R**2 / (2 sigma**2)) = 1e-3`` gives ``R = sigma * sqrt(2 ln 1000)``, about
    3.72 sigma (18.6 px for the paper's sigma = 5 px).
    """
    return sigma * math.sqrt(-2.0 * math.log(BORDER_TERM_TOLERANCE))


def nearest_two_cell_distances(labels, *, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances to the nearest and the second-nearest cell, up to ``cutoff``.

    Each cell's distance transform is computed only inside its bounding box grown by
    ``cutoff``, so the cost grows with the number of cells, not with the image size times
    the number of cells.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Instance labels, 0 for background; cell ``k`` is ``labels == k``.
    cutoff : float
        Distances beyond it are reported as ``inf``.

    Returns
    -------
    nearest, second_nearest : (Y, X) ndarray of float32
        Distance in pixels to the closest and second-closest cell (0 inside a cell for
        its own distance), ``inf`` where farther than ``cutoff`` or where there is no
        such cell.
    """
    labels = check_labels(labels, ndim=2)
    nearest = np.full(labels.shape, np.inf, dtype=np.float32)
    second_nearest = np.full(labels.shape, np.inf, dtype=np.float32)
    cell_ids, sequential = np.unique(labels, return_inverse=True)
    sequential = sequential.reshape(labels.shape)
    if cell_ids[0] != 0:
        sequential += 1
    margin = int(math.ceil(cutoff))
    for index, box in enumerate(ndimage.find_objects(sequential), start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(axis.start - margin, 0), min(axis.stop + margin, size))
            for axis, size in zip(box, labels.shape)
        )
        distance = ndimage.distance_transform_edt(sequential[grown] != index).astype(np.float32)
        distance[distance > cutoff] = np.inf
        box_nearest = nearest[grown]
        box_second = second_nearest[grown]
        box_second[...] = np.where(
            distance < box_nearest, box_nearest, np.minimum(box_second, distance)
        )
        np.minimum(box_nearest, distance, out=box_nearest)
    return nearest, second_nearest


def border_weight_map(labels, *, w0: float = 10.0, sigma: float = 5.0, ignore=None, classes=None,
                      class_weights=None) -> np.ndarray:
    """Loss weight map of the U-Net paper, eq. 2.

    ``w(x) = w_c(x) + w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` with ``d1``, ``d2`` the
    Euclidean distances from ``x`` to the nearest and second-nearest cell (0 inside a cell
    for its own distance, so pixels inside a cell that touches another one are weighted
    too). The border term is truncated to 0 where ``d1 + d2`` exceeds
    :func:`border_cutoff` (about 3.72 sigma), i.e. where it is below 1e-3 * w0.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Instance labels, 0 for background, >= 0.
    w0 : float
        Height of the border term (paper: 10).
    sigma : float
        Width of the border term in pixels (paper: about 5), > 0.
    ignore : (Y, X) ndarray of bool, optional
        True where a pixel is not annotated; its weight is exactly 0 and it is not counted
        in the class balance.
    classes : (Y, X) ndarray of int, optional
        Class map to balance (e.g. background / interior / boundary). Defaults to the
        foreground mask ``labels > 0``.
    class_weights : ndarray, optional
        ``w_c`` per class, e.g. balanced over several images together; default: balanced
        over this image's annotated pixels. All ones switches balancing off.

    Returns
    -------
    weights : (Y, X) ndarray of float32
        Non-negative weights; fewer than two cells give ``w_c`` alone.
    """
    labels = check_labels(labels, ndim=2)
    ignore = check_mask(ignore, labels.shape, "ignore")
    if not w0 >= 0:
        raise ValueError(f"w0 must be >= 0, got {w0!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma!r}")
    if classes is None:
        classes = (labels > 0).astype(np.uint8)
    elif np.shape(classes) != labels.shape:
        raise ValueError(f"classes must have the shape of labels {labels.shape}, got {np.shape(classes)}")
    if class_weights is None:
        weights = class_balance_weights(classes, ignore=ignore)
    else:
        weights = np.asarray(class_weights, dtype=np.float32)[np.asarray(classes)]
    nearest, second_nearest = nearest_two_cell_distances(labels, cutoff=border_cutoff(sigma))
    border = w0 * np.exp(-((nearest + second_nearest) ** 2) / (2.0 * sigma**2))
    weights = weights + border.astype(np.float32)
    weights[ignore] = 0.0
    return weights
