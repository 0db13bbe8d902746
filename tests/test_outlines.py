"""Outlines as ImageJ ROI sets and text: each object's polygon encloses exactly its pixels."""

import numpy as np
import pytest
from skimage.draw import polygon as fill_polygon

from napari_unet.io import outlines, write_imagej_rois, write_outline_text


def _cells():
    labels = np.zeros((40, 50), np.uint16)
    yy, xx = np.indices(labels.shape)
    labels[(yy - 12) ** 2 + (xx - 14) ** 2 <= 36] = 1
    labels[20:34, 25:45] = 7
    labels[20:25, 5:10] = 3
    return labels


def test_each_polygon_fills_back_to_its_object():
    labels = _cells()
    found = outlines(labels)
    assert sorted(label for label, _, _ in found) == [1, 3, 7]
    for label, plane, points in found:
        assert plane is None
        rows, cols = fill_polygon(points[:, 1], points[:, 0], labels.shape)
        filled = np.zeros(labels.shape, bool)
        filled[rows, cols] = True
        assert (filled == (labels == label)).mean() > 0.99


def test_imagej_roi_set_round_trips(tmp_path):
    from roifile import roiread

    labels = np.stack([_cells(), np.where(_cells() == 7, 7, 0)])
    path = write_imagej_rois(tmp_path / "cells_rois.zip", labels)
    rois = roiread(path)
    assert len(rois) == 4  # three cells on plane 1, one on plane 2
    assert sorted(roi.position for roi in rois) == [1, 1, 1, 2]
    assert {roi.name for roi in rois} >= {"cell 7 z1", "cell 7 z2"}
    square = next(roi for roi in rois if roi.name == "cell 7 z1").coordinates()
    assert square[:, 0].min() == pytest.approx(24.5) and square[:, 0].max() == pytest.approx(44.5)


def test_outline_text_has_one_line_per_outline(tmp_path):
    path = write_outline_text(tmp_path / "cells_outlines.txt", _cells())
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["1", "3", "7"]
    values = np.array(lines[2].split(": ")[1].split(","), float).reshape(-1, 2)
    assert values[:, 0].min() == pytest.approx(24.5) and values[:, 1].max() == pytest.approx(33.5)
