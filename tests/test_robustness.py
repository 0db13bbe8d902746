"""Property tests over shapes and dtypes, bad inputs, and a save killed mid-write."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import napari_unet as nu
from napari_unet.inference.appearance import Appearance, intensity_range
from napari_unet.checks import check_labels
from napari_unet.inference.labels import sequential_labels, smallest_label_dtype
from napari_unet.training.weightmap import border_weight_map

DTYPES = [np.bool_, np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.float16, np.float32, np.float64]
_MODEL = nu.create_model("unet", depth=2, base_channels=8)
_MODEL.network.eval()


@st.composite
def images(draw, max_side=40):
    dtype = draw(st.sampled_from(DTYPES))
    shape = (draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    if dtype == np.bool_:
        elements = st.booleans()
    elif np.dtype(dtype).kind == "f":
        elements = st.floats(-1e4, 1e4, width=np.dtype(dtype).itemsize * 8)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    return draw(arrays(dtype, shape, elements=elements))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(), tile=st.sampled_from([4, 8, 12, 32]))
def test_tiled_equals_untiled_for_any_shape_and_dtype(image, tile):
    untiled = nu.predict_probabilities(image, _MODEL, tile_size=64, device="cpu")
    tiled = nu.predict_probabilities(image, _MODEL, tile_size=tile, device="cpu")
    assert tiled.shape == (3,) + image.shape and np.isfinite(tiled).all()
    np.testing.assert_allclose(tiled, untiled, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(image=images(max_side=60))
def test_normalisation_is_finite_and_independent_of_the_window(image):
    appearance = Appearance(colour=image.ndim == 3, inverted=False)
    scale = intensity_range(image, appearance, _MODEL.normalization, 1)
    whole = scale.apply(image.astype(np.float32))
    assert np.isfinite(whole).all()
    half = scale.apply(image[: max(1, image.shape[0] // 2)].astype(np.float32))
    np.testing.assert_array_equal(half, whole[: half.shape[0]])


@settings(max_examples=40, deadline=None)
@given(labels=arrays(np.uint16, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.integers(0, 6)))
def test_weight_maps_are_finite_and_at_least_the_class_weight(labels):
    weights = border_weight_map(labels)
    assert weights.shape == labels.shape and weights.dtype == np.float32
    assert np.isfinite(weights).all() and (weights > 0).all()


@pytest.mark.parametrize("image, error, message", [
    (np.zeros((2, 3, 16, 16, 1)), ValueError, "axes cannot be guessed: pass axes="),
    (np.zeros((2, 2, 2, 16, 16)), ValueError, "axes cannot be guessed: pass axes="),
    (np.zeros((0, 16)), ValueError, "empty"),
    (np.array([["a", "b"]]), TypeError, "dtype must be bool, integer or float"),
    (np.full((16, 16), np.nan), ValueError, "no finite pixel"),
    (np.full((16, 16), np.inf), ValueError, "no finite pixel"),
    ("not an image", TypeError, "must be an array"),
])
def test_unusable_images_are_refused_with_the_reason(image, error, message):
    with pytest.raises(error, match=message):
        nu.segment(image, _MODEL, device="cpu")


def test_channels_first_is_read_as_channels_unless_said_otherwise(rng):
    channels_first = rng.random((3, 24, 24)).astype(np.float32)
    assert nu.segment(channels_first, _MODEL, device="cpu").shape == (24, 24)  # C, Y, X: one channel
    assert nu.segment(channels_first, _MODEL, device="cpu", axes="ZYX").shape == (3, 24, 24)
    channels_last = np.moveaxis(channels_first, 0, -1)
    assert nu.segment(channels_last, _MODEL, device="cpu").shape == (24, 24)  # RGB
    with pytest.raises(ValueError, match="axes 'YX' name 2 axes, the image has 3"):
        nu.segment(channels_first, _MODEL, device="cpu", axes="YX")
    with pytest.raises(ValueError, match="channel 5 does not exist: the image has 3 channel"):
        nu.segment(channels_first, _MODEL, device="cpu", channel=5)


@pytest.mark.parametrize("labels, message", [
    (np.array([[0.5, 1.0]]), "must hold integers"),
    (np.array([[-1, 2]]), "must not be negative"),
])
def test_float_or_negative_labels_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels)


def test_more_than_65535_objects_get_a_wider_dtype():
    labels = np.arange(70_000, dtype=np.int64).reshape(280, 250) + 1
    relabelled = sequential_labels(labels)
    assert relabelled.dtype == np.uint32 and relabelled.max() == 70_000
    assert smallest_label_dtype(255) == np.uint8 and smallest_label_dtype(256) == np.uint16


_SAVER = textwrap.dedent("""
    import sys, napari_unet as nu
    model = nu.create_model("unet", depth=4, base_channels=32)
    print("ready", flush=True)
    while True:
        nu.save_model(model, sys.argv[1])
""")


def test_a_save_killed_mid_write_leaves_a_complete_file(tiny_model, tmp_path):
    path = tmp_path / "model.safetensors"
    nu.save_model(tiny_model, path)
    process = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        # kill (no clean-up possible) while a temporary file is being written
        deadline = time.monotonic() + 60
        while not any(name.endswith(".tmp") for name in os.listdir(tmp_path)):
            assert time.monotonic() < deadline, "the saver never started writing"
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    # under the final name there is always a complete model: the old one or a new one
    loaded = nu.load_model(path, device="cpu")
    assert loaded.config.depth in (2, 4)


def _traced_after(run) -> int:
    """Bytes (numpy and Python) still allocated after ``run()`` returns and a collection."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    run()
    gc.collect()
    remaining = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    return remaining


def test_cancelled_prediction_frees_its_buffers(tiny_model, rng):
    image = rng.random((600, 1200)).astype(np.float32)

    def cancel_after_one_tile():  # the first tile's probabilities alone are 4.3 MB
        tiles = nu.predict_tiles(image, tiny_model, tile_size=600, device="cpu")
        next(tiles)
        tiles.close()

    cancel_after_one_tile()  # first use imports modules and fills one-time caches
    assert _traced_after(cancel_after_one_tile) < 2 * 2**20


def test_cancelled_training_frees_its_buffers(tiny_model):
    from napari_unet.config import TrainConfig
    from napari_unet.synth import SynthConfig, synth_dataset

    (image, labels), = synth_dataset(1, seed=0, config=SynthConfig(shape=(768, 768)))

    def cancel_after_two_steps():
        events = nu.iter_finetune(tiny_model, image, labels,
                                  config=TrainConfig(iterations=50, batch_size=2, patch_size=32, device="cpu"))
        next(events)
        next(events)
        events.close()

    cancel_after_two_steps()  # first use imports modules and fills one-time caches
    assert _traced_after(cancel_after_two_steps) < 2 * 2**20  # its image, weights, labels: 2.4 MB each
