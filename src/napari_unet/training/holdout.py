"""Held-out cells: a share of the user's own annotation that fine-tuning never learns from,
so it can tell whether the tuned model is better than the one it started from.

:func:`split_held_out` takes whole annotated cells that lie together, away from the rest
(the cell farthest out in the image with the most cells, and its nearest neighbours), and
a margin of annotated background around them; training sees neither. :func:`score_held_out`
segments a window around them as :func:`napari_unet.segment` would and scores the
predictions there: AP@0.5 = TP / (TP + FP + FN), with the panoptic quality (the matched
IoUs summed over TP + FP / 2 + FN / 2) to tell apart models of equal AP. :func:`blend`
mixes the start's and the tuned weights (``TrainConfig.blend``: the held-out cells choose).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .annotations import CheckedAnnotation

# fewer annotated cells than this: nothing is held out (two or three cells would make a
# score too coarse to trust, and training would lose a large share of its examples)
MIN_CELLS = 6


@dataclass(frozen=True, eq=False)
class HeldOutCells:
    """Annotated cells fine-tuning does not learn from, in a window of one training image.

    Attributes
    ----------
    image_index : int
        Which training image (input order).
    window : (slice, slice)
        Rows and columns of the image segmented to score them (the cells with context).
    region : (h, w) ndarray of bool
        Within the window: where predictions count (the cells and a margin of background).
    labels : (h, w) ndarray of int
        Within the window: the held-out cells (0 elsewhere).
    cells : int
    """

    image_index: int
    window: tuple[slice, slice]
    region: np.ndarray
    labels: np.ndarray
    cells: int


def _cell_centres(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(labels[labels > 0])
    centres = np.array(ndimage.center_of_mass(labels > 0, labels, ids)).reshape(-1, 2)
    return ids, centres


def split_held_out(checked: list[CheckedAnnotation], fraction: float,
                   min_cells: int = MIN_CELLS) -> tuple[list[CheckedAnnotation], HeldOutCells | None]:
    """Hold out about ``fraction`` of the annotated cells, together and away from the rest.

    Returns the annotations training may use (the held-out cells and the margin around
    them no longer annotated) and the held-out cells, or the annotations unchanged and None
    when there are fewer than ``min_cells`` cells (or ``fraction`` is 0).
    """
    counts = [len(np.unique(item.labels[item.labels > 0])) for item in checked]
    total = sum(counts)
    wanted = int(round(fraction * total))
    if fraction <= 0 or total < min_cells or wanted < 1:
        return checked, None
    index = int(np.argmax(counts))
    item = checked[index]
    ids, centres = _cell_centres(item.labels)
    wanted = min(max(2, wanted), len(ids) - (1 if len(checked) == 1 else 0))
    # the cell farthest from the middle of the annotation, and the cells nearest to it
    seed = int(np.argmax(np.linalg.norm(centres - centres.mean(axis=0), axis=1)))
    chosen = ids[np.argsort(np.linalg.norm(centres - centres[seed], axis=1))[:wanted]]
    cells = np.isin(item.labels, chosen)
    areas = np.bincount(item.labels[cells])
    margin = max(2, int(round(0.5 * 2 * np.sqrt(np.median(areas[areas > 0]) / np.pi))))
    others = (item.labels > 0) & ~cells
    region = (ndimage.binary_dilation(cells, iterations=margin) & item.annotated & ~others) | cells
    window = _window_around(region, 4 * margin, item.labels.shape)
    held = HeldOutCells(index, window, region[window], np.where(cells, item.labels, 0)[window], len(chosen))
    remaining = dataclasses.replace(item, labels=np.where(region, 0, item.labels), annotated=item.annotated & ~region)
    return [remaining if i == index else other for i, other in enumerate(checked)], held


def _window_around(mask: np.ndarray, context: int, shape) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    return (slice(max(0, rows.min() - context), min(shape[0], rows.max() + 1 + context)),
            slice(max(0, cols.min() - context), min(shape[1], cols.max() + 1 + context)))


def score_held_out(model, held: HeldOutCells, image, *, diameter: float | None, device, precision: str) -> dict:
    """How well ``model`` segments the held-out cells of ``image`` (the training image they
    come from, as given to fine-tuning).

    Predicted objects count when most of their pixels lie in the held-out region.

    Returns
    -------
    dict
        ``cells``, ``found`` (matched at IoU > 0.5), ``false`` (other objects in the region),
        ``ap50`` and ``pq``.
    """
    from ..inference.segment import segment
    from ..metrics import match_instances

    crop = np.asarray(image)[held.window]
    predicted = segment(crop, model, diameter=diameter, device=str(device), precision=precision)
    ids = np.unique(predicted[predicted > 0])
    inside = ndimage.sum(held.region, predicted, ids) if ids.size else np.zeros(0)
    sizes = ndimage.sum(np.ones_like(held.region), predicted, ids) if ids.size else np.zeros(0)
    counted = ids[inside >= 0.5 * sizes]
    predicted = np.where(np.isin(predicted, counted), predicted, 0)
    result = match_instances(predicted.astype(np.int64), held.labels.astype(np.int64), threshold=0.5)
    total = result.tp + result.fp + result.fn
    matched_iou = result.mean_matched_iou * result.tp if result.tp else 0.0
    return {"cells": held.cells, "found": result.tp, "false": result.fp,
            "ap50": result.tp / total if total else 1.0,
            "pq": matched_iou / (result.tp + 0.5 * (result.fp + result.fn)) if total else 1.0}


def better(after: dict, before: dict) -> bool:
    """Whether the ``after`` scores beat ``before``: a higher AP@0.5, or the same with a
    higher panoptic quality."""
    return (after["ap50"], after["pq"]) > (before["ap50"], before["pq"])


# TrainConfig.blend: how far from the start toward the tuned weights the blends lie
BLEND_SHARES = (0.5,)


def blend(start: dict, tuned: dict, share: float) -> dict[str, torch.Tensor]:
    """The weights ``share`` of the way from ``start`` to ``tuned`` (counters: the tuned ones)."""
    return {key: start[key] + share * (value - start[key]) if value.is_floating_point() else value
            for key, value in tuned.items()}


def held_out_summary(held: dict) -> str:
    """One sentence on the held-out cells: AP@0.5 before and after, and which model is kept."""
    change = f"on the {held['cells']} held-out cells AP@0.5 {held['before']['ap50']:.2f} -> {held['after']['ap50']:.2f}"
    if held["improved"]:
        share = held.get("blend", 1.0)
        blended = "" if share == 1.0 else f", blended {share:.0%} of the way from the start,"
        return f"{change}: the fine-tuned model{blended} is kept"
    if held["kept"] == "fine-tuned":
        return f"{change}, not better: the fine-tuned model is kept anyway"
    return (f"{change}, not better: the starting model is kept (annotate more cells, or ask to keep the "
            "fine-tuned one)")
