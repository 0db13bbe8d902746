"""Batch segment dock widget: every (or the selected) image layer, stacks plane by plane."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Select
from napari.layers import Image

from ._common import (AUTO, OWNER_KEY, ModelPicker, RunControls, WorkerOwner, device_choices, image_data,
                      layers_of, report, report_error, resolve_precision, show_owned)
from .segment import LABELS_ROLE, PRECISIONS, SPLIT_CHOICES, SPLIT_TOOLTIP


@dataclass(frozen=True)
class ImageLabelled:
    """All planes of one image are done: its labels, equal to :func:`napari_unet.segment`."""

    name: str
    labels: np.ndarray
    done: int
    total: int


@dataclass(frozen=True)
class PlaneDone:
    """Progress: ``done`` of ``total`` planes over all images."""

    done: int
    total: int


def batch_job(items, model, options: dict):
    """Worker body: segment each ``(name, image, rgb)`` plane by plane.

    Yields a PlaneDone after every plane (cancel takes effect there) and an ImageLabelled
    after every image.
    """
    from ..images import describe_image
    from ..instances import stack_planes
    from ..predict import segment

    layouts = [describe_image(image, rgb=rgb) for _, image, rgb in items]
    total, done = sum(layout.planes for layout in layouts), 0
    for (name, image, rgb), layout in zip(items, layouts):
        planes = []
        for index in range(layout.planes):
            plane = layout.plane(image, index) if layout.stacked else image
            planes.append(segment(plane, model, rgb=layout.rgb, **options))
            done += 1
            yield PlaneDone(done, total)
        yield ImageLabelled(name, stack_planes(planes) if layout.stacked else planes[0], done, total)


def file_name(layer_name: str) -> str:
    """``<layer name>_labels.tif`` with characters that are unsafe in file names replaced."""
    return re.sub(r"[^\w.-]+", "_", layer_name).strip("._") + "_labels.tif"


class BatchWidget(WorkerOwner, Container):
    """Dock widget: segment many images into ``<name> labels`` layers, optionally saved as TIFF."""

    def __init__(self, napari_viewer):
        self.viewer = napari_viewer
        self.images = Select(label="images", choices=self._choices,
                             tooltip="none selected: every image layer")
        self.model = ModelPicker()
        self.device = ComboBox(label="device", choices=device_choices(), value=AUTO)
        self.precision = ComboBox(label="precision", choices=PRECISIONS, value=AUTO)
        self.split = ComboBox(label="split touching", choices=SPLIT_CHOICES, value="distance", tooltip=SPLIT_TOOLTIP)
        self.save = CheckBox(text="save each result as TIFF", value=False)
        self.folder = FileEdit(label="folder", mode="d")
        self.controls = RunControls("Segment all")
        super().__init__(widgets=[self.images, self.model, self.split, self.device, self.precision, self.save,
                                  self.folder, self.controls])
        events = napari_viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self.images.reset_choices)
        self.controls.run.changed.connect(self.run)
        self.controls.cancel.changed.connect(self.cancel)
        self.native.destroyed.connect(self._stop_on_close)

    def source_layers(self) -> list[Image]:
        """Image layers to segment: not the probabilities, weights or previews made by this plugin."""
        return [layer for layer in layers_of(self.viewer, Image) if OWNER_KEY not in layer.metadata]

    def _choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.source_layers()]

    def run(self, *_) -> None:
        """Check the inputs (explained before anything starts), then segment in a worker."""
        layers = list(self.images.value) or self.source_layers()
        try:
            if not layers:
                raise ValueError("no image layer to segment: open images first")
            folder = Path(self.folder.value) if self.save.value else None
            if folder is not None and not folder.is_dir():
                raise ValueError(f"folder {str(folder)!r} does not exist: choose an existing folder")
            device = self.device.value
            model = self.model.load(device)
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Batch segment")
            return
        self._folder = folder
        items = [(layer.name, image_data(layer), layer.rgb) for layer in layers]
        options = dict(device=device, precision=resolve_precision(self.precision.value, device),
                       seeds=self.split.value)
        self.controls.progress.value = 0
        self.controls.status.value = f"segmenting {len(items)} image(s)…"
        self.start_job("Batch segment", batch_job, items, model, options, on_yield=self._show)

    def _show(self, item) -> None:
        """Main thread: move the progress bar; add (or update) a finished image's layer."""
        self.controls.progress.max = item.total
        self.controls.progress.value = item.done
        if not isinstance(item, ImageLabelled):
            return
        show_owned(self.viewer, LABELS_ROLE, item.name, f"{item.name} labels", item.labels)
        if self._folder is not None:
            from ..io_images import write_tiff

            try:
                write_tiff(self._folder / file_name(item.name), item.labels)
            except (ValueError, OSError) as error:
                report_error(error, f"Batch segment: saving {item.name}")
        self.controls.status.value = f"{item.name}: done ({item.done}/{item.total} planes)"
        if item.done == item.total:
            report(f"Batch segment: {item.total} plane(s) done")
