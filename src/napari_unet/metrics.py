"""Segmentation quality: pixel overlap, instance matching and the ISBI error measures.

All functions compare a prediction with a ground truth of the same shape (any number of
dimensions). Label images hold 0 for background and one integer id per object; ids need
not be consecutive. Instance overlaps come from one contingency table of the two label
images (the counts of every co-occurring id pair), so the cost is linear in the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .checks import check_labels


def _check_pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = check_labels(pred, "pred"), check_labels(truth, "truth")
    if pred.shape != truth.shape:
        raise ValueError(f"pred and truth must have the same shape, got pred {pred.shape} and truth {truth.shape}")
    if pred.size == 0:
        raise ValueError(f"pred and truth are empty (shape {pred.shape}); pass images with pixels")
    return pred, truth


@dataclass(frozen=True)
class _Overlap:
    """Contingency table of two label images, stored sparsely.

    ``pred_index`` / ``truth_index`` number the ids of each image 0..n-1 (background, if
    present, first); ``pair_*`` list the co-occurring index pairs and their pixel counts.
    """

    pred_ids: np.ndarray
    truth_ids: np.ndarray
    pred_sizes: np.ndarray
    truth_sizes: np.ndarray
    pair_pred: np.ndarray
    pair_truth: np.ndarray
    pair_counts: np.ndarray

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray) -> "_Overlap":
        pred_ids, pred_index, pred_sizes = np.unique(pred, return_inverse=True, return_counts=True)
        truth_ids, truth_index, truth_sizes = np.unique(truth, return_inverse=True, return_counts=True)
        pair_keys, pair_counts = np.unique(
            pred_index.ravel().astype(np.int64) * len(truth_ids) + truth_index.ravel(), return_counts=True
        )
        pair_pred, pair_truth = np.divmod(pair_keys, len(truth_ids))
        return cls(pred_ids, truth_ids, pred_sizes, truth_sizes, pair_pred, pair_truth, pair_counts)

    @property
    def n_pred(self) -> int:
        return int(np.count_nonzero(self.pred_ids > 0))

    @property
    def n_truth(self) -> int:
        return int(np.count_nonzero(self.truth_ids > 0))


@dataclass(frozen=True)
class MatchResult:
    """Outcome of matching predicted to true objects at one IoU threshold.

    Attributes
    ----------
    tp, fp, fn : int
        Matched pairs, unmatched predictions, unmatched true objects.
    mean_matched_iou : float
        Mean IoU of the matched pairs (NaN when nothing matched).
    threshold : float
        A pair matches when its IoU is strictly greater than this.
    """

    tp: int
    fp: int
    fn: int
    mean_matched_iou: float
    threshold: float


def _match(overlap: _Overlap, threshold: float) -> MatchResult:
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be an IoU in [0, 1), got {threshold!r}")
    objects = (overlap.pred_ids[overlap.pair_pred] > 0) & (overlap.truth_ids[overlap.pair_truth] > 0)
    rows, columns = overlap.pair_pred[objects], overlap.pair_truth[objects]
    intersection = overlap.pair_counts[objects]
    union = overlap.pred_sizes[rows] + overlap.truth_sizes[columns] - intersection
    pair_iou = intersection / union
    candidates = pair_iou > threshold
    rows, columns, pair_iou = rows[candidates], columns[candidates], pair_iou[candidates]
    if threshold < 0.5 and len(pair_iou):
        # Below 0.5 an object can exceed the threshold with several partners: pick the
        # one-to-one assignment of largest total IoU among the candidate pairs.
        row_ids, row_index = np.unique(rows, return_inverse=True)
        column_ids, column_index = np.unique(columns, return_inverse=True)
        iou_matrix = np.zeros((len(row_ids), len(column_ids)))
        iou_matrix[row_index, column_index] = pair_iou
        assigned_rows, assigned_columns = linear_sum_assignment(iou_matrix, maximize=True)
        pair_iou = iou_matrix[assigned_rows, assigned_columns]
        pair_iou = pair_iou[pair_iou > threshold]
    tp = len(pair_iou)
    return MatchResult(
        tp=tp,
        fp=overlap.n_pred - tp,
        fn=overlap.n_truth - tp,
        mean_matched_iou=float(pair_iou.mean()) if tp else float("nan"),
        threshold=float(threshold),
    )


def _average_precision(result: MatchResult) -> float:
    total = result.tp + result.fp + result.fn
    return result.tp / total if total else 1.0


def _f1(result: MatchResult) -> float:
    total = 2 * result.tp + result.fp + result.fn
    return 2 * result.tp / total if total else 1.0


def match_instances(pred, truth, *, threshold: float = 0.5) -> MatchResult:
    """Match predicted to true objects one-to-one by intersection over union.

    Parameters
    ----------
    pred, truth : ndarray of int
        Instance label images of the same shape, 0 for background.
    threshold : float
        A pair matches when its IoU is strictly greater; in [0, 1). At 0.5 and above a
        match is unique; below, the assignment maximising the summed IoU is used
        (``scipy.optimize.linear_sum_assignment``).

    Returns
    -------
    result : MatchResult
    """
    pred, truth = _check_pair(pred, truth)
    return _match(_Overlap.of(pred, truth), threshold)


def average_precision(pred, truth, thresholds=(0.5, 0.75)) -> dict[float, float]:
    """Average precision ``TP / (TP + FP + FN)`` per IoU threshold (DSB 2018 / StarDist).

    Parameters
    ----------
    pred, truth : ndarray of int
        Instance label images of the same shape, 0 for background.
    thresholds : sequence of float
        IoU thresholds in [0, 1).

    Returns
    -------
    ap : dict of float to float
        Threshold -> AP in [0, 1]; 1.0 when both images have no objects.
    """
    pred, truth = _check_pair(pred, truth)
    overlap = _Overlap.of(pred, truth)
    return {float(t): _average_precision(_match(overlap, t)) for t in thresholds}


def f1(pred, truth, *, threshold: float = 0.5) -> float:
    """F1 score ``2 TP / (2 TP + FP + FN)`` of the instance matching; 1.0 if both are empty."""
    return _f1(match_instances(pred, truth, threshold=threshold))


def iou(pred, truth) -> float:
    """Intersection over union of the foregrounds ``pred > 0`` and ``truth > 0``.

    Returns 1.0 when both foregrounds are empty.
    """
    pred, truth = _check_pair(pred, truth)
    pred, truth = pred > 0, truth > 0
    union = np.count_nonzero(pred | truth)
    return float(np.count_nonzero(pred & truth) / union) if union else 1.0


def dice(pred, truth) -> float:
    """Dice coefficient ``2 |P & T| / (|P| + |T|)`` of the foregrounds; 1.0 if both are empty."""
    pred, truth = _check_pair(pred, truth)
    pred, truth = pred > 0, truth > 0
    total = np.count_nonzero(pred) + np.count_nonzero(truth)
    return float(2 * np.count_nonzero(pred & truth) / total) if total else 1.0


def pixel_error(pred, truth) -> float:
    """Fraction of pixels whose foreground/background assignment differs (ISBI 2012)."""
    pred, truth = _check_pair(pred, truth)
    return float(np.mean((pred > 0) != (truth > 0)))


def _rand_error(overlap: _Overlap) -> float:
    def pairs(counts):
        counts = counts.astype(np.float64)
        return float(np.sum(counts * (counts - 1) / 2))

    n_pixels = overlap.pred_sizes.sum()
    all_pairs = n_pixels * (n_pixels - 1) / 2
    if all_pairs == 0:
        return 0.0
    same_in_both = pairs(overlap.pair_counts)
    disagreeing = pairs(overlap.pred_sizes) + pairs(overlap.truth_sizes) - 2 * same_in_both
    return float(disagreeing / all_pairs)


def rand_error(pred, truth) -> float:
    """``1 - Rand index`` over all pixel pairs (ISBI 2012), background being one segment.

    A pair disagrees when it lies in one segment in one image and in two in the other.
    Counted from the contingency table, in memory linear in the pixels.
    """
    pred, truth = _check_pair(pred, truth)
    return _rand_error(_Overlap.of(pred, truth))


def evaluate(pred, truth) -> dict[str, float]:
    """All metrics of this module for one prediction, e.g. for ``napari-unet evaluate``.

    Parameters
    ----------
    pred, truth : ndarray of int
        Instance label images of the same shape, 0 for background.

    Returns
    -------
    metrics : dict of str to float
        ``ap50``, ``ap75``, ``f1`` (at IoU 0.5), ``iou``, ``dice``, ``pixel_error``,
        ``rand_error``, ``n_pred`` and ``n_truth`` (object counts).
    """
    pred, truth = _check_pair(pred, truth)
    overlap = _Overlap.of(pred, truth)
    match50 = _match(overlap, 0.5)
    return {
        "ap50": _average_precision(match50),
        "ap75": _average_precision(_match(overlap, 0.75)),
        "f1": _f1(match50),
        "iou": iou(pred, truth),
        "dice": dice(pred, truth),
        "pixel_error": pixel_error(pred, truth),
        "rand_error": _rand_error(overlap),
        "n_pred": float(overlap.n_pred),
        "n_truth": float(overlap.n_truth),
    }
