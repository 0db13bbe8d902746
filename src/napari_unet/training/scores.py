"""How well a model does while it trains: on held-out images, and on its own annotations."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import TrainConfig
from ..events import PlaneDone
from ..inference.labels import labels_to_classes, probabilities_to_labels
from ..models import SegmentationModel
from .annotations import training_weight_map


def validate(model: SegmentationModel, pairs, config: TrainConfig, diameter: float | None = None) -> dict:
    """AP@0.5, IoU and weighted loss of ``model`` on fully annotated ``(image, labels)`` pairs.

    Images are predicted with their cells' ``diameter`` (the scale the model trains at).

    Returns
    -------
    dict of str to float
        ``loss`` (weighted cross entropy as in training), ``ap50`` (TP / (TP + FP + FN) at
        IoU 0.5) and ``iou`` (foreground IoU), each the mean over the pairs.
    """
    from ..inference.segment import iter_segment
    from ..metrics import evaluate

    scores = {"loss": [], "ap50": [], "iou": []}
    for image, truth in pairs:
        # labelled as segment() labels them (the model's calibrated labelling), in one pass
        # that also keeps the probabilities for the loss; never chunk by chunk (no probabilities)
        done = [event for event in iter_segment(image, model, device=str(model.device), precision=config.precision,
                                                diameter=diameter or model.diameter, keep_probabilities=True,
                                                chunked_above=2**62)
                if isinstance(event, PlaneDone)][0]
        probabilities = done.probabilities
        classes = labels_to_classes(truth)
        weights = training_weight_map(truth, config=config)
        picked = np.take_along_axis(probabilities, classes[None].astype(np.int64), axis=0)[0]
        scores["loss"].append(float((-np.log(np.clip(picked, 1e-7, 1)) * weights).sum() / weights.sum()))
        result = evaluate(done.labels, truth)
        scores["ap50"].append(result["ap50"])
        scores["iou"].append(result["iou"])
    return {key: float(np.mean(values)) for key, values in scores.items()}


def own_annotation_scores(model: SegmentationModel, annotations, device, precision: str) -> dict:
    """How well ``model`` segments its own training annotations (inside their regions).

    Returns ``cells`` (annotated cells), ``matched`` (of them found at IoU > 0.5) and
    ``ap50``; the annotations' pixels are network input already (normalised, at the
    training scale).
    """
    from ..inference.appearance import Appearance, IntensityRange
    from ..inference.runner import TileRunner, TileSource, plan_tiling, predict_plane
    from ..metrics import match_instances

    identity = IntensityRange(low=0.0, high=1.0)
    cells = matched = false = 0
    for annotation in annotations:
        plane = np.moveaxis(annotation.image, 0, -1)
        source = TileSource(plane, Appearance(colour=True, inverted=False), identity, model.config.in_channels)
        plan = plan_tiling(model.network, plane.shape[:2], device, precision, None, None, None)
        probabilities = predict_plane(source, TileRunner(model, device, precision, plan.batch_size), plan,
                                      model.config.out_channels)
        found = np.where(annotation.annotated,
                         probabilities_to_labels(probabilities, **dataclasses.asdict(model.labelling)), 0)
        truth = annotation.labels
        result = match_instances(found.astype(np.int64), truth.astype(np.int64), threshold=0.5)
        cells, matched, false = cells + result.tp + result.fn, matched + result.tp, false + result.fp
    total = cells + false
    return {"cells": int(cells), "matched": int(matched), "ap50": float(matched / total) if total else 0.0}
