"""Batch segment dock widget: every (or the selected) image layer, stacks plane by plane."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, FileEdit, Select
from napari.layers import Image

from ..jobs.layers import label_paths, saved_where, segment_batch
from . import _tooltips as tips
from ._controls import Advanced, ScrollingDock
from ._image_options import ImageOptions
from ._layers import OWNER_KEY, image_data, layer_options, layers_of, show_owned
from ._registry import ModelPicker
from ._worker import RunControls, WorkerOwner, report, report_error
from .segment import LABELS_ROLE, PRECISIONS, SPLIT_CHOICES, LabellingFields


class BatchWidget(WorkerOwner, ScrollingDock):
    """Dock widget: segment many images into ``<name> labels`` layers, optionally saved as TIFF."""

    def __init__(self, napari_viewer):
        from ..devices import available_devices

        self.viewer = napari_viewer
        self.images = Select(label="images", choices=self._choices, tooltip=tips.IMAGES)
        self.images.native.setMaximumHeight(120)  # a long list scrolls on its own
        self.model = ModelPicker()
        self.image_options = ImageOptions()
        self.image_options.estimate.visible = False  # each image's size is estimated on its own
        self.split = ComboBox(label="split touching", choices=SPLIT_CHOICES, value="distance", tooltip=tips.SPLIT)
        self.save = CheckBox(text="save each result as TIFF", value=False, tooltip=tips.SAVE)
        self.folder = FileEdit(label="folder", mode="d", visible=False, tooltip=tips.FOLDER)
        self.device = ComboBox(label="device", choices=available_devices(), value="auto", tooltip=tips.DEVICE)
        self.precision = ComboBox(label="precision", choices=PRECISIONS, value="auto", tooltip=tips.PRECISION)
        self.flips = CheckBox(text="average mirror images (4x slower)", value=False, tooltip=tips.FLIPS)
        self.labelling = LabellingFields()
        self.advanced = Advanced([*self.labelling.widgets, self.device, self.precision, self.flips],
                                 tooltip=tips.ADVANCED)
        self.controls = RunControls("Segment all", tips.BATCH_RUN)
        super().__init__(widgets=[self.images, self.model, self.image_options, self.split, self.save, self.folder,
                                  self.advanced, self.controls])
        # asked for a folder when images made in Python have nowhere of their own; tests swap in an answer
        self.ask_folder = self._ask_folder
        events = napari_viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self.images.reset_choices)
        self.save.changed.connect(lambda on: setattr(self.folder, "visible", on))
        self.controls.run.changed.connect(self.run)
        self.controls.cancel.changed.connect(self.cancel)
        self.native.destroyed.connect(self._stop_on_close)

    def source_layers(self) -> list[Image]:
        """Image layers to segment: not the probabilities, weights or previews made by this plugin."""
        return [layer for layer in layers_of(self.viewer, Image) if OWNER_KEY not in layer.metadata]

    def _choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.source_layers()]

    def _ask_folder(self, names: list[str]) -> Path | None:
        from qtpy.QtWidgets import QFileDialog

        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        chosen = QFileDialog.getExistingDirectory(self.native, f"Folder for the labels of {shown}")
        return Path(chosen) if chosen else None

    def save_paths(self, layers) -> dict[str, Path] | None:
        """Where each layer's labels are written: the chosen folder, else the folder of the
        image's own file, else a folder asked for. None: the user declined to choose one.

        Never the current directory by default: an empty folder field is not ".".
        """
        typed = str(self.folder.line_edit.value).strip()
        sources = {layer.name: getattr(layer.source, "path", None) for layer in layers}
        return label_paths(sources, folder=typed or None, ask=self.ask_folder)

    def config(self):
        """The SegmentConfig the widget's values say (each image's axes are added per image)."""
        from ..config import SegmentConfig

        return SegmentConfig(device=self.device.value, precision=self.precision.value, seeds=self.split.value,
                             flips=self.flips.value, **self.labelling.options(), **self.image_options.options())

    def run(self, *_) -> None:
        """Check the inputs (explained before anything starts), then segment in a worker."""
        layers = list(self.images.value) or self.source_layers()
        try:
            if not layers:
                raise ValueError("no image layer to segment: open images first")
            items = [(layer.name, image_data(layer), layer_options(self.viewer, layer)) for layer in layers]
            targets = self.save_paths(layers) if self.save.value else {}
            if targets is None:
                raise ValueError("no folder chosen for the TIFF files: choose a folder (or untick 'save')")
            config = self.config()
            model = self.model.load(config.device)
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Batch segment", self.controls.status)
            return
        self._targets, self._written = targets, []
        self.controls.progress.value = 0
        self.controls.status.value = f"segmenting {len(items)} image(s)…"
        self.start_job("Batch segment", segment_batch, items, model, config, on_yield=self._show)

    def _show(self, item) -> None:
        """Main thread: move the progress bar; add (or update) a finished image's layer, save it."""
        from ..events import ImageLabelled, Notice

        if isinstance(item, Notice):
            report(f"Batch segment: {item.message}", self.controls.status)
            return
        self.controls.progress.max = item.total
        self.controls.progress.value = item.done
        if not isinstance(item, ImageLabelled):
            return
        show_owned(self.viewer, LABELS_ROLE, item.name, f"{item.name} labels", item.labels)
        status = f"{item.name}: done ({item.done} of {item.total} planes)"
        path = self._targets.get(item.name)
        if path is not None:
            from ..io import write_tiff

            try:
                write_tiff(path, item.labels)
            except (ValueError, OSError) as error:
                report_error(error, f"Batch segment: saving {item.name}", self.controls.status)
                return
            self._written.append(path)
            status += f", saved as {path}"
        self.controls.status.value = status
        if item.done == item.total:
            saved = f"; labels saved: {saved_where(self._written)}" if self._written else ""
            report(f"Batch segment: {item.total} plane(s) done{saved}", self.controls.status)

