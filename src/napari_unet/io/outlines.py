"""Cell outlines as polygons: ImageJ/Fiji ROI sets and plain-text outlines.

Each object's outline is the longest contour of its mask at the half level
(``skimage.measure.find_contours``), so it runs along the pixel edges' midpoints and
encloses the object's pixel centres. Stacks give one outline per object and plane.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def outlines(labels: np.ndarray) -> list[tuple[int, int | None, np.ndarray]]:
    """``(label, plane or None, (n, 2) array of (x, y))`` for every object (and plane).

    Parameters
    ----------
    labels : (Y, X) or (Z, Y, X) ndarray of int
    """
    from scipy import ndimage
    from skimage.measure import find_contours

    labels = np.asarray(labels)
    planes = [(None, labels)] if labels.ndim == 2 else list(enumerate(labels))
    found = []
    for plane, image in planes:
        for index, box in enumerate(ndimage.find_objects(image), start=1):
            if box is None:
                continue
            mask = np.pad(image[box] == index, 1)
            contour = max(find_contours(mask.astype(np.float32), 0.5), key=len)
            top, left = box[0].start - 1, box[1].start - 1
            found.append((index, plane, np.column_stack([contour[:, 1] + left, contour[:, 0] + top])))
    return found


def write_imagej_rois(path, labels: np.ndarray) -> Path:
    """An ImageJ ROI set (``.zip``) with one polygon per object (per plane of a stack),
    named after the label, that Fiji's ROI Manager opens (File > Open)."""
    from roifile import ImagejRoi, roiwrite

    from .atomic import atomic_write

    rois = [ImagejRoi.frompoints(points, name=f"cell {label}" + ("" if plane is None else f" z{plane + 1}"),
                                 position=plane)  # 0-based here; ImageJ shows plane + 1
            for label, plane, points in outlines(labels)]

    def write(temporary: str) -> None:
        Path(temporary).unlink()  # roiwrite appends to an existing zip
        roiwrite(temporary, rois, mode="w")

    return atomic_write(Path(path), write)


def write_outline_text(path, labels: np.ndarray) -> Path:
    """One line per outline: ``label[,plane]: x1,y1,x2,y2,...`` in pixels (x = column)."""
    from .atomic import atomic_write

    lines = []
    for label, plane, points in outlines(labels):
        prefix = f"{label}" if plane is None else f"{label},{plane}"
        lines.append(prefix + ": " + ",".join(f"{value:.1f}" for value in points.ravel()))
    return atomic_write(Path(path), lambda temporary: Path(temporary).write_text("\n".join(lines) + "\n"))
