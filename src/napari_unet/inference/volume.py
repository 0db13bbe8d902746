"""Z stacks labelled as one volume: the planes' probabilities, stacked, go through the 3-D
version of the labelling (distance to the predicted boundary in 3-D with the z spacing
``config.z_step``, default 1; one seed per cell; a 3-D watershed), so a cell's extent in z
decides what is one object instead of a plane-to-plane overlap rule.

The network still sees one plane at a time; only the labelling is 3-D. Linking the planes'
own labels (:func:`.labels.stitch_planes`) remains for chunked planes, for stacks too large
to hold the probabilities of, and when asked for (``z_labelling="link"``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import SegmentConfig
from .labels import labels_to_grid, probabilities_to_labels, sequential_labels
from .reading import Reading

# network-grid voxels up to which a stack is labelled as one volume (the probabilities are
# held as float16: 6 bytes a voxel, and the labelling's distance map 4 more)
VOLUME_VOXELS = 2**27


def labels_as_volume(reading: Reading, config: SegmentConfig, chunked: bool, planes: int) -> bool:
    """Whether this Z stack's objects come from :func:`label_volume` (all planes, unchunked)."""
    return (reading.layout.stack_axis == "Z" and config.stitch and config.z_labelling == "volume"
            and not chunked and planes == reading.layout.planes > 1)


def volume_too_large(reading: Reading) -> str | None:
    """The notice when the stack's probabilities are too many voxels to label as a volume."""
    voxels = reading.layout.planes * int(np.prod(reading.network_shape))
    if voxels <= VOLUME_VOXELS:
        return None
    return (f"the stack is {voxels / 1e6:.0f} M voxels at the model's scale (above {VOLUME_VOXELS / 1e6:.0f} M): "
            "its planes' cells are linked by overlap instead of labelled as one volume")


def ball_voxels(area: float, z_step: float) -> int:
    """The voxels of a ball whose equator has ``area`` pixels, in planes ``z_step`` pixels
    apart: a model's smallest object (an area, calibrated in 2-D) as a volume."""
    radius = np.sqrt(area / np.pi)
    return int(round(4 / 3 * np.pi * radius**3 / z_step))


def label_volume(planes: list[np.ndarray], reading: Reading, config: SegmentConfig) -> np.ndarray:
    """Network-grid probabilities of every plane, in order -> 3-D labels on the input grid.

    ``config.min_size`` counts voxels; left at None, the model's smallest area becomes the
    ball of that equator (:func:`ball_voxels`), so the fragments of a noisy stack that no
    seed reached are not kept as cells."""
    settings = reading.labelling(config)
    z_step = (config.z_step or 1.0) * reading.factor
    if config.min_size is None:
        settings = dataclasses.replace(settings, min_size=ball_voxels(settings.min_size, z_step))
    probabilities = np.stack(planes, axis=1)
    labels = probabilities_to_labels(probabilities, seeds=config.seeds, z_step=z_step, **dataclasses.asdict(settings))
    if not reading.rescaled:
        return labels
    grid = [labels_to_grid(plane, 1 - probabilities[0, index].astype(np.float32), reading.layout.plane_shape,
                           reading.factor, settings.foreground) for index, plane in enumerate(labels)]
    return sequential_labels(np.stack(grid), config.min_size or 0)
