import numpy as np
import pytest

from napari_unet.synth import STYLES, SynthConfig, synth_dataset, synth_image

SMALL = SynthConfig(shape=(96, 128))


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different cells that are 4-adjacent somewhere."""
    pairs = set()
    for a, b in ((labels[1:], labels[:-1]), (labels[:, 1:], labels[:, :-1])):
        contact = (a > 0) & (b > 0) & (a != b)
        pairs |= {tuple(sorted(p)) for p in zip(a[contact].tolist(), b[contact].tolist())}
    return pairs


def test_same_seed_same_image():
    first = synth_image(np.random.default_rng(7), SMALL)
    again = synth_image(np.random.default_rng(7), SMALL)
    other = synth_image(np.random.default_rng(8), SMALL)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_dataset_image_does_not_depend_on_n():
    three = synth_dataset(3, seed=1, config=SMALL)
    two = synth_dataset(2, seed=1, config=SMALL)
    assert len(three) == 3
    for (image_a, labels_a), (image_b, labels_b) in zip(two, three):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    assert not np.array_equal(three[0][1], three[1][1])


@pytest.mark.parametrize("seed", range(4))
def test_images_are_finite_float32_with_sequential_labels(seed):
    image, labels = synth_image(np.random.default_rng(seed), SMALL)
    assert image.shape == labels.shape == (96, 128)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    assert np.all(np.isfinite(image))
    ids = np.unique(labels)
    assert ids[-1] >= 1
    np.testing.assert_array_equal(ids, np.arange(ids[-1] + 1))


def test_cells_are_brighter_than_background():
    image, labels = synth_image(np.random.default_rng(3), SMALL)
    assert np.median(image[labels > 0]) > 2 * np.median(image[labels == 0])


def test_default_config_has_touching_cells():
    for seed in range(4):
        _, labels = synth_image(np.random.default_rng(seed))
        assert len(touching_pairs(labels)) >= 1


@pytest.mark.parametrize("style", STYLES)
def test_every_style_renders(style):
    image, labels = synth_image(np.random.default_rng(0), SynthConfig.for_style(style, shape=(80, 80)))
    assert image.shape == (80, 80) and np.all(np.isfinite(image))
    assert labels.max() >= 1


def test_phase_cells_are_darker_than_background():
    image, labels = synth_image(np.random.default_rng(0), SynthConfig.for_style("phase", shape=(96, 96)))
    assert np.median(image[labels > 0]) < np.median(image[labels == 0])


def test_config_replace_and_tiny_images_work():
    config = SMALL.replace(shape=(1, 1))
    image, labels = synth_image(np.random.default_rng(0), config)
    assert image.shape == labels.shape == (1, 1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"shape": (0, 64)}, "shape"),
        ({"shape": (64,)}, "shape"),
        ({"style": "brightfield"}, "style"),
        ({"radius": (16.0, 5.0)}, "radius"),
        ({"radius": (0.5, 5.0)}, "radius"),
        ({"coverage": (0.1, 1.5)}, "coverage"),
        ({"photons": (0.0, 10.0)}, "photons"),
        ({"edge_darkening": (0.2,)}, "edge_darkening"),
    ],
)
def test_invalid_config_is_refused(changes, field):
    with pytest.raises(ValueError, match=f"^{field} must be"):
        SynthConfig(**changes)


def test_unknown_style_preset_is_refused():
    with pytest.raises(ValueError, match="style must be one of"):
        SynthConfig.for_style("brightfield")


@pytest.mark.parametrize("modality, ndim", [("brightfield", 2), ("stained", 3), ("fluorescence-colour", 3)])
def test_modalities_render_nuclei_inside_cells(modality, ndim):
    image, labels = synth_image(np.random.default_rng(0), SynthConfig(shape=(96, 96), modality=modality))
    assert image.ndim == ndim and image.shape[:2] == labels.shape and image.dtype == np.float32
    assert labels.max() > 0 and np.isfinite(image).all() and image.min() >= -50
    grey = image.mean(-1) if ndim == 3 else image
    inside, outside = np.median(grey[labels > 0]), np.median(grey[labels == 0])
    # transmitted light: nuclei absorb; fluorescence: nuclei emit
    assert (inside < outside) if modality != "fluorescence-colour" else (inside > outside)


def test_the_fluorescence_modality_is_the_default_and_unchanged():
    default = synth_image(np.random.default_rng(5), SMALL)
    explicit = synth_image(np.random.default_rng(5), SMALL.replace(modality="fluorescence"))
    np.testing.assert_array_equal(default[0], explicit[0])


def test_an_unknown_modality_is_refused():
    with pytest.raises(ValueError, match="modality must be one of"):
        SynthConfig(modality="xray")
