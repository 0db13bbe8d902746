"""Instance labels <-> the three-class (background / interior / boundary) representation.

Training turns each cell into an interior surrounded by a one-pixel boundary, so two
touching cells are always divided by boundary pixels. Prediction inverts it: interiors
are the seeds of a watershed that grows them back over the boundary pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
DEFAULT_MIN_SIZE = 15


def check_labels(labels, name: str = "labels") -> np.ndarray:
    """Return ``labels`` as an integer ndarray or raise naming ``name``."""
    array = np.asarray(labels)
    if array.dtype.kind == "b":
        return array.astype(np.uint8)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers (0 = background, k = cell k), got dtype {array.dtype}")
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise ValueError(f"{name} must not be negative (min {array.min()})")
    return array


def labels_to_classes(labels) -> np.ndarray:
    """Instance labels -> uint8 classes: 0 background, 1 interior, 2 boundary.

    Boundary pixels are the cell pixels with a 4-neighbour outside the cell (background or
    another cell).

    Parameters
    ----------
    labels : (Y, X) ndarray of int
    """
    labels = check_labels(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D (Y, X), got shape {labels.shape}")
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    differs = np.zeros(labels.shape, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        differs |= padded[dy:dy + labels.shape[0], dx:dx + labels.shape[1]] != centre
    classes = np.where(labels > 0, INTERIOR, BACKGROUND).astype(np.uint8)
    classes[(labels > 0) & differs] = BOUNDARY
    return classes


def smallest_label_dtype(count: int) -> np.dtype:
    """uint8, uint16 or uint32: the smallest unsigned type holding label ``count``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if count <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def relabel_sequential(labels: np.ndarray, min_size: int = 0) -> np.ndarray:
    """Drop objects smaller than ``min_size`` and number the rest 1..n in the smallest dtype."""
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) > 4 * labels.size:
        # sparse ids (e.g. chunked labels named after centroids): avoid a bincount of max(id)
        ids, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        keep = (sizes >= max(min_size, 1)) & (ids != 0)
        mapping = np.zeros(ids.size, dtype=np.int64)
        mapping[keep] = np.arange(1, int(keep.sum()) + 1)
        return mapping[inverse.reshape(labels.shape)].astype(smallest_label_dtype(int(keep.sum())))
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_size, 1)
    keep[0] = False
    mapping = np.zeros(sizes.size, dtype=np.int64)
    mapping[keep] = np.arange(1, int(keep.sum()) + 1)
    return mapping[labels].astype(smallest_label_dtype(int(keep.sum())))


def probabilities_to_labels(probabilities, *, threshold: float = 0.5, min_size: int = DEFAULT_MIN_SIZE) -> np.ndarray:
    """Class probabilities -> instance labels that separate touching cells.

    Foreground is where background probability < 1 - ``threshold``. Connected interiors
    (interior probability > ``threshold``) seed a watershed on the interior probability,
    restricted to the foreground; foreground blobs without a seed become cells of their own.

    Parameters
    ----------
    probabilities : (3, Y, X) float ndarray
        Background, interior and boundary probabilities.
    threshold : float
        Probability threshold in (0, 1).
    min_size : int
        Objects with fewer pixels are removed.

    Returns
    -------
    (Y, X) ndarray of uint8/uint16/uint32, labelled 1..n
    """
    from skimage.segmentation import watershed

    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 3 or probabilities.shape[0] != 3:
        raise ValueError(f"probabilities must be (3, Y, X) background/interior/boundary, got {probabilities.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if not np.isfinite(probabilities).all():
        raise ValueError("probabilities contain NaN or infinite values")
    foreground = probabilities[BACKGROUND] < 1 - threshold
    seeds, count = ndi.label((probabilities[INTERIOR] > threshold) & foreground)
    if count:
        labels = watershed(-probabilities[INTERIOR], markers=seeds, mask=foreground)
    else:
        labels = np.zeros(foreground.shape, dtype=np.int32)
    orphans, orphan_count = ndi.label(foreground & (labels == 0))
    if orphan_count:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return relabel_sequential(labels, min_size)
