import itertools

import numpy as np
import pytest

from napari_unet.metrics import (
    average_precision,
    dice,
    evaluate,
    f1,
    iou,
    match_instances,
    pixel_error,
    rand_error,
)


def grid_of_squares(n: int, size: int = 8, spacing: int = 12) -> np.ndarray:
    labels = np.zeros((spacing * 4, spacing * ((n + 3) // 4)), dtype=np.int32)
    for k in range(n):
        y, x = spacing * (k % 4), spacing * (k // 4)
        labels[y : y + size, x : x + size] = k + 1
    return labels


def test_perfect_prediction_scores_one_and_errors_zero():
    truth = grid_of_squares(6)
    pred = truth * 3 + 100 * (truth > 0)
    metrics = evaluate(pred, truth)
    assert metrics["ap50"] == metrics["ap75"] == metrics["f1"] == 1.0
    assert metrics["iou"] == metrics["dice"] == 1.0
    assert metrics["pixel_error"] == metrics["rand_error"] == 0.0
    assert metrics["n_pred"] == metrics["n_truth"] == 6
    assert all(type(value) is float for value in metrics.values())
    assert set(metrics) == {"ap50", "ap75", "f1", "iou", "dice", "pixel_error", "rand_error", "n_pred", "n_truth"}


@pytest.mark.parametrize("n", [1, 5, 9])
def test_one_missing_object_gives_ap_n_over_n_plus_one(n):
    truth = grid_of_squares(n + 1)
    pred = np.where(truth == n + 1, 0, truth)
    result = match_instances(pred, truth)
    assert (result.tp, result.fp, result.fn) == (n, 0, 1)
    assert average_precision(pred, truth) == {0.5: n / (n + 1), 0.75: n / (n + 1)}
    assert f1(pred, truth) == pytest.approx(2 * n / (2 * n + 1))


def test_split_object_counts_one_match_and_one_false_positive():
    truth = np.zeros((20, 20), dtype=np.uint8)
    truth[2:18, 2:18] = 1
    pred = truth.copy()
    pred[2:18, 12:18] = 2
    result = match_instances(pred, truth)
    assert (result.tp, result.fp, result.fn) == (1, 1, 0)
    assert result.mean_matched_iou == pytest.approx(10 / 16)
    assert average_precision(pred, truth, thresholds=(0.75,)) == {0.75: 0.0}


def test_shifted_object_has_known_iou():
    truth = np.zeros((30, 30), dtype=int)
    truth[5:15, 5:15] = 4
    pred = np.roll(truth, 2, axis=1)
    expected = 80 / 120
    assert iou(pred, truth) == pytest.approx(expected)
    assert dice(pred, truth) == pytest.approx(2 * 80 / 200)
    assert match_instances(pred, truth).mean_matched_iou == pytest.approx(expected)
    assert match_instances(pred, truth, threshold=0.7).tp == 0
    assert pixel_error(pred, truth) == pytest.approx(40 / 900)


def test_hand_computed_iou_and_dice():
    truth = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    pred = np.array([[0, 1, 1, 0], [0, 1, 1, 0]])
    assert iou(pred, truth) == pytest.approx(2 / 6)
    assert dice(pred, truth) == pytest.approx(4 / 8)
    assert iou(pred > 0, truth > 0) == pytest.approx(2 / 6)


def test_empty_images_agree_perfectly():
    empty = np.zeros((5, 5), dtype=int)
    assert iou(empty, empty) == dice(empty, empty) == f1(empty, empty) == 1.0
    assert average_precision(empty, empty) == {0.5: 1.0, 0.75: 1.0}
    assert np.isnan(match_instances(empty, empty).mean_matched_iou)


def test_low_threshold_matching_is_one_to_one():
    truth = np.zeros((10, 12), dtype=int)
    truth[:, :6], truth[:, 6:] = 1, 2
    pred = np.zeros_like(truth)
    pred[:, 2:10] = 5
    result = match_instances(pred, truth, threshold=0.1)
    assert (result.tp, result.fp, result.fn) == (1, 0, 1)
    assert result.mean_matched_iou == pytest.approx(40 / 100)
    assert match_instances(pred, truth, threshold=0.0).threshold == 0.0


def brute_force_rand_error(pred, truth):
    pred, truth = pred.ravel(), truth.ravel()
    disagree = [
        (pred[i] == pred[j]) != (truth[i] == truth[j]) for i, j in itertools.combinations(range(pred.size), 2)
    ]
    return np.mean(disagree)


@pytest.mark.parametrize("seed", range(5))
def test_rand_error_matches_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    pred, truth = rng.integers(0, 4, size=(2, 6, 5))
    assert rand_error(pred, truth) == pytest.approx(brute_force_rand_error(pred, truth))
    assert evaluate(pred, truth)["rand_error"] == pytest.approx(brute_force_rand_error(pred, truth))


def test_rand_error_of_a_single_pixel_is_zero():
    assert rand_error(np.ones((1, 1), dtype=int), np.zeros((1, 1), dtype=int)) == 0.0


def test_works_in_3d():
    truth = np.zeros((4, 10, 10), dtype=int)
    truth[1:3, 2:8, 2:8] = 9
    assert evaluate(truth, truth)["ap75"] == 1.0


@pytest.mark.parametrize(
    ("pred", "truth", "match"),
    [
        (np.zeros((4, 4), int), np.zeros((4, 5), int), r"same shape, got pred \(4, 4\) and truth \(4, 5\)"),
        (np.full((4, 4), 0.5), np.zeros((4, 4), int), "pred must hold integers"),
        (np.zeros((4, 4), int), np.full((4, 4), np.nan, np.float32), "truth must hold integers"),
        (-np.ones((4, 4), int), np.zeros((4, 4), int), "pred must not be negative"),
        (np.zeros((0, 4), int), np.zeros((0, 4), int), r"pred and truth are empty \(shape \(0, 4\)\)"),
    ],
)
def test_invalid_inputs_are_refused(pred, truth, match):
    for metric in (evaluate, iou, match_instances):
        with pytest.raises(ValueError, match=match):
            metric(pred, truth)


@pytest.mark.parametrize("threshold", [-0.1, 1.0])
def test_invalid_threshold_is_refused(threshold):
    truth = grid_of_squares(2)
    with pytest.raises(ValueError, match="threshold must be an IoU in"):
        match_instances(truth, truth, threshold=threshold)
