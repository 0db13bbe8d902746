"""Several channels in, end to end: whole cells from a cell stain plus a nuclear stain."""

import numpy as np
import pytest

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.events import ImageRead
from napari_unet.inference.appearance import Appearance, model_channels
from napari_unet.synth import SynthConfig, synth_image

CONFIG = TrainConfig(iterations=3, batch_size=2, patch_size=32, device="cpu")


@pytest.fixture(scope="module")
def cells():
    config = SynthConfig.for_style("membrane", shape=(96, 96), nuclear_channel=True)
    return synth_image(np.random.default_rng(4), config)


def test_the_whole_cell_style_has_a_nuclear_channel(cells):
    image, labels = cells
    assert image.shape == (96, 96, 2) and labels.max() > 3
    membrane, nuclei = image[..., 0], image[..., 1]
    centres = [np.argwhere(labels == k).mean(0).round().astype(int) for k in range(1, labels.max() + 1)]
    assert np.mean([nuclei[tuple(c)] for c in centres]) > 3 * np.median(nuclei[labels == 0])
    assert np.median(membrane[labels > 0]) > np.median(membrane[labels == 0])
    with pytest.raises(ValueError, match="nuclear_channel needs"):
        SynthConfig(nuclear_channel=True, modality="stained")


def test_channels_go_to_the_first_model_inputs():
    block = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 2.0)], axis=-1)
    out = model_channels(block, Appearance(colour=True, inverted=False), 3)
    assert out.shape == (3, 2, 2) and out[:, 0, 0].tolist() == [1.0, 2.0, 0.0]
    with pytest.raises(ValueError, match="reads 2 channels; the image gives 3"):
        model_channels(np.zeros((2, 2, 3)), Appearance(colour=True, inverted=False), 2)


def test_a_model_fine_tuned_on_two_channels_reads_both_from_then_on(cells, tmp_path):
    image, labels = cells
    start = nu.create_model("unet", depth=2, base_channels=8, in_channels=3)
    tuned = nu.finetune(start, image, labels, config=CONFIG)
    assert tuned.channel_names == ("channel 0", "channel 1") and start.channel_names is None
    loaded = nu.load_model(nu.save_model(tuned, tmp_path / "cells.safetensors"), device="cpu")
    assert loaded.channel_names == ("channel 0", "channel 1")
    channels_first = np.moveaxis(image, -1, 0)
    read = next(e for e in nu.iter_segment(channels_first, loaded, device="cpu") if isinstance(e, ImageRead))
    assert read.axes == "CYX" and read.channel == (0, 1)
    np.testing.assert_array_equal(nu.segment(channels_first, loaded, device="cpu", precision="fp32"),
                                  nu.segment(image, loaded, device="cpu", precision="fp32"))
    swapped = nu.segment(channels_first, loaded, device="cpu", precision="fp32", channel=(1, 0))
    assert swapped.shape == labels.shape
    with pytest.raises(ValueError, match="reads 2 channels .* has none to give"):
        nu.segment(image[..., 0], loaded, device="cpu")


def test_training_images_must_agree_on_their_channels(cells):
    image, labels = cells
    start = nu.create_model("unet", depth=2, base_channels=8, in_channels=3)
    with pytest.raises(ValueError, match=r"different numbers of channels \(\[1, 2\]\)"):
        nu.finetune(start, [image, image[..., 0]], [labels, labels], config=CONFIG)
    one = nu.create_model("unet", depth=2, base_channels=8, in_channels=1)
    with pytest.raises(ValueError, match="have 2 channels; model 'unet' reads 1"):
        nu.finetune(one, image, labels, config=CONFIG)
