"""Calibration of a pretrained model on held-out annotated images: the size estimate's
systematic error and the labelling settings, both stored in the model file."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import Labelling
from ..datasets import AnnotatedImage
from ..models import SegmentationModel


def calibrate_diameter(model: SegmentationModel, samples: list[AnnotatedImage]) -> float:
    """The model's diameter bias: the median, over ``samples`` (annotated images as they
    are), of the diameter its probes measure over the annotated median diameter."""
    from ..config import PredictConfig
    from ..inference.diameter import choose_diameter, probe_scales
    from ..inference.reading import read_for_model

    ratios = []
    for sample in samples:
        reading = read_for_model(sample.image, model, PredictConfig(diameter=model.diameter, device="cpu"))
        reading = dataclasses.replace(reading, diameter=None, factor=1.0)
        measured = choose_diameter(probe_scales(reading.input_plane(sample.image), reading), model.diameter,
                                   rule=model.diameter_rule)
        if measured is not None and np.isfinite(sample.diameter):
            ratios.append(measured / sample.diameter)
    return float(np.median(ratios)) if ratios else 1.0


# candidate values of each labelling setting (Labelling), searched one setting at a time
LABELLING_GRID = {
    "foreground": (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.96),
    "threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
    "split_depth": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    "min_size": (5, 15, 30, 50, 80),
}


def calibrate_labelling(model: SegmentationModel, samples: list[AnnotatedImage], *, grid=None,
                        rounds: int = 2) -> Labelling:
    """The labelling settings with the best mean of AP@0.5 and AP@0.75 on ``samples``
    (annotated images as they are, each segmented at its true diameter).

    A coordinate search from ``model.labelling``: each setting in turn takes the value of
    its ``grid`` (default :data:`LABELLING_GRID`) that scores best with the others held,
    ``rounds`` times over. The probabilities are predicted once per image.

    Why each matters: a loss that balances the classes weighs the rare boundary pixels
    heavily, so the network paints the boundary a little outside the cells (a stricter
    foreground threshold draws them back); textured nuclei have several distance maxima
    (a deeper split depth keeps them whole); specks of a few pixels are noise at the
    model's scale (a minimum size removes them).
    """
    from ..config import PredictConfig, SegmentConfig
    from ..inference.reading import read_for_model
    from ..inference.runner import predict_plane
    from ..inference.segment import label_plane
    from ..metrics import average_precision

    grid = LABELLING_GRID if grid is None else grid
    predicted = []
    for sample in samples:
        reading = read_for_model(sample.image, model, PredictConfig(diameter=sample.diameter, device="cpu"))
        plan = reading.tile_plan()
        probabilities = predict_plane(reading.source(reading.input_plane(sample.image)),
                                      reading.runner(plan.batch_size), plan, model.config.out_channels)
        predicted.append((probabilities, reading, sample.labels.astype(np.int64)))
    scores: dict[Labelling, float] = {}
    config = SegmentConfig()

    def score(settings: Labelling) -> float:
        if settings not in scores:
            total = 0.0
            for probabilities, reading, truth in predicted:
                reading = dataclasses.replace(reading, model=dataclasses.replace(reading.model, labelling=settings))
                ap = average_precision(label_plane(probabilities, reading, config).astype(np.int64), truth,
                                       thresholds=(0.5, 0.75))
                total += (ap[0.5] + ap[0.75]) / 2
            scores[settings] = total
        return scores[settings]

    best = model.labelling
    for _ in range(rounds):
        for name, values in grid.items():
            candidates = sorted(set(values) | {getattr(best, name)})
            best = max((dataclasses.replace(best, **{name: value}) for value in candidates), key=score)
    return best
