"""Instance labels <-> the three-class (background / interior / boundary) representation.

Training turns each cell into an interior surrounded by a one-pixel boundary, so two
touching cells are always divided by boundary pixels. Prediction inverts it: a watershed
grows one seed per cell (a maximum of the distance to the predicted boundary, or a
connected interior) back over the boundary pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..checks import check_choice, check_labels, check_positive_number
from ..config import SEEDS, Labelling

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
DEFAULT_MIN_SIZE = Labelling.min_size
DEFAULT_SEEDS = "distance"
# seeds from the distance transform are maxima of the distance smoothed by this (pixels)
_DISTANCE_SMOOTHING = 1.0


def labels_to_classes(labels) -> np.ndarray:
    """Instance labels -> uint8 classes: 0 background, 1 interior, 2 boundary.

    Boundary pixels are the cell pixels with a 4-neighbour outside the cell (background or
    another cell): ``skimage.segmentation.find_boundaries`` in "inner" mode.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
    """
    from skimage.segmentation import find_boundaries

    labels = check_labels(labels, ndim=2)
    classes = np.where(labels > 0, INTERIOR, BACKGROUND).astype(np.uint8)
    classes[find_boundaries(labels, connectivity=1, mode="inner") & (labels > 0)] = BOUNDARY
    return classes


def smallest_label_dtype(count: int) -> np.dtype:
    """uint8, uint16 or uint32: the smallest unsigned type holding label ``count``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if count <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


# ids above this are relabelled block by block (a bincount would allocate max(id) counters)
SPARSE_IDS = 2**20


def _object_sizes(labels: np.ndarray, rows: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Ids present and their pixel counts, with no image-sized temporary: a bincount for
    small ids, block-wise ``np.unique`` for few large ones (chunked labels are named after
    their centroids)."""
    if not labels.size or int(labels.max()) <= SPARSE_IDS:
        counts = np.bincount(labels.ravel())
        ids = np.flatnonzero(counts)
        return ids, counts[ids]
    found = [np.unique(labels[start:start + rows], return_counts=True) for start in range(0, labels.shape[0], rows)]
    ids, inverse = np.unique(np.concatenate([f[0] for f in found]), return_inverse=True)
    return ids, np.bincount(inverse, weights=np.concatenate([f[1] for f in found])).astype(np.int64)


def sequential_labels(labels: np.ndarray, min_size: int = 0) -> np.ndarray:
    """Drop objects smaller than ``min_size`` pixels and number the rest 1..n, in the
    smallest unsigned dtype that holds n (``skimage.util.map_array`` does the renumbering)."""
    from skimage.util import map_array

    labels = np.asarray(labels)
    if labels.dtype.kind == "b":
        labels = labels.view(np.uint8)
    ids, sizes = _object_sizes(labels)
    kept = ids[(sizes >= max(min_size, 1)) & (ids != 0)]
    out = np.zeros(labels.shape, dtype=smallest_label_dtype(kept.size))
    if kept.size:
        map_array(labels, kept.astype(labels.dtype), np.arange(1, kept.size + 1, dtype=out.dtype), out=out)
    return out


def probabilities_to_labels(probabilities, *, threshold: float = Labelling.threshold,
                            min_size: int = DEFAULT_MIN_SIZE, seeds: str = DEFAULT_SEEDS,
                            foreground: float | None = None,
                            split_depth: float = Labelling.split_depth, z_step: float | None = None) -> np.ndarray:
    """Class probabilities -> instance labels that separate touching cells.

    Foreground is where the foreground probability (1 - background) > ``foreground``
    (default: ``threshold``); interior is where the interior probability > ``threshold``
    (predicted boundaries cut it between touching cells). A watershed restricted to the
    foreground grows one seed per cell:

    - ``seeds="distance"`` (default): the maxima of the (smoothed) distance to the nearest
      non-interior pixel, each rising at least ``split_depth`` pixels above the saddle to a
      higher one; the flood follows that distance. Touching convex cells whose predicted
      boundary is incomplete are still split at their neck, as a distance watershed would.
    - ``seeds="interior"``: each connected interior is a seed; the flood follows the
      interior probability. Cells are split only where the network predicts a boundary
      all the way across: choose it for long, bent or branched cells (rods, filaments)
      that a neck does not divide.

    Foreground blobs without a seed become cells of their own. Stacks go plane by plane,
    or as one volume when ``z_step`` is given: distances, seeds and the flood are then 3-D,
    so a cell is one object through the planes and two cells touching in z are split at
    their neck as in a plane.

    Parameters
    ----------
    probabilities : (3, Y, X) or (3, Z, Y, X) float ndarray
        Background, interior and boundary probabilities (as from
        :func:`napari_unet.predict_probabilities`).
    threshold : float
        Probability threshold in (0, 1) of the interior (and of the foreground, by default).
    foreground : float, optional
        Foreground probability threshold in (0, 1); a model's calibrated value
        (``model.labelling.foreground``) undoes the too-large cells of class balancing.
    min_size : int
        Objects with fewer pixels are removed.
    seeds : {"distance", "interior"}
        How touching cells are told apart (above).
    split_depth : float
        ``seeds="distance"``: pixels a distance maximum must rise above the neck to a larger
        cell to seed a cell of its own (larger merges more).
    z_step : float, optional
        (3, Z, Y, X) only: label the stack as one volume whose planes are this many pixels
        apart (voxel depth / pixel width). None: each plane on its own.

    Returns
    -------
    (Y, X) or (Z, Y, X) ndarray of uint8/uint16/uint32
        0 is background; each plane 1..n (a volume: 1..n over the stack), in the smallest
        dtype holding the largest n.

    Examples
    --------
    >>> probabilities = np.zeros((3, 8, 8), np.float32)
    >>> probabilities[0] = 1
    >>> probabilities[:, 2:6, 2:6] = np.array([0, 1, 0])[:, None, None]
    >>> probabilities_to_labels(probabilities, min_size=1).max()
    np.uint8(1)
    """
    probabilities = np.asarray(probabilities)
    foreground = threshold if foreground is None else foreground
    _check_labelling(probabilities, threshold, foreground, seeds, split_depth)
    settings = (threshold, min_size, seeds, foreground, split_depth)
    if z_step is not None:
        check_positive_number("z_step", z_step)
        if probabilities.ndim != 4:
            raise ValueError(f"z_step is for (3, Z, Y, X) stacks, got probabilities of shape {probabilities.shape}")
        return _label_region(probabilities, *settings, sampling=(float(z_step), 1.0, 1.0))
    if probabilities.ndim == 3:
        return _label_region(probabilities, *settings)
    return stack_planes([_label_region(probabilities[:, index], *settings) for index in range(probabilities.shape[1])])


def stack_planes(planes: list[np.ndarray]) -> np.ndarray:
    """Per-plane labels (each numbered 1..n) as one (Z, Y, X) array in the widest of their dtypes."""
    dtype = np.result_type(*[plane.dtype for plane in planes])
    return np.stack([plane.astype(dtype, copy=False) for plane in planes])


def _h_maxima_by_object(surface: np.ndarray, height: float) -> np.ndarray:
    """``skimage.morphology.h_maxima`` of a surface that is 0 between objects, object by object.

    The same result as on the whole plane (maxima never reach across zeros), about 3x
    faster: the reconstruction then spends no time on the background.
    """
    from skimage.morphology import h_maxima

    objects, _ = ndi.label(surface > 0)
    maxima = np.zeros(surface.shape, dtype=bool)
    for index, box in enumerate(ndi.find_objects(objects), start=1):
        mine = objects[box] == index
        maxima[box] |= h_maxima(np.where(mine, surface[box], 0), height).astype(bool) & mine
    return maxima


def _check_labelling(probabilities: np.ndarray, threshold: float, foreground: float, seeds: str,
                     split_depth: float) -> None:
    if probabilities.ndim not in (3, 4) or probabilities.shape[0] != 3:
        raise ValueError("probabilities must be (3, Y, X) or (3, Z, Y, X) background/interior/boundary, "
                         f"got shape {probabilities.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if not 0 < foreground < 1:
        raise ValueError(f"foreground must be in (0, 1), got {foreground}")
    check_choice("seeds", seeds, SEEDS)
    check_positive_number("split_depth", split_depth)
    if not np.isfinite(probabilities).all():
        raise ValueError("probabilities contain NaN or infinite values")


def _label_region(probabilities: np.ndarray, threshold: float, min_size: int, seeds: str,
                  foreground_threshold: float, split_depth: float, sampling=None) -> np.ndarray:
    """One plane, or a volume whose axes are ``sampling`` pixels apart."""
    from skimage.segmentation import watershed

    foreground = probabilities[BACKGROUND] < 1 - foreground_threshold
    interior = (probabilities[INTERIOR] > threshold) & foreground
    if seeds == "distance":
        distance = ndi.distance_transform_edt(interior, sampling=sampling).astype(np.float32)
        smoothing = _DISTANCE_SMOOTHING if sampling is None else [_DISTANCE_SMOOTHING / s for s in sampling]
        distance = ndi.gaussian_filter(distance, smoothing)
        markers, count = ndi.label(_h_maxima_by_object(distance, split_depth) & interior)
        surface = -distance
    else:
        markers, count = ndi.label(interior)
        surface = -probabilities[INTERIOR]
    if count:
        labels = watershed(surface, markers=markers, mask=foreground)
    else:
        labels = np.zeros(foreground.shape, dtype=np.int32)
    orphans, orphan_count = ndi.label(foreground & (labels == 0))
    if orphan_count:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return sequential_labels(labels, min_size)


def labels_to_grid(labels: np.ndarray, foreground: np.ndarray, shape: tuple[int, int], factor: float,
                   threshold: float = 0.5) -> np.ndarray:
    """Labels computed on the network's grid (the input rescaled by ``factor``) -> input grid.

    Each input pixel takes the label of the nearest network pixel. Where the network grid
    is coarser (``factor < 1``) outlines are then redrawn at the input's resolution: the
    foreground probability is interpolated to the input grid, thresholded, and every
    foreground pixel takes the label of the nearest cell.

    Parameters
    ----------
    labels : (y, x) ndarray of int
        On the network's grid.
    foreground : (y, x) float ndarray
        Foreground probability (1 - background) on the network's grid.
    shape : (Y, X)
        The input grid.
    factor : float
        Network grid pixels per input pixel.
    """
    from skimage.segmentation import expand_labels

    from .rescale import resample_nearest, resample_window

    grid = resample_nearest(labels, 1 / factor, shape)
    if factor >= 1:
        return grid
    inside = resample_window(foreground, 1 / factor, slice(0, shape[0]), slice(0, shape[1])) > threshold
    grown = expand_labels(np.where(inside, grid, 0), distance=int(np.ceil(1 / factor)))
    return np.where(inside, grown, 0).astype(labels.dtype, copy=False)


def stitch_planes(planes: list[np.ndarray], *, min_overlap: float = 0.5) -> np.ndarray:
    """Per-plane labels of a Z stack -> 3-D objects whose ids follow each cell through the planes.

    Cells of neighbouring planes are the same object when they overlap by at least
    ``min_overlap`` of the smaller one and each is the other's largest overlap (so a cell
    is never linked to two in the next plane). Linked cells share one id; ids are then
    numbered 1..n over the stack. The overlap is measured in pixels of the planes, so it
    does not depend on the z step: a coarse z step only makes consecutive outlines differ
    more, which the fraction of the smaller cell tolerates.

    Parameters
    ----------
    planes : list of (Y, X) ndarray of int
        Labels of consecutive planes, each numbered on its own (0 = background).
    min_overlap : float
        Fraction of the smaller of two cells that must overlap the other, in (0, 1].

    Returns
    -------
    (Z, Y, X) ndarray of uint8/uint16/uint32
    """
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap!r}")
    offsets = np.cumsum([0] + [int(np.asarray(p).max()) for p in planes[:-1]])
    stack = np.stack([np.where(p > 0, p.astype(np.int64) + o, 0) for p, o in zip(planes, offsets)])
    parent = np.arange(int(stack.max()) + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for upper, lower in zip(stack[:-1], stack[1:]):
        for a, b in _linked_pairs(upper, lower, min_overlap):
            parent[root(a)] = root(b)
    roots = np.array([root(i) for i in range(parent.size)])
    return sequential_labels(roots[stack])


def _linked_pairs(upper: np.ndarray, lower: np.ndarray, min_overlap: float) -> list[tuple[int, int]]:
    """(a, b) pairs of cells of two planes that overlap enough and are each other's best match."""
    both = (upper > 0) & (lower > 0)
    if not both.any():
        return []
    pairs, counts = np.unique(np.stack([upper[both], lower[both]]), axis=1, return_counts=True)
    area_upper = dict(zip(*np.unique(upper[upper > 0], return_counts=True)))
    area_lower = dict(zip(*np.unique(lower[lower > 0], return_counts=True)))
    best_upper, best_lower = {}, {}
    for (a, b), count in zip(pairs.T, counts):
        if count > best_upper.get(a, (0, 0))[1]:
            best_upper[a] = (b, count)
        if count > best_lower.get(b, (0, 0))[1]:
            best_lower[b] = (a, count)
    return [(int(a), int(b)) for a, (b, count) in best_upper.items()
            if best_lower[b][0] == a and count >= min_overlap * min(area_upper[a], area_lower[b])]
