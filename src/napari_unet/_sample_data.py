"""napari sample data: the bundled synthetic nuclei image and its ground truth."""

from __future__ import annotations


def sample_nuclei_layers():
    """``[(image, kwargs, "image"), (labels, kwargs, "labels")]`` for napari's File > Open Sample."""
    from .sample_data import sample_nuclei

    image, truth = sample_nuclei()
    return [
        (image, {"name": "nuclei"}, "image"),
        (truth, {"name": "nuclei ground truth", "visible": False}, "labels"),
    ]
