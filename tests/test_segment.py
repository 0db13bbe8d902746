"""Prediction API: every input kind, normalisation, bad inputs, progress and OOM handling."""

import dask.array as da
import numpy as np
import pytest
import torch

import napari_unet as nu
from napari_unet import predict_tiles

DTYPES = [np.bool_, np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.int64,
          np.float16, np.float32, np.float64]


def _blobs(shape=(40, 52), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.zeros(shape)
    for _ in range(6):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20)
    return image


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_dtype_gives_finite_probabilities(dtype, tiny_model):
    image = _blobs()
    if np.dtype(dtype).kind == "b":
        image = image > 0.5
    elif np.dtype(dtype).kind in "iu":
        image = (image * 100).astype(dtype)
    else:
        image = image.astype(dtype)
    probabilities = nu.predict_probabilities(image, tiny_model, device="cpu")
    assert probabilities.shape == (3,) + image.shape and probabilities.dtype == np.float32
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(0), 1, atol=1e-5)


def test_normalisation_ignores_affine_intensity_changes(tiny_model):
    image = _blobs().astype(np.float32)
    reference = nu.predict_probabilities(image, tiny_model, device="cpu", tile_size=8, precision="fp32")
    rescaled = nu.predict_probabilities(image * 300 + 1000, tiny_model, device="cpu", tile_size=32, precision="fp32")
    np.testing.assert_allclose(rescaled, reference, atol=1e-4)


def test_stack_is_predicted_plane_by_plane(tiny_model):
    stack = np.stack([_blobs(seed=s) for s in range(3)]).astype(np.float32)
    stack[1] *= 50  # each plane is normalised on its own
    probabilities = nu.predict_probabilities(stack, tiny_model, device="cpu", axes="ZYX")
    assert probabilities.shape == (3, 3, 40, 52)
    for index in range(3):
        single = nu.predict_probabilities(stack[index], tiny_model, device="cpu")
        np.testing.assert_allclose(probabilities[:, index], single, atol=1e-5)
    labels = nu.segment(stack, tiny_model, device="cpu", axes="ZYX")
    assert labels.shape == stack.shape


def test_a_short_first_axis_is_read_as_channels_never_silently_as_planes(tiny_model):
    from napari_unet.events import ImageRead

    stack = np.stack([_blobs(seed=s) for s in range(3)]).astype(np.float32)
    events = list(nu.iter_segment(stack, tiny_model, device="cpu"))
    read = next(e for e in events if isinstance(e, ImageRead))
    assert read.axes == "CYX" and read.channel in (0, 1, 2)
    assert events[-1].labels.shape == (40, 52)
    chosen = nu.segment(stack, tiny_model, device="cpu", channel=2)
    np.testing.assert_array_equal(chosen, nu.segment(stack[2], tiny_model, device="cpu"))


def test_rgb_is_read_as_grey_for_a_one_channel_model(tiny_model):
    grey = _blobs().astype(np.float32)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgba = np.concatenate([rgb, np.ones_like(grey)[..., None]], axis=-1)
    expected = nu.predict_probabilities(grey, tiny_model, device="cpu")
    for colour in (rgb, rgba):
        np.testing.assert_allclose(nu.predict_probabilities(colour, tiny_model, device="cpu"), expected, atol=1e-5)
    assert nu.segment(rgb, tiny_model, device="cpu").shape == grey.shape


def test_stack_of_three_wide_planes_with_axes(tiny_model):
    stack = np.random.default_rng(0).normal(size=(4, 20, 3)).astype(np.float32)
    assert nu.predict_probabilities(stack, tiny_model, device="cpu", axes="ZYX").shape == (3, 4, 20, 3)


def test_dask_input_matches_numpy(tiny_model):
    image = _blobs((70, 50)).astype(np.float32)
    lazy = da.from_array(image, chunks=(16, 16))
    np.testing.assert_allclose(
        nu.predict_probabilities(lazy, tiny_model, device="cpu", tile_size=16),
        nu.predict_probabilities(image, tiny_model, device="cpu"), atol=1e-5)


def test_constant_image_gives_no_nan_and_no_cells(tiny_model):
    probabilities = nu.predict_probabilities(np.full((30, 30), 7, np.uint16), tiny_model, device="cpu")
    assert np.isfinite(probabilities).all()
    labels = nu.segment(np.full((30, 30), 7, np.uint16), tiny_model, device="cpu")
    assert labels.dtype == np.uint8


def test_nan_pixels_are_treated_as_background_level(tiny_model):
    image = _blobs().astype(np.float32)
    image[5:9, 5:9] = np.nan
    image[20, 20] = np.inf
    probabilities = nu.predict_probabilities(image, tiny_model, device="cpu")
    assert np.isfinite(probabilities).all()


@pytest.mark.parametrize("image, error, message", [
    (np.zeros((6, 6, 10, 10)), ValueError, "axes cannot be guessed: pass axes="),
    (np.zeros((2, 2, 3, 10, 10)), ValueError, "axes cannot be guessed: pass axes="),
    (np.zeros(10), ValueError, "is not \\(Y, X\\)"),
    (np.zeros((0, 10)), ValueError, "empty"),
    (np.zeros((10, 10), dtype=complex), TypeError, "dtype"),
    (np.array([["a", "b"]]), TypeError, "dtype"),
    ([[1, 2], [3, 4]], TypeError, "array"),
    (np.full((10, 10), np.nan), ValueError, "no finite pixel"),
])
def test_bad_images_are_refused_clearly(image, error, message, tiny_model):
    with pytest.raises(error, match=message):
        nu.predict_probabilities(image, tiny_model, device="cpu")


@pytest.mark.parametrize("options, message", [
    (dict(tile_size=0), "tile_size"),
    (dict(tile_size=2.5), "tile_size"),
    (dict(batch_size=-1), "batch_size"),
    (dict(precision="fp8"), "precision"),
    (dict(device="tpu"), "device"),
    (dict(prune_level=3), "prune_level"),
    (dict(flips="yes"), "flips must be True or False, got 'yes'"),
])
def test_bad_options_are_refused(options, message, tiny_model):
    with pytest.raises(ValueError, match=message):
        nu.predict_probabilities(np.zeros((16, 16)), tiny_model, **{"device": "cpu", **options})


@pytest.mark.parametrize("options, message", [
    (dict(threshold=1.5), "threshold must be in \\(0, 1\\) or None, got 1.5"),
    (dict(foreground=0), "foreground must be in \\(0, 1\\) or None, got 0"),
    (dict(split_depth=-1), "split_depth must be a positive number or None, got -1"),
    (dict(split_depth=0), "split_depth must be a positive number or None, got 0"),
    (dict(min_size=-2), "min_size must be an integer >= 0"),
])
def test_bad_labelling_options_are_refused(options, message, tiny_model):
    with pytest.raises(ValueError, match=message):
        nu.segment(np.zeros((16, 16)), tiny_model, **{"device": "cpu", **options})


def test_bad_calibrated_labelling_is_refused():
    from napari_unet.config import Labelling

    with pytest.raises(ValueError, match="threshold must be in \\(0, 1\\), got 1"):
        Labelling(threshold=1)
    with pytest.raises(ValueError, match="split_depth must be a positive number"):
        Labelling(split_depth=float("nan"))


def test_rgb_for_multichannel_mismatch_is_refused():
    model = nu.create_model("unet", depth=2, base_channels=8, in_channels=2)
    with pytest.raises(ValueError, match="reads 2 channels"):
        nu.predict_probabilities(np.zeros((16, 16)), model, device="cpu")


def test_generator_yields_every_tile_and_progress_counts(tiny_model):
    image = _blobs((40, 52))
    events = list(predict_tiles(image, tiny_model, tile_size=16, device="cpu", batch_size=2))
    assert [e.done for e in events] == list(range(1, 13)) and events[-1].total == 12
    cover = np.zeros(image.shape, int)
    for event in events:
        cover[event.tile.y, event.tile.x] += 1
        assert event.probabilities.shape[1:] == cover[event.tile.y, event.tile.x].shape
    assert (cover == 1).all()
    seen = []
    nu.predict_probabilities(image, tiny_model, tile_size=16, device="cpu", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (12, 12) and len(seen) == 12


def test_out_of_memory_halves_the_batch_and_continues(tiny_model, monkeypatch):
    image = _blobs((40, 52))
    expected = nu.predict_probabilities(image, tiny_model, tile_size=16, device="cpu", batch_size=4)
    forward = tiny_model.network.forward
    batches = []

    def flaky(x, level=None):
        batches.append(x.shape[0])
        if x.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return forward(x, level)

    monkeypatch.setattr(tiny_model.network, "forward", flaky)
    with pytest.warns(RuntimeWarning, match="batch size 2"):
        result = nu.predict_probabilities(image, tiny_model, tile_size=16, device="cpu", batch_size=4)
    np.testing.assert_allclose(result, expected, atol=1e-5)
    assert batches[:3] == [4, 2, 1]


def test_out_of_memory_with_one_tile_on_cpu_is_a_clear_error(tiny_model, monkeypatch):
    def always(x, level=None):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 1 GB; out of memory")

    monkeypatch.setattr(tiny_model.network, "forward", always)
    with pytest.raises(MemoryError, match="smaller tile_size"):
        nu.predict_probabilities(np.zeros((16, 16)), tiny_model, device="cpu", batch_size=1)


def test_model_given_as_file_path(tiny_model, tiny_model_file):
    image = _blobs()
    np.testing.assert_allclose(nu.predict_probabilities(image, str(tiny_model_file), device="cpu"),
                               nu.predict_probabilities(image, tiny_model, device="cpu"), atol=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_stays_close(precision, tiny_model):
    image = _blobs()
    reference = nu.predict_probabilities(image, tiny_model, device="cpu")
    reduced = nu.predict_probabilities(image, tiny_model, device="cpu", precision=precision)
    assert np.abs(reduced - reference).max() < 0.05


def test_tile_and_batch_follow_the_free_memory(tiny_model, monkeypatch, rng):
    import torch

    from napari_unet.inference import runner as predict
    from napari_unet.inference.runner import automatic_tiling, tile_memory_bytes

    network, cpu, cuda = tiny_model.network, torch.device("cpu"), torch.device("cuda")
    assert automatic_tiling(network, cpu, "fp32", None) == (512, 1)  # unknown: fixed defaults
    plenty = 100 * tile_memory_bytes(network, 1024, "fp32")
    assert automatic_tiling(network, cuda, "fp32", plenty) == (1024, predict.MAX_BATCH["cuda"])
    tight = 3 * tile_memory_bytes(network, 128, "fp32")
    tile, batch = automatic_tiling(network, cpu, "fp32", tight)
    assert tile == 128 and batch == 1
    assert tile_memory_bytes(network, tile, "fp32") <= predict.MEMORY_SHARE * tight
    # predict_tiles uses them when the caller does not choose; the result does not change
    image = rng.random((300, 300)).astype(np.float32)
    expected = nu.predict_probabilities(image, tiny_model, tile_size=512, device="cpu")
    monkeypatch.setattr(predict, "free_memory_bytes", lambda device: tight)
    events = list(nu.predict_tiles(image, tiny_model, device="cpu"))
    # tiles of at most 128 px, split evenly over the 300 px: three of 100
    assert {event.tile.y.stop - event.tile.y.start for event in events} == {100}
    np.testing.assert_allclose(nu.predict_probabilities(image, tiny_model, device="cpu"), expected, atol=1e-5)
