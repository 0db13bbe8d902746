"""Overlap-tile invariants: tiled == untiled, exact cover, mirrored borders."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_unet as nu
from napari_unet.inference.geometry import axis_geometry, mirror_indices, plan_tiles, tile_step

MODELS = {
    "unet-valid": dict(arch="unet"),
    "unet-same": dict(arch="unet", padding="same"),
    "unet-valid-bilinear": dict(arch="unet", upsampling="bilinear"),
    "unet-same-bilinear": dict(arch="unet", padding="same", upsampling="bilinear"),
    "unetpp-ds": dict(arch="unetplusplus", deep_supervision=True),
}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    model = nu.create_model(depth=2, base_channels=8, **MODELS[request.param])
    model.network.eval()
    return model


@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (1000, 3), (61, 45), (2, 33)])
def test_tiled_equals_untiled(model, shape, rng):
    image = rng.normal(size=shape).astype(np.float32)
    untiled = nu.predict_probabilities(image, model, tile_size=4096, device="cpu")
    for tile_size in (4, 12, 32):
        tiled = nu.predict_probabilities(image, model, tile_size=tile_size, device="cpu")
        np.testing.assert_allclose(tiled, untiled, atol=1e-5)


@pytest.mark.parametrize("level", [None, 1, 2])
def test_tiled_equals_untiled_for_every_unetplusplus_level(level, rng):
    model = nu.create_model("unetplusplus", depth=2, base_channels=8, deep_supervision=True)
    image = rng.normal(size=(45, 70)).astype(np.float32)
    untiled = nu.predict_probabilities(image, model, tile_size=4096, device="cpu", prune_level=level)
    tiled = nu.predict_probabilities(image, model, tile_size=8, device="cpu", prune_level=level)
    np.testing.assert_allclose(tiled, untiled, atol=1e-5)


def test_flips_average_the_mirror_images_and_stay_seamless(model, rng):
    image = rng.normal(size=(48, 64)).astype(np.float32)
    options = dict(device="cpu", precision="fp32")
    plain = nu.predict_probabilities(image, model, tile_size=4096, **options)
    averaged = nu.predict_probabilities(image, model, tile_size=4096, flips=True, **options)
    assert np.abs(averaged - plain).max() > 1e-3  # the tiny random network is not mirror-symmetric
    tiled = nu.predict_probabilities(image, model, tile_size=8, flips=True, **options)
    np.testing.assert_allclose(tiled, averaged, atol=1e-5)
    # where a tile reads as much context before it as after (not valid convolutions with
    # bilinear up-sampling, which read 2 px more after), mirroring a tile is mirroring the image
    if all(axis_geometry(model.network, step).input_size == step + 2 * axis_geometry(model.network, step).halo
           for step in image.shape):
        expected = np.mean([np.flip(nu.predict_probabilities(np.ascontiguousarray(np.flip(image, axes)), model,
                                                             tile_size=4096, **options), tuple(a + 1 for a in axes))
                            for axes in ((), (0,), (1,), (0, 1))], axis=0)
        np.testing.assert_allclose(averaged, expected, atol=1e-5)


@given(start=st.integers(-500, 500), length=st.integers(1, 300), size=st.integers(1, 40))
def test_mirror_indices_match_numpy_reflect(start, length, size):
    reference = np.arange(size)
    if size > 1:
        padded = np.pad(reference, 1200, mode="reflect")
        expected = padded[start + 1200:start + 1200 + length]
    else:
        expected = np.zeros(length, dtype=int)
    np.testing.assert_array_equal(reference[mirror_indices(start, start + length, size)], expected)


@given(height=st.integers(1, 200), width=st.integers(1, 200), step_y=st.integers(1, 64), step_x=st.integers(1, 64))
@settings(max_examples=50)
def test_tiles_cover_every_pixel_exactly_once(height, width, step_y, step_x):
    cover = np.zeros((height, width), dtype=int)
    for tile in plan_tiles((height, width), (step_y, step_x)):
        cover[tile.y, tile.x] += 1
    assert (cover == 1).all()


def test_focus_orders_nearest_tiles_first():
    tiles = plan_tiles((100, 100), (10, 10), focus=(95.0, 5.0))
    assert (tiles[0].y.start, tiles[0].x.start) == (90, 0)
    assert [t.index for t in tiles] == list(range(len(tiles)))


def test_tile_step_is_aligned_and_capped_by_the_image():
    assert tile_step(100, 1000, 16, 512) == 112
    assert tile_step(None, 70, 16, 512) == 80
    assert tile_step(None, 1, 16, 512) == 16


def test_valid_geometry_matches_the_paper():
    model = nu.create_model("unet", depth=4, base_channels=4)
    geometry = axis_geometry(model.network, 384)
    assert geometry.input_size - geometry.step <= 2 * 92 + 15
    assert geometry.halo == 92 and geometry.keep_start == 0


def test_unaligned_step_is_refused():
    model = nu.create_model("unet", depth=2, base_channels=4)
    with pytest.raises(ValueError, match="multiple of the network alignment 4"):
        axis_geometry(model.network, 10)
