"""Segment dock widget: pick an image and a model, watch the labels fill in tile by tile."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox
from napari.layers import Image

from ..jobs.layers import segment_with_previews
from . import _tooltips as tips
from ._controls import Advanced, ScrollingDock
from ._image_options import ImageOptions
from ._layers import LayerPicker, image_data, layer_options, show_owned, view_position
from ._registry import ModelPicker
from ._worker import RunControls, WorkerOwner, report, report_error

ACCURATE = "accurate"
LABELS_ROLE = "labels"
PROBABILITY_CLASSES = (("interior", "green"), ("boundary", "magenta"))
# how touching cells are split (napari_unet.probabilities_to_labels ``seeds``)
SPLIT_CHOICES = [("at the neck (round cells)", "distance"), ("on predicted boundary only (rods)", "interior")]
PRECISIONS = ["auto", "fp32", "bf16", "fp16"]


class LabellingFields:
    """Two folded fields that override the model's calibrated labelling; 0 keeps the model's."""

    def __init__(self):
        self.threshold = FloatSpinBox(label="cell threshold (0 = model's)", value=0.0, min=0.0, max=0.95,
                                      step=0.05, tooltip=tips.THRESHOLD)
        self.split_depth = FloatSpinBox(label="split depth px (0 = model's)", value=0.0, min=0.0, max=20.0,
                                        step=0.5, tooltip=tips.SPLIT_DEPTH)

    @property
    def widgets(self) -> list:
        return [self.threshold, self.split_depth]

    def options(self) -> dict:
        """``SegmentConfig`` fields: None (the model's value) where the field is 0."""
        return {"threshold": self.threshold.value or None, "split_depth": self.split_depth.value or None}


def prune_levels(model) -> list[str]:
    """"accurate", then "L1".."Ln-1" for a UNet++ trained with deep supervision."""
    network = model.network
    pruned = [f"L{level}" for level in network.levels if level != network.config.depth]
    return [ACCURATE] + pruned


class SegmentWidget(WorkerOwner, ScrollingDock):
    """Dock widget: image + model -> a ``<image> labels`` layer, filled while it is computed."""

    def __init__(self, napari_viewer):
        from ..devices import available_devices

        self.viewer = napari_viewer
        self.image = LayerPicker(napari_viewer, Image, "image", tooltip=tips.IMAGE)
        self.model = ModelPicker()
        self.image_options = ImageOptions()
        self.split = ComboBox(label="split touching", choices=SPLIT_CHOICES, value="distance", tooltip=tips.SPLIT)
        self.tile_size = SpinBox(label="tile size (px)", value=0, min=0, max=8192, step=64, tooltip=tips.TILE_SIZE)
        self.device = ComboBox(label="device", choices=available_devices(), value="auto", tooltip=tips.DEVICE)
        self.precision = ComboBox(label="precision", choices=PRECISIONS, value="auto", tooltip=tips.PRECISION)
        self.prune_level = ComboBox(label="UNet++ level", choices=[ACCURATE], value=ACCURATE, enabled=False,
                                    tooltip=tips.PRUNE_LEVEL)
        self.with_probabilities = CheckBox(text="also add class probabilities", value=False,
                                           tooltip=tips.PROBABILITIES)
        self.flips = CheckBox(text="average mirror images (4x slower)", value=False, tooltip=tips.FLIPS)
        self.labelling = LabellingFields()
        self.advanced = Advanced([*self.labelling.widgets, self.tile_size, self.device, self.precision,
                                  self.prune_level, self.flips, self.with_probabilities], tooltip=tips.ADVANCED)
        self.controls = RunControls("Segment", tips.SEGMENT_RUN)
        super().__init__(widgets=[self.image, self.model, self.image_options, self.split, self.advanced,
                                  self.controls])
        self.labels_layer = None
        self.controls.run.changed.connect(self.run)
        self.controls.cancel.changed.connect(self.cancel)
        self.image_options.estimate.changed.connect(self.estimate)
        self.model.choice.changed.connect(self._update_levels)
        self.model.file.changed.connect(self._update_levels)
        self.native.destroyed.connect(self._stop_on_close)
        self._update_levels()

    def _update_levels(self, *_) -> None:
        """Offer pruned levels only for a model that has them."""
        try:
            levels = prune_levels(self.model.load("cpu"))
        except (ValueError, TypeError, OSError):
            levels = [ACCURATE]
        self.prune_level.choices = levels
        self.prune_level.value = ACCURATE
        self.prune_level.enabled = len(levels) > 1

    def config(self, layer):
        """The SegmentConfig the widget's values say."""
        from ..config import SegmentConfig

        level = self.prune_level.value
        return SegmentConfig(**layer_options(self.viewer, layer), tile_size=self.tile_size.value or None,
                             device=self.device.value, precision=self.precision.value,
                             prune_level=None if level in (None, ACCURATE) else int(level[1:]),
                             flips=self.flips.value, seeds=self.split.value, **self.labelling.options(),
                             **self.image_options.options())

    def _inputs(self):
        """(layer, image, config, model), or ValueError saying what to fix."""
        layer = self.image.value
        if layer is None:
            raise ValueError("no image layer: open an image first")
        config = self.config(layer)
        model = self.model.load(config.device)
        model.network.check_level(config.prune_level)
        return layer, image_data(layer), config, model

    def run(self, *_) -> None:
        """Check the inputs (errors are shown before anything starts), then predict in a worker."""
        from ..inference.layout import describe_image

        try:
            layer, image, config, model = self._inputs()
            layout = describe_image(image, axes=config.axes)
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Segment", self.controls.status)
            return
        self.source = layer.name
        self.labels_layer = show_owned(self.viewer, LABELS_ROLE, layer.name, f"{layer.name} labels",
                                       np.zeros(layout.spatial_shape, dtype=np.uint32))
        plane, focus = view_position(self.viewer, layer)
        planes = None
        if layout.stacked:
            current = plane if plane is not None and 0 <= plane < layout.planes else 0
            planes = [current] + [p for p in range(layout.planes) if p != current]
        self._probabilities, self._notices = {}, []
        self.controls.progress.value = 0
        self.controls.status.value = f"segmenting {layer.name}…"
        self.start_job("Segment", segment_with_previews, image, model, config, focus, planes, self.with_probabilities.value,
                       on_yield=self._show, on_return=self._finish)

    def estimate(self, *_) -> None:
        """Measure the cell diameter of the chosen image (in a worker) and put it in the field."""
        from ..inference.reading import estimate_diameter

        try:
            layer, image, config, model = self._inputs()
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Estimate", self.controls.status)
            return

        def job():
            yield from ()
            return estimate_diameter(image, model, config.replace(diameter=None))

        self.controls.status.value = f"measuring the cells of {layer.name}…"
        self.start_job("Estimate", job, on_yield=lambda _: None, on_return=self._estimated)

    def _estimated(self, estimate) -> None:
        if estimate.diameter is None:
            self.controls.status.value = "no cells found at any scale: enter the diameter by hand"
            return
        self.image_options.diameter.value = round(estimate.diameter, 1)
        self.controls.status.value = f"cell diameter ≈ {estimate.diameter:.1f} px"

    def _show(self, item) -> None:
        """Main thread: paint a tile or a finished plane into the labels layer."""
        from ..events import ImageRead, Notice, TilePainted

        if isinstance(item, ImageRead):
            self.image_options.show_read(item)
            return
        if isinstance(item, Notice):  # kept for the final status line too
            self._notices.append(item.message)
            report(f"Segment: ⚠ {item.message}", self.controls.status)
            return
        layer = self.labels_layer
        planes = () if item.plane is None else (item.plane,)
        if isinstance(item, TilePainted):
            layer.data[planes + (item.y, item.x)] = item.labels
            self.controls.progress.max = item.total
            self.controls.progress.value = item.done
        else:
            if item.plane is None:
                layer.data = item.labels
            else:
                layer.data[item.plane] = item.labels
            if item.probabilities is not None:
                self._probabilities[item.plane] = item.probabilities
        layer.refresh()

    def _finish(self, result) -> None:
        layer = self.labels_layer
        if layer not in self.viewer.layers:  # removed during the run: the result comes back
            self.viewer.add_layer(layer)
        if result is not None:
            layer.data = result.labels
        if self._probabilities:
            self._add_probabilities()
        count = result.objects if result is not None else int(np.asarray(layer.data).max())
        warning = f" — ⚠ {self._notices[-1]}" if self._notices else ""
        report(f"Segment: {self.source} done, {count} cells{warning}", self.controls.status)

    def _add_probabilities(self) -> None:
        keys = sorted(self._probabilities, key=lambda plane: -1 if plane is None else plane)
        stacked = np.stack([self._probabilities[key] for key in keys], axis=1) if keys != [None] \
            else self._probabilities[None]
        for index, (name, colormap) in enumerate(PROBABILITY_CLASSES, start=1):
            show_owned(self.viewer, f"{name} probability", self.source, f"{self.source} {name} probability",
                       stacked[index], kind="image", colormap=colormap, blending="additive",
                       contrast_limits=(0, 1))
