"""Batch segment dock widget: every (or the selected) image layer, stacks plane by plane."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Select
from napari.layers import Image

from ._image_options import ImageOptions
from ._layers import OWNER_KEY, image_data, layer_axes, layers_of, show_owned
from ._registry import ModelPicker
from ._worker import RunControls, WorkerOwner, report, report_error
from .segment import LABELS_ROLE, SPLIT_CHOICES, SPLIT_TOOLTIP


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


def batch_job(items, model, config):
    """Worker body: segment each ``(name, image, axes)`` with :func:`napari_unet.iter_segment`.

    Yields a PlaneDone after every plane (cancel takes effect there) and an ImageLabelled
    after every image.
    """
    from ..events import PlaneDone as CorePlaneDone
    from ..events import SegmentDone
    from ..inference.layout import describe_image
    from ..inference.segment import iter_segment

    total = sum(describe_image(image, axes=axes).planes for _, image, axes in items)
    done = 0
    for name, image, axes in items:
        for event in iter_segment(image, model, config.replace(axes=axes)):
            if isinstance(event, CorePlaneDone):
                done += 1
                yield PlaneDone(done, total)
            elif isinstance(event, SegmentDone):
                yield ImageLabelled(name, event.labels, done, total)


def file_name(layer_name: str) -> str:
    """``<layer name>_labels.tif`` with characters that are unsafe in file names replaced."""
    return re.sub(r"[^\w.-]+", "_", layer_name).strip("._") + "_labels.tif"


class BatchWidget(WorkerOwner, Container):
    """Dock widget: segment many images into ``<name> labels`` layers, optionally saved as TIFF."""

    def __init__(self, napari_viewer):
        self.viewer = napari_viewer
        self.images = Select(label="images", choices=self._choices,
                             tooltip="none selected: every image layer")
        from ..devices import available_devices

        self.model = ModelPicker()
        self.image_options = ImageOptions()
        self.image_options.estimate.visible = False  # each image's size is estimated on its own
        self.device = ComboBox(label="device", choices=available_devices(), value="auto")
        self.precision = ComboBox(label="precision", choices=["auto", "fp32", "bf16", "fp16"], value="auto")
        self.split = ComboBox(label="split touching", choices=SPLIT_CHOICES, value="distance", tooltip=SPLIT_TOOLTIP)
        self.save = CheckBox(text="save each result as TIFF", value=False)
        self.folder = FileEdit(label="folder", mode="d")
        self.controls = RunControls("Segment all")
        super().__init__(widgets=[self.images, self.model, self.image_options, self.split, self.device,
                                  self.precision, self.save, self.folder, self.controls])
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
        try:
            items = [(layer.name, image_data(layer), layer_axes(self.viewer, layer)) for layer in layers]
        except ValueError as error:
            report_error(error, "Batch segment")
            return
        from ..config import SegmentConfig

        config = SegmentConfig(device=device, precision=self.precision.value, seeds=self.split.value,
                               **self.image_options.options())
        self.controls.progress.value = 0
        self.controls.status.value = f"segmenting {len(items)} image(s)…"
        self.start_job("Batch segment", batch_job, items, model, config, on_yield=self._show)

    def _show(self, item) -> None:
        """Main thread: move the progress bar; add (or update) a finished image's layer."""
        self.controls.progress.max = item.total
        self.controls.progress.value = item.done
        if not isinstance(item, ImageLabelled):
            return
        show_owned(self.viewer, LABELS_ROLE, item.name, f"{item.name} labels", item.labels)
        if self._folder is not None:
            from ..io import write_tiff

            try:
                write_tiff(self._folder / file_name(item.name), item.labels)
            except (ValueError, OSError) as error:
                report_error(error, f"Batch segment: saving {item.name}")
        self.controls.status.value = f"{item.name}: done ({item.done}/{item.total} planes)"
        if item.done == item.total:
            report(f"Batch segment: {item.total} plane(s) done")
