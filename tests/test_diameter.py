"""Object size: the estimate, its override, and rescaled prediction (input shape, seamless)."""

from pathlib import Path

import numpy as np
import pytest

import napari_unet as nu
from napari_unet.datasets import median_diameter
from napari_unet.events import ImageRead
from napari_unet.inference.appearance import Appearance, IntensityRange
from napari_unet.inference.diameter import ScaleProbe, _object_intensity, choose_diameter
from napari_unet.inference.runner import TileSource
from napari_unet.inference.rescale import resample, resample_nearest
from napari_unet.synth import SynthConfig, synth_image

PINNED = Path(__file__).parent / "data" / "nuclei-synthetic-v1.safetensors"


@pytest.fixture(scope="module")
def sized_model():
    """The synthetic-era model (trained on 10-32 px nuclei), told it works at 20 px."""
    model = nu.load_model(PINNED, device="cpu")
    model.diameter = 20.0
    return model


@pytest.fixture(scope="module")
def nuclei_image():
    config = SynthConfig(shape=(192, 192), radius=(9.0, 11.0), coverage=(0.2, 0.3))
    return synth_image(np.random.default_rng(100), config)


@pytest.mark.parametrize("factor", [0.5, 1.0, 2.0])
def test_the_estimate_is_within_20_percent_at_three_scales(sized_model, nuclei_image, factor):
    image, labels = nuclei_image
    scaled = resample(image, factor)
    truth = median_diameter(resample_nearest(labels, factor, scaled.shape))
    estimate = nu.estimate_diameter(scaled, sized_model, device="cpu")
    assert abs(estimate.diameter / truth - 1) < 0.2
    assert len(estimate.probes) == 6 and all(p.factor > 0 for p in estimate.probes)


def test_segmenting_reports_the_estimate_and_rescales(sized_model, nuclei_image):
    image, _ = nuclei_image
    small = resample(image, 0.5)
    read = next(e for e in nu.iter_segment(small, sized_model, device="cpu") if isinstance(e, ImageRead))
    assert read.estimated and 8 < read.diameter < 12 and read.factor == pytest.approx(20.0 / read.diameter)


def test_a_given_diameter_wins_and_nothing_is_probed(sized_model, nuclei_image, monkeypatch):
    from napari_unet.inference import diameter

    monkeypatch.setattr(diameter, "probe_scales", lambda *a, **k: pytest.fail("probed"))
    read = next(e for e in nu.iter_segment(nuclei_image[0], sized_model, device="cpu", diameter=40.0)
                if isinstance(e, ImageRead))
    assert (read.diameter, read.estimated, read.factor) == (40.0, False, 0.5)


@pytest.mark.parametrize("diameter", [10.0, 33.0])
def test_rescaled_prediction_has_the_input_shape_and_is_seamless(sized_model, nuclei_image, diameter):
    image = nuclei_image[0][:150, :170]
    whole = nu.predict_probabilities(image, sized_model, device="cpu", precision="fp32", diameter=diameter)
    tiled = nu.predict_probabilities(image, sized_model, device="cpu", precision="fp32", diameter=diameter,
                                     tile_size=48)
    assert whole.shape == (3, 150, 170)
    np.testing.assert_array_equal(tiled, whole)
    labels = nu.segment(image, sized_model, device="cpu", precision="fp32", diameter=diameter, tile_size=48)
    assert labels.shape == image.shape and labels.max() > 0


def test_rescaled_lazy_prediction_equals_the_eager_one(sized_model, nuclei_image):
    image = nuclei_image[0][:150, :170]
    for diameter, chunks in ((12.0, 2), (31.0, 1)):
        eager = nu.predict_probabilities(image, sized_model, device="cpu", precision="fp32", diameter=diameter)
        lazy = nu.predict_lazy(image, sized_model, device="cpu", precision="fp32", diameter=diameter, chunk_size=64)
        assert len(lazy.chunks[1]) == chunks
        # chunks run in parallel threads on one shared model: still bit for bit the eager result
        np.testing.assert_array_equal(lazy.compute(), eager)


def test_the_choice_divides_by_the_models_bias_and_needs_objects():
    probes = [ScaleProbe(0.5, 10, 40.0, 0.8), ScaleProbe(1.0, 12, 21.0, 0.9), ScaleProbe(2.0, 1, 11.0, 0.99)]
    assert choose_diameter(probes, 20.0) == 21.0  # the 2x probe has too few objects to count
    assert choose_diameter(probes, 20.0, bias=1.2) == pytest.approx(17.5)
    assert choose_diameter([ScaleProbe(1.0, 0, float("nan"), 0.0)], 20.0) is None


def test_of_two_scales_as_sure_and_as_near_the_brightest_objects_win():
    # whole cells seen at a quarter and their nuclei at full size: both 20 px to the network
    cells = ScaleProbe(0.25, 40, 80.0, 0.75, intensity=0.3)
    nuclei = ScaleProbe(1.0, 20, 20.0, 0.72, intensity=0.7)
    assert choose_diameter([cells, nuclei], 20.0) == 20.0
    # without the stain to tell them apart, the network's confidence decides
    assert choose_diameter([cells, ScaleProbe(1.0, 20, 20.0, 0.72, intensity=0.3)], 20.0) == 80.0


def test_the_stable_rule_takes_the_size_that_holds_between_probes_an_octave_apart():
    # a whole-cell model cuts everything into ~30 px pieces: the pieces halve with the factor,
    # the real 60 px cells (seen at 1/4 and 1/2) keep their size; it is surest of the smallest pieces
    probes = [ScaleProbe(0.125, 12, 150.0, 0.60), ScaleProbe(0.25, 40, 62.0, 0.55), ScaleProbe(0.5, 50, 58.0, 0.60),
              ScaleProbe(1.0, 45, 30.0, 0.65), ScaleProbe(2.0, 60, 14.0, 0.66), ScaleProbe(4.0, 70, 7.5, 0.72)]
    assert choose_diameter(probes, 30.0) == 7.5  # the confidence rule is fooled
    assert choose_diameter(probes, 30.0, rule="stable") == pytest.approx(np.sqrt(62.0 * 58.0))
    assert choose_diameter(probes, 30.0, bias=1.1, rule="stable") == pytest.approx(np.sqrt(62.0 * 58.0) / 1.1)
    # a pair that agrees with a handful of objects gives way to a populated pair
    sparse = probes[:4] + [ScaleProbe(2.0, 4, 14.0, 0.66), ScaleProbe(4.0, 4, 14.0, 0.72)]
    assert choose_diameter(sparse, 30.0, rule="stable") == pytest.approx(np.sqrt(62.0 * 58.0))
    # probes that are not an octave apart are never paired; nothing to pair: None
    assert choose_diameter([ScaleProbe(0.25, 40, 60.0, 0.5), ScaleProbe(1.0, 40, 60.0, 0.5)], 30.0,
                           rule="stable") is None


def test_the_estimate_follows_the_models_rule():
    from types import SimpleNamespace

    from napari_unet.inference.diameter import estimate_from_probes

    probes = [ScaleProbe(0.25, 40, 62.0, 0.55), ScaleProbe(0.5, 50, 58.0, 0.60), ScaleProbe(1.0, 45, 30.0, 0.65),
              ScaleProbe(2.0, 60, 14.0, 0.66), ScaleProbe(4.0, 70, 7.5, 0.72)]
    for rule, expected in (("confidence", 7.5), ("stable", np.sqrt(62.0 * 58.0))):
        model = SimpleNamespace(diameter=30.0, diameter_bias=1.0, diameter_rule=rule)
        estimate = estimate_from_probes(None, SimpleNamespace(model=model), probes)
        assert estimate.diameter == pytest.approx(expected)


def test_object_intensity_is_read_in_the_models_polarity():
    # a bright background with two dark objects (brightfield): inverted, they are the bright ones
    plane = np.full((40, 40), 200.0, np.float32)
    labels = np.zeros((40, 40), np.int32)
    plane[5:15, 5:15], labels[5:15, 5:15] = 0.0, 1
    plane[20:30, 20:30], labels[20:30, 20:30] = 100.0, 2
    source = TileSource(plane, Appearance(colour=False, inverted=True), IntensityRange(-200.0, 0.0), 1)
    assert _object_intensity(source, labels, np.array([1])) == pytest.approx(1.0)
    assert _object_intensity(source, labels, np.array([1, 2])) == pytest.approx(0.75)
    assert _object_intensity(source, labels, np.array([], int)) == 0.0


def test_models_without_a_working_diameter_are_not_estimated(tiny_model):
    with pytest.raises(ValueError, match="has no working diameter"):
        nu.estimate_diameter(np.zeros((32, 32), np.float32), tiny_model, device="cpu")


def test_a_z_stacks_size_is_the_median_over_its_planes_and_their_disagreement_is_said(tiny_model, monkeypatch):
    from napari_unet.inference import diameter
    from napari_unet.inference.diameter import DiameterEstimate, estimate_stack
    from napari_unet.inference.reading import read_for_model

    measured = []

    def per_plane(plane, reading, probes=None):
        measured.append(plane.index)
        return DiameterEstimate(diameter={10: 5.0}.get(plane.index, 15.0 + plane.index / 10), probes=())

    monkeypatch.setattr(diameter, "estimate_from_probes", per_plane)
    stack = np.zeros((21, 16, 16), np.float32)
    z = read_for_model(stack, tiny_model, nu.SegmentConfig(device="cpu", axes="ZYX", diameter=1.0))
    estimate = estimate_stack(stack, z)
    # planes 4, 7, 10, 13, 16: the middle one's 5 px is outvoted, and named as the rival;
    # sections at random heights are pi / 4 of a ball's diameter
    assert measured == [4, 7, 10, 13, 16]
    assert estimate.diameter == pytest.approx(15.7 * 4 / np.pi) and estimate.rival == pytest.approx(5.0 * 4 / np.pi)
    measured.clear()
    t = read_for_model(stack, tiny_model, nu.SegmentConfig(device="cpu", axes="TYX", diameter=1.0))
    assert estimate_stack(stack, t).diameter == 5.0 and measured == [10]  # frames: the middle one


def test_a_sparse_stacks_planes_pool_their_objects_for_the_estimate(tiny_model, monkeypatch):
    from napari_unet.inference import diameter
    from napari_unet.inference.diameter import DiameterEstimate, ScaleProbe, estimate_stack, pool_probes
    from napari_unet.inference.reading import read_for_model

    def two_nuclei(plane, reading, probes=None):  # too few in any one plane for a probe to count
        probe = ScaleProbe(factor=1.0, objects=2, diameter=20.0, confidence=0.8, intensity=0.5,
                           sizes=(18.0 + plane.index / 10, 22.0))
        return DiameterEstimate(diameter=None, probes=(probe,))

    monkeypatch.setattr(diameter, "estimate_from_probes", two_nuclei)
    monkeypatch.setattr(tiny_model, "diameter", 20.0)  # the confidence rule needs a working diameter
    stack = np.zeros((21, 16, 16), np.float32)
    z = read_for_model(stack, tiny_model, nu.SegmentConfig(device="cpu", axes="ZYX", diameter=1.0))
    estimate = estimate_stack(stack, z)
    pooled = estimate.probes
    assert len(pooled) == 1 and pooled[0].objects == 10 and pooled[0].confidence == pytest.approx(0.8)
    assert pooled[0].diameter == pytest.approx(np.median([18.4, 18.7, 19.0, 19.3, 19.6] + [22.0] * 5))
    expected = pooled[0].diameter / tiny_model.diameter_bias * 4 / np.pi
    assert estimate.diameter == pytest.approx(expected)
    # a factor no plane found objects at stays empty; intensities are weighted by objects
    empty = ScaleProbe(factor=2.0, objects=0, diameter=float("nan"), confidence=0.4)
    busy = ScaleProbe(factor=2.0, objects=3, diameter=5.0, confidence=0.6, intensity=0.9, sizes=(5.0,) * 3)
    mixed = pool_probes([(empty,), (busy,)])[0]
    assert mixed.objects == 3 and mixed.intensity == pytest.approx(0.9) and mixed.confidence == pytest.approx(0.5)
    assert np.isnan(pool_probes([(empty,)])[0].diameter)
