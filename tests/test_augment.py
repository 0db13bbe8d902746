import numpy as np
import pytest

from napari_unet.training.augment import (
    AugmentConfig,
    augment_sample,
    elastic_displacement,
    preview_augmentations,
    warp,
)

GEOMETRY_ONLY = AugmentConfig(
    intensity_scale=(1.0, 1.0), intensity_offset=(0.0, 0.0), gamma=(1.0, 1.0), noise_std=(0.0, 0.0)
)
ELASTIC_ONLY = AugmentConfig(
    flip=False,
    rotate90=False,
    rotation_probability=0.0,
    elastic_probability=1.0,
    intensity_scale=(1.0, 1.0),
    intensity_offset=(0.0, 0.0),
    gamma=(1.0, 1.0),
    noise_std=(0.0, 0.0),
)


def blobs(shape=(48, 48)):
    labels = np.zeros(shape, dtype=np.int32)
    labels[5:20, 6:18] = 3
    labels[20:40, 18:30] = 7
    labels[30:45, 32:45] = 12
    image = labels.astype(np.float32) + np.linspace(0, 1, shape[1], dtype=np.float32)
    return image, labels


def test_same_seed_same_sample_different_seed_different():
    image, labels = blobs()
    first = augment_sample(image, labels, np.random.default_rng(1))
    again = augment_sample(image, labels, np.random.default_rng(1))
    other = augment_sample(image, labels, np.random.default_rng(2))
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.image, other.image)


@pytest.mark.parametrize("seed", range(6))
def test_shapes_dtypes_and_label_values_are_kept(seed):
    image, labels = blobs((40, 56))
    labels = labels.astype(np.uint16)
    sample = augment_sample(
        image, labels, np.random.default_rng(seed), weights=labels.astype(float), ignore=labels == 3
    )
    assert sample.image.shape == image.shape and sample.image.dtype == np.float32
    assert sample.labels.shape == labels.shape and sample.labels.dtype == np.uint16
    assert sample.weights.dtype == np.float32 and sample.ignore.dtype == bool
    assert set(np.unique(sample.labels)) <= set(np.unique(labels))
    assert np.all(np.isfinite(sample.image))


@pytest.mark.parametrize("seed", range(4))
def test_weights_and_ignore_move_with_labels(seed):
    image, labels = blobs()
    sample = augment_sample(
        image, labels, np.random.default_rng(seed), weights=labels.astype(float), ignore=labels == 7
    )
    np.testing.assert_array_equal(sample.weights, sample.labels)
    np.testing.assert_array_equal(sample.ignore, sample.labels == 7)


def test_without_optional_targets_they_stay_none():
    image, labels = blobs()
    sample = augment_sample(image, labels, np.random.default_rng(0))
    assert sample.weights is None and sample.ignore is None


def test_elastic_deformation_moves_image_and_labels_together():
    _, labels = blobs((64, 64))
    image = labels.astype(np.float64)
    for seed in range(3):
        sample = augment_sample(image, labels, np.random.default_rng(seed), config=ELASTIC_ONLY)
        assert not np.array_equal(sample.labels, labels)
        # Cubic interpolation blurs the label steps by a pixel, so edges may disagree.
        assert np.mean(np.rint(sample.image) == sample.labels) > 0.9
        for k in np.unique(sample.labels):
            assert np.median(sample.image[sample.labels == k]) == pytest.approx(k, abs=0.01)


def test_geometric_transforms_keep_channels_aligned():
    _, labels = blobs()
    image = np.stack([labels, 2 * labels], axis=-1).astype(np.float32)
    sample = augment_sample(image, labels, np.random.default_rng(4), config=GEOMETRY_ONLY)
    assert sample.image.shape == image.shape
    np.testing.assert_allclose(sample.image[..., 1], 2 * sample.image[..., 0], atol=1e-4)


def test_intensity_changes_handle_constant_images():
    labels = np.zeros((16, 16), dtype=int)
    sample = augment_sample(np.full((16, 16), 5.0), labels, np.random.default_rng(0))
    assert np.all(np.isfinite(sample.image))
    assert np.ptp(sample.image) == 0


NO_GEOMETRY = AugmentConfig(flip=False, rotate90=False, rotation_probability=0.0, elastic_probability=0.0)


@pytest.mark.parametrize("config", [AugmentConfig(), NO_GEOMETRY])
def test_inputs_are_not_mutated_nor_shared(config):
    image, labels = blobs()
    weights, ignore = labels.astype(np.float32), labels == 3
    inputs = (image, labels, weights, ignore)
    copies = [a.copy() for a in inputs]
    sample = augment_sample(
        image, labels, np.random.default_rng(0), weights=weights, ignore=ignore, config=config
    )
    outputs = (sample.image, sample.labels, sample.weights, sample.ignore)
    for original, copy, output in zip(inputs, copies, outputs):
        np.testing.assert_array_equal(original, copy)
        assert not np.shares_memory(original, output)


def test_displacement_has_requested_std_at_nodes_and_is_smooth():
    rng = np.random.default_rng(0)
    fields = np.stack([elastic_displacement((65, 65), rng, grid=3, std=10.0) for _ in range(300)])
    assert fields.dtype == np.float32 and fields.shape == (300, 2, 65, 65)
    nodes = fields[:, :, ::32, ::32]
    assert nodes.std() == pytest.approx(10.0, rel=0.05)
    assert abs(nodes.mean()) < 0.5
    neighbour_step = np.abs(np.diff(fields, axis=-1)).max()
    assert neighbour_step < 3.0


def test_warp_nearest_keeps_dtype_and_values():
    _, labels = blobs()
    displacement = elastic_displacement(labels.shape, np.random.default_rng(0))
    warped = warp(labels, displacement, order=0)
    assert warped.dtype == labels.dtype
    assert set(np.unique(warped)) <= set(np.unique(labels))
    mask = warp(labels > 0, displacement, order=0)
    np.testing.assert_array_equal(mask, warped > 0)
    np.testing.assert_allclose(warp(labels, np.zeros_like(displacement), order=3), labels, atol=1e-4)


def test_preview_samples_do_not_depend_on_n():
    image, labels = blobs()
    two = preview_augmentations(image, labels, n=2, seed=5)
    four = preview_augmentations(image, labels, n=4, seed=5)
    assert len(four) == 4
    for a, b in zip(two, four):
        np.testing.assert_array_equal(a.image, b.image)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.zeros((48, 40), dtype=int)}, r"labels must have the image's shape .* \(48, 40\)"),
        ({"labels": np.full((48, 48), 0.5)}, "labels must hold integers"),
        ({"image": np.zeros((1, 48, 48, 1))}, r"image must be .* \(1, 48, 48, 1\)"),
        ({"weights": np.zeros((4, 4))}, r"weights must have the shape .* \(4, 4\)"),
        ({"ignore": np.zeros((4, 4), dtype=bool)}, r"ignore must have the shape .* \(4, 4\)"),
    ],
)
def test_invalid_samples_are_refused(kwargs, match):
    image, labels = blobs()
    arguments = {"image": image, "labels": labels, **kwargs}
    with pytest.raises(ValueError, match=match):
        augment_sample(rng=np.random.default_rng(0), **arguments)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rotation_probability", 1.5),
        ("elastic_probability", -0.1),
        ("elastic_grid", 1),
        ("elastic_std", -1.0),
        ("intensity_scale", (1.3, 0.7)),
        ("intensity_offset", (0.1,)),
        ("gamma", (0.0, 1.0)),
        ("noise_std", (-0.1, 0.0)),
    ],
)
def test_invalid_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_invalid_displacement_arguments_are_refused():
    with pytest.raises(ValueError, match=r"shape must be .* \(0, 5\)"):
        elastic_displacement((0, 5), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"displacement must have shape .* \(2, 5, 5\)"):
        warp(np.zeros((4, 4)), np.zeros((2, 5, 5)), order=0)


def test_zoom_scales_objects_and_keeps_labels():
    image, labels = blobs((96, 96))
    config = AugmentConfig(flip=False, rotate90=False, rotation_probability=0.0, elastic_probability=0.0,
                           zoom=(2.0, 2.0))
    sample = augment_sample(image, labels, np.random.default_rng(0), config=config)
    assert set(np.unique(sample.labels)) <= set(np.unique(labels))
    # magnified twice: each surviving object covers about four times its area
    for value in np.unique(sample.labels[sample.labels > 0]):
        if not (sample.labels[[0, -1]] == value).any() and not (sample.labels[:, [0, -1]] == value).any():
            ratio = np.count_nonzero(sample.labels == value) / np.count_nonzero(labels == value)
            assert 3.3 < ratio < 4.7


def test_output_shape_takes_the_centre_of_a_larger_window():
    image, labels = blobs((64, 64))
    config = AugmentConfig(flip=False, rotate90=False, rotation_probability=0.0, elastic_probability=0.0,
                           intensity_scale=(1.0, 1.0), intensity_offset=(0.0, 0.0), gamma=(1.0, 1.0),
                           noise_std=(0.0, 0.0))
    sample = augment_sample(image, labels, np.random.default_rng(0), config=config, output_shape=(40, 40))
    np.testing.assert_array_equal(sample.labels, labels[12:52, 12:52])
    with pytest.raises(ValueError, match="output_shape"):
        augment_sample(image, labels, np.random.default_rng(0), output_shape=(80, 40))


def test_a_shrinking_zoom_reads_the_larger_window_instead_of_mirroring():
    labels = np.zeros((120, 120), np.int32)
    labels[10:20, 10:20] = 1  # only inside the outer ring: visible once zoomed out
    config = AugmentConfig(flip=False, rotate90=False, rotation_probability=0.0, elastic_probability=0.0,
                           zoom=(0.5, 0.5))
    sample = augment_sample(labels.astype(np.float32), labels, np.random.default_rng(0), config=config,
                            output_shape=(60, 60))
    assert np.count_nonzero(sample.labels == 1) == pytest.approx(25, abs=8)


def test_channel_gain_and_blur_change_the_image_only():
    image, labels = blobs()
    rgb = np.stack([image] * 3, axis=-1)
    config = AugmentConfig(flip=False, rotate90=False, rotation_probability=0.0, elastic_probability=0.0,
                           intensity_scale=(1.0, 1.0), intensity_offset=(0.0, 0.0), gamma=(1.0, 1.0),
                           noise_std=(0.0, 0.0), channel_gain=(0.5, 1.5), blur=(1.0, 1.0))
    sample = augment_sample(rgb, labels, np.random.default_rng(0), config=config)
    np.testing.assert_array_equal(sample.labels, labels)
    assert not np.allclose(sample.image[..., 0], sample.image[..., 1])
    assert sample.image[..., 0].std() < rgb[..., 0].std() * 1.5


def test_linear_image_order_is_accepted_and_others_refused():
    image, labels = blobs()
    sample = augment_sample(image, labels, np.random.default_rng(0), config=AugmentConfig(image_order=1))
    assert sample.image.shape == image.shape
    with pytest.raises(ValueError, match="image_order"):
        AugmentConfig(image_order=2)
