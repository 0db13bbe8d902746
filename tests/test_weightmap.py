import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from napari_unet.training.weightmap import (
    border_cutoff,
    border_weight_map,
    class_balance_weights,
    nearest_two_cell_distances,
)


def two_squares(gap: int) -> np.ndarray:
    labels = np.zeros((64, 96), dtype=np.int32)
    labels[20:40, 20:40] = 1
    labels[20:40, 40 + gap : 60 + gap] = 2
    return labels


def brute_force_border_term(labels, w0, sigma):
    distances = np.sort(
        [ndimage.distance_transform_edt(labels != k) for k in np.unique(labels[labels > 0])], axis=0
    )
    return w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))


def test_gap_between_cells_gets_about_w0_on_top_of_class_weight():
    labels = two_squares(gap=1)
    weights = border_weight_map(labels, w0=10.0, sigma=5.0)
    class_weight = class_balance_weights((labels > 0).astype(int))
    gap = weights[25:35, 40] - class_weight[25:35, 40]
    np.testing.assert_allclose(gap, 10.0, rtol=0.1)
    np.testing.assert_allclose(gap, 10.0 * np.exp(-4 / 50), rtol=1e-5)


def test_far_from_cells_only_class_weight_remains():
    labels = two_squares(gap=2)
    weights = border_weight_map(labels)
    class_weight = class_balance_weights((labels > 0).astype(int))
    np.testing.assert_allclose(weights[0, -1], class_weight[0, -1], atol=1e-3)
    np.testing.assert_allclose(weights[-1, 0], class_weight[-1, 0], atol=1e-3)


def test_truncated_border_term_matches_full_distance_transforms():
    rng = np.random.default_rng(3)
    labels = np.zeros((80, 80), dtype=np.int32)
    for k, (y, x) in enumerate(rng.integers(5, 70, size=(8, 2)), start=1):
        labels[y : y + 8, x : x + 6] = k
    labels = ndimage.label(labels > 0)[0]
    class_weight = class_balance_weights((labels > 0).astype(int))
    border = border_weight_map(labels, w0=10.0, sigma=5.0) - class_weight
    np.testing.assert_allclose(border, brute_force_border_term(labels, 10.0, 5.0), atol=1e-3 * 10.0)


def test_distances_inside_a_cell_are_zero_for_itself():
    labels = two_squares(gap=3)
    nearest, second = nearest_two_cell_distances(labels, cutoff=100.0)
    assert np.all(nearest[labels > 0] == 0)
    assert second[30, 39] == pytest.approx(4.0)
    assert border_cutoff(5.0) == pytest.approx(5.0 * np.sqrt(2 * np.log(1000)))


def test_single_cell_has_no_border_term():
    labels = np.zeros((32, 32), dtype=np.uint16)
    labels[8:20, 8:20] = 7
    np.testing.assert_array_equal(
        border_weight_map(labels), class_balance_weights((labels > 0).astype(int))
    )


def test_labels_without_background_work():
    labels = np.ones((16, 16), dtype=np.int64)
    labels[:, 8:] = 2
    weights = border_weight_map(labels)
    assert np.all(weights[:, 7:9] > 9.0)


def test_ignored_pixels_are_zero_and_others_positive():
    labels = two_squares(gap=1)
    ignore = np.zeros(labels.shape, dtype=bool)
    ignore[:10] = True
    ignore[30:, 40] = True
    weights = border_weight_map(labels, ignore=ignore)
    assert weights.dtype == np.float32
    assert np.all(weights[ignore] == 0)
    assert np.all(weights[~ignore] > 0)


def test_class_balance_gives_equal_total_weight_per_class():
    classes = np.zeros((40, 40), dtype=np.uint8)
    classes[5:30, 5:30] = 1
    classes[5:30, 5] = 2
    ignore = np.zeros(classes.shape, dtype=bool)
    ignore[35:] = True
    weights = class_balance_weights(classes, ignore=ignore)
    totals = [weights[(classes == k) & ~ignore].sum() for k in range(3)]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)
    assert weights[~ignore].mean() == pytest.approx(1.0)
    assert np.all(weights[ignore] == 0)


def test_classes_argument_replaces_foreground_balance():
    labels = two_squares(gap=1)
    classes = (labels > 0).astype(int)
    classes[20, 20:60] = 2
    weights = border_weight_map(labels, w0=0.0, classes=classes)
    np.testing.assert_array_equal(weights, class_balance_weights(classes))


def test_inputs_are_not_mutated():
    labels = two_squares(gap=1)
    ignore = labels == 2
    classes = (labels > 0).astype(int)
    copies = labels.copy(), ignore.copy(), classes.copy()
    border_weight_map(labels, ignore=ignore, classes=classes)
    for original, copy in zip((labels, ignore, classes), copies):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.full((8, 8), 1.5)}, "labels must hold integers"),
        ({"labels": -np.ones((8, 8), dtype=int)}, "labels must not be negative"),
        ({"labels": np.zeros((2, 8, 8), dtype=int)}, r"labels must be 2-D \(Y, X\), got shape \(2, 8, 8\)"),
        ({"ignore": np.zeros((8, 9), dtype=bool)}, r"ignore must have the shape .* \(8, 9\)"),
        ({"classes": np.zeros((9, 8), dtype=int)}, r"classes must have the shape .* \(9, 8\)"),
        ({"w0": -1.0}, "w0 must be >= 0"),
        ({"sigma": 0.0}, "sigma must be > 0"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, match):
    arguments = {"labels": np.zeros((8, 8), dtype=int), **kwargs}
    with pytest.raises(ValueError, match=match):
        border_weight_map(**arguments)


@settings(max_examples=40, deadline=None)
@given(
    labels=arrays(
        np.int32,
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements=st.integers(0, 4),
    ),
    ignore_seed=st.integers(0, 2**16),
)
def test_weights_are_finite_non_negative_and_zero_where_ignored(labels, ignore_seed):
    ignore = np.random.default_rng(ignore_seed).random(labels.shape) < 0.2
    weights = border_weight_map(labels, ignore=ignore)
    assert weights.shape == labels.shape
    assert np.all(np.isfinite(weights))
    assert np.all(weights >= 0)
    assert np.all(weights[ignore] == 0)
