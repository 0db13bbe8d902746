"""Modality handling: polarity detection on synthetic fluorescence, brightfield and stained
images, and the conversion to the model's bright-on-dark input."""

import numpy as np
import pytest

from napari_unet.inference.appearance import Appearance, bright_background, detect_appearance, model_channels
from napari_unet.synth import SynthConfig, synth_image


def render(modality, seed=0):
    return synth_image(np.random.default_rng(seed), SynthConfig(shape=(128, 128), modality=modality))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("modality, colour, inverted, name", [
    ("fluorescence", False, False, "fluorescence"),
    ("brightfield", False, True, "brightfield"),
    ("stained", True, True, "stained"),
    ("fluorescence-colour", True, False, "fluorescence (colour)"),
])
def test_polarity_is_detected_for_each_modality(modality, colour, inverted, name, seed):
    image, _ = render(modality, seed)
    appearance = detect_appearance(image, colour=image.ndim == 3)
    assert (appearance.colour, appearance.inverted, appearance.modality) == (colour, inverted, name)


@pytest.mark.parametrize("modality", ["fluorescence", "brightfield", "stained"])
def test_model_input_shows_nuclei_brighter_than_background(modality):
    image, labels = render(modality, seed=3)
    appearance = detect_appearance(image, colour=image.ndim == 3)
    pixels = model_channels(image, appearance, 3)
    assert pixels.shape == (3,) + labels.shape and pixels.dtype == np.float32
    grey = pixels.mean(0)
    assert np.median(grey[labels > 0]) > np.median(grey[labels == 0])


@pytest.mark.parametrize("invert", [True, False])
def test_the_override_wins(invert):
    image, _ = render("fluorescence")
    assert detect_appearance(image, colour=False, invert=invert).inverted is invert


def test_invert_must_be_a_bool_or_none():
    with pytest.raises(ValueError, match="invert must be True, False or None"):
        detect_appearance(np.zeros((8, 8)), colour=False, invert="yes")


def test_grey_is_replicated_and_colour_averaged_for_the_model():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    replicated = model_channels(grey, Appearance(colour=False, inverted=False), 3)
    assert all(np.array_equal(channel, grey) for channel in replicated)
    rgb = np.stack([grey, 2 * grey, 3 * grey], axis=-1).astype(np.float32)
    averaged = model_channels(rgb, Appearance(colour=True, inverted=True), 1)
    np.testing.assert_allclose(averaged[0], -2.0 * grey)


def test_the_callers_pixels_are_never_changed():
    image = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    before = image.copy()
    for inverted in (False, True):
        out = model_channels(image, Appearance(colour=False, inverted=inverted), 1)
        out += 5
    np.testing.assert_array_equal(image, before)


def test_unsupported_channel_counts_are_refused():
    with pytest.raises(ValueError, match="reads 2 channels"):
        model_channels(np.zeros((4, 4)), Appearance(colour=False, inverted=False), 2)


def test_constant_or_empty_images_count_as_dark_background():
    assert bright_background(np.full((16, 16), 7.0), colour=False) is False
    assert bright_background(np.full((16, 16), np.nan), colour=False) is False
