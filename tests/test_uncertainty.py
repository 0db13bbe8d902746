"""Where to annotate next: flipped predictions disagree where the model is unsure."""

import numpy as np
import pytest

import napari_unet as nu
from napari_unet.inference.uncertainty import rank_regions


def test_regions_are_the_most_uncertain_windows_and_do_not_overlap():
    disagreement = np.zeros((100, 120), np.float32)
    disagreement[60:80, 90:110] = 1.0
    disagreement[5:15, 5:15] = 0.5
    regions = rank_regions(disagreement, window=30, count=3)
    (y0, y1, x0, x1, score), second = regions[0], regions[1]
    assert y0 <= 60 and y1 >= 80 and x0 <= 90 and x1 >= 110 and score == pytest.approx(400 / 900)
    assert second[0] < 30 and second[2] < 30  # the weaker spot comes next
    for a, b in [(regions[0], regions[1]), (regions[0], regions[2]), (regions[1], regions[2])]:
        assert a[0] >= b[1] or a[1] <= b[0] or a[2] >= b[3] or a[3] <= b[2]


def test_the_disagreement_of_a_plane_and_its_regions(tiny_model, rng):
    from napari_unet.sample_data import sample_nuclei

    image = sample_nuclei()[0][:256, :256]
    result = nu.uncertainty(image, tiny_model, device="cpu", count=2)
    assert result.disagreement.shape == image.shape and result.disagreement.dtype == np.float32
    assert 0 <= result.disagreement.min() and result.disagreement.max() <= 1
    assert len(result.regions) == 2 and result.window == 120  # 6 cells of 20 px (no working diameter)
    constant = nu.uncertainty(np.full((64, 64), 5.0, np.float32), tiny_model, device="cpu")
    assert constant.disagreement.max() < 1e-5  # nothing to disagree about
    with pytest.raises(ValueError, match="give one plane"):
        nu.uncertainty(np.zeros((6, 32, 32), np.float32), tiny_model, device="cpu")
