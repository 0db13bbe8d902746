"""Very noisy images are smoothed before the network (PredictConfig.denoise): only when the
noise says so, by the same result whatever the window read (tiled == untiled, lazy ==
eager), across the planes of a Z stack by the z step, and off on request."""

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

import napari_unet as nu
from napari_unet.cli import main
from napari_unet.inference.denoise import MAX_SIGMA, NOISE_FREE, TRUNCATE, SmoothedPlane, choose_sigma, noise_ratio
from napari_unet.inference.layout import describe_image
from napari_unet.inference.reading import read_for_model
from napari_unet.synth import SynthConfig, synth_image


@pytest.fixture(scope="module")
def clean_and_noisy():
    image, labels = synth_image(np.random.default_rng(3), SynthConfig(shape=(96, 96)))
    image = image.astype(np.float32)
    spread = np.percentile(image, 99.8) - np.percentile(image, 1)
    noisy = image + np.random.default_rng(4).normal(0, 0.15 * spread, image.shape).astype(np.float32)
    return image, noisy, labels


def test_the_noise_ratio_tells_a_noisy_image_from_a_clean_one(clean_and_noisy):
    clean, noisy, _ = clean_and_noisy
    assert noise_ratio(clean) < NOISE_FREE < noise_ratio(noisy)
    assert choose_sigma(noise_ratio(clean)) == 0.0
    assert MAX_SIGMA == choose_sigma(1.0) > choose_sigma(0.1) > choose_sigma(NOISE_FREE + 1e-3) > 1.0
    assert noise_ratio(np.full((20, 20), 7.0)) == 0.0


@pytest.mark.parametrize("shape, axes, index, sigmas", [
    ((70, 90), "YX", 0, (1.7, 0.0)),
    ((9, 70, 90), "ZYX", 4, (1.7, 0.8)),
    ((9, 70, 90), "ZYX", 0, (2.5, 1.2)),
    ((5, 40, 50, 3), "ZYXC", 2, (1.2, 0.7)),
])
def test_any_window_of_a_smoothed_plane_is_that_of_the_smoothed_whole(shape, axes, index, sigmas, rng):
    image = rng.normal(size=shape).astype(np.float32)
    layout = describe_image(image, axes=axes)
    sigma, z_sigma = sigmas
    plane = SmoothedPlane(layout, image, index, None, sigma, z_sigma)
    stacked = image if "Z" in axes else image[None]
    spread = (z_sigma, sigma, sigma) + ((0.0,) if axes.endswith("C") else ())
    whole = ndimage.gaussian_filter(stacked, spread, mode="reflect", truncate=TRUNCATE)[index]
    assert plane.shape == whole.shape
    for window in ((slice(None), slice(None)), (slice(10, 30), slice(5, 50)), (slice(0, 7), slice(33, 40)),
                   (slice(None, None, 3), slice(None, None, 2))):
        np.testing.assert_array_equal(plane[window], whole[window])


def test_read_for_model_smooths_only_noisy_images_and_as_asked(clean_and_noisy, tiny_model):
    clean, noisy, _ = clean_and_noisy
    assert read_for_model(clean, tiny_model, nu.PredictConfig(device="cpu")).denoise == 0.0
    reading = read_for_model(noisy, tiny_model, nu.PredictConfig(device="cpu"))
    assert reading.denoise == pytest.approx(choose_sigma(noise_ratio(noisy))) and reading.z_denoise == 0.0
    assert read_for_model(noisy, tiny_model, nu.PredictConfig(device="cpu", denoise=0)).denoise == 0.0
    assert read_for_model(clean, tiny_model, nu.PredictConfig(device="cpu", denoise=1.5)).denoise == 1.5
    # a Z stack is smoothed across its planes by the same width in pixels; time frames never are
    stack = np.stack([noisy] * 4)
    z = read_for_model(stack, tiny_model, nu.SegmentConfig(device="cpu", axes="ZYX", denoise=2.0, z_step=4.0))
    t = read_for_model(stack, tiny_model, nu.SegmentConfig(device="cpu", axes="TYX", denoise=2.0))
    assert (z.denoise, z.z_denoise, t.z_denoise) == (2.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="denoise must be a number >= 0"):
        nu.PredictConfig(denoise=-1)


def test_smoothed_prediction_is_seamless_and_lazy_equals_eager(clean_and_noisy, tiny_model):
    _, noisy, _ = clean_and_noisy
    whole = nu.predict_probabilities(noisy, tiny_model, device="cpu", tile_size=128)
    tiled = nu.predict_probabilities(noisy, tiny_model, device="cpu", tile_size=24)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    assert not np.allclose(whole, nu.predict_probabilities(noisy, tiny_model, device="cpu", denoise=0), atol=1e-3)
    lazy = nu.predict_lazy(da.from_array(noisy, chunks=40), tiny_model, device="cpu", chunk_size=32)
    np.testing.assert_allclose(lazy.compute(), whole, atol=1e-5)


def test_the_shipped_model_finds_more_nuclei_in_a_noisy_image_smoothed(clean_and_noisy):
    from napari_unet.metrics import average_precision

    _, noisy, labels = clean_and_noisy
    diameter = 2 * np.sqrt(np.median(np.bincount(labels.ravel())[1:]) / np.pi)
    smoothed = nu.segment(noisy, "nuclei", device="cpu", diameter=diameter)
    raw = nu.segment(noisy, "nuclei", device="cpu", diameter=diameter, denoise=0)
    assert average_precision(smoothed, labels)[0.5] > average_precision(raw, labels)[0.5] + 0.1


def test_the_cli_takes_denoise_and_refuses_a_negative_one(clean_and_noisy, tiny_model_file, tmp_path, capsys):
    import tifffile

    _, noisy, _ = clean_and_noisy
    tifffile.imwrite(tmp_path / "noisy.tif", noisy)
    for value in ("0", "2"):
        assert main(["segment", str(tmp_path / "noisy.tif"), "--model", str(tiny_model_file), "--device", "cpu",
                     "--probabilities", "--out", str(tmp_path / value), "--denoise", value]) == 0
    assert "smoothed with a 2.0 px Gaussian" in capsys.readouterr().err
    off = tifffile.imread(tmp_path / "0" / "noisy_probabilities.tif")
    on = tifffile.imread(tmp_path / "2" / "noisy_probabilities.tif")
    model = nu.load_model(tiny_model_file, device="cpu")
    np.testing.assert_allclose(on, nu.predict_probabilities(noisy, model, device="cpu", denoise=2.0), atol=1e-5)
    assert not np.allclose(on, off, atol=1e-3)
    capsys.readouterr()
    with pytest.raises(SystemExit) as raised:
        main(["segment", str(tmp_path / "noisy.tif"), "--model", str(tiny_model_file), "--out",
              str(tmp_path / "bad"), "--denoise", "-1"])
    assert raised.value.code != 0 and not (tmp_path / "bad").exists()
    error = capsys.readouterr().err
    assert "--denoise" in error and "expected a number >= 0, got '-1'" in error and "Traceback" not in error
