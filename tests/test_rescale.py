"""Resampling to the model's scale: exact windows (seamless tiling), agreement with
scikit-image, nearest-neighbour labels."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.transform import rescale as skimage_rescale

from napari_unet.inference.rescale import RescaledPlane, resample, resample_nearest, scaled_length


@pytest.fixture
def smooth_image():
    return ndimage.gaussian_filter(np.random.default_rng(0).random((61, 83)), 2).astype(np.float32)


@pytest.mark.parametrize("factor", [0.3, 0.5, 0.8, 1.7, 2.5])
def test_windows_equal_the_whole_resampled_image(smooth_image, factor):
    whole = resample(smooth_image, factor)
    plane = RescaledPlane(smooth_image, factor)
    assert plane.shape == whole.shape == (scaled_length(61, factor), scaled_length(83, factor))
    for top in range(0, whole.shape[0], 11):
        for left in range(0, whole.shape[1], 13):
            np.testing.assert_array_equal(plane[top:top + 17, left:left + 19], whole[top:top + 17, left:left + 19])


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_interior_agrees_with_scikit_image(smooth_image, factor):
    # sizes that the factor divides exactly: scikit-image maps by the ratio of the shapes
    image = smooth_image[:60, :80]
    ours = resample(image, factor)
    theirs = skimage_rescale(image, factor, order=1, anti_aliasing=factor < 1, preserve_range=True)
    inner = (slice(6, -6), slice(6, -6))
    assert np.abs(ours[inner] - theirs[inner]).max() < 0.01 * np.ptp(image)


def test_colour_channels_are_resampled_alike(smooth_image):
    rgb = np.stack([smooth_image, 2 * smooth_image, smooth_image + 1], axis=-1)
    out = resample(rgb, 0.6)
    np.testing.assert_allclose(out[..., 1], 2 * out[..., 0], rtol=1e-5)
    np.testing.assert_allclose(out[..., 2], out[..., 0] + 1, rtol=1e-5)


def test_nearest_labels_keep_their_values():
    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15], labels[20:35, 18:38] = 3, 9
    for factor, shape in [(0.5, (20, 20)), (2.5, (100, 100)), (0.6, (25, 23))]:
        out = resample_nearest(labels, factor, None if factor != 0.6 else shape)
        assert out.shape == shape and out.dtype == labels.dtype
        assert set(np.unique(out)) == {0, 3, 9}
    # the labels' grid and the image's grid stay aligned: a 3 px square shrunk 3x is one pixel
    small = np.zeros((9, 9), np.uint8)
    small[3:6, 3:6] = 1
    assert resample_nearest(small, 1 / 3).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_a_rescaled_plane_is_read_by_two_unit_slices(smooth_image):
    plane = RescaledPlane(smooth_image, 2.0)
    assert np.asarray(plane).shape == plane.shape
    with pytest.raises(TypeError, match="two slices"):
        plane[3]
    with pytest.raises(TypeError, match="step 1"):
        plane[::2, ::2]
    with pytest.raises(ValueError, match="positive number"):
        RescaledPlane(smooth_image, 0.0)
