"""Deterministic outputs that a refactoring must not change, bit for bit.

``tests/data/nuclei-synthetic-v1.safetensors`` is the synthetic-only ``nuclei`` model that
shipped before the real-data one; its labels on the bundled sample (fp32, default options)
were recorded in ``sample_labels_nuclei-synthetic-v1.tif`` before the core was restructured.
"""

from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_unet as nu
from napari_unet.sample_data import sample_nuclei

DATA = Path(__file__).parent / "data"
MODEL = DATA / "nuclei-synthetic-v1.safetensors"


@pytest.fixture(scope="module")
def pinned_model():
    return nu.load_model(MODEL, device="cpu")


def test_labels_of_the_pinned_model_on_the_sample_are_unchanged(pinned_model):
    image, _ = sample_nuclei()
    expected = tifffile.imread(DATA / "sample_labels_nuclei-synthetic-v1.tif")
    labels = nu.segment(image, pinned_model, precision="fp32")
    assert labels.dtype == expected.dtype
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("tile_size", [32, 96, 200])
def test_tiled_prediction_equals_untiled_bit_for_bit(pinned_model, tile_size):
    image, _ = sample_nuclei()
    whole = nu.predict_probabilities(image, pinned_model, tile_size=512, precision="fp32")
    tiled = nu.predict_probabilities(image, pinned_model, tile_size=tile_size, precision="fp32")
    np.testing.assert_array_equal(tiled, whole)
