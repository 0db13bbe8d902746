"""Segment dock widget: pick an image and a model, watch the labels fill in tile by tile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, SpinBox
from napari.layers import Image

from ._common import (AUTO, LayerPicker, ModelPicker, RunControls, WorkerOwner, device_choices, image_data,
                      report, report_error, resolve_precision, show_owned, view_position)

PRECISIONS = [AUTO, "fp32", "bf16", "fp16"]
ACCURATE = "accurate"
LABELS_ROLE = "labels"
PROBABILITY_CLASSES = (("interior", "green"), ("boundary", "magenta"))
# how touching cells are split (napari_unet.instances.probabilities_to_labels ``seeds``)
SPLIT_CHOICES = [("at the neck (round cells)", "distance"), ("on predicted boundary only (rods)", "interior")]
SPLIT_TOOLTIP = ("round cells: touching cells are also split at the neck between them; rods and filaments: "
                 "only where the network predicts a boundary")


@dataclass(frozen=True)
class TilePainted:
    """Provisional labels of one finished tile (cells numbered within the tile)."""

    plane: int | None
    y: slice
    x: slice
    labels: np.ndarray
    done: int
    total: int


@dataclass(frozen=True)
class PlaneLabelled:
    """Final labels of one plane, identical to :func:`napari_unet.segment` on it."""

    plane: int | None
    labels: np.ndarray
    probabilities: np.ndarray | None


def segment_job(image, model, options: dict, focus, planes, keep_probabilities: bool, seeds: str):
    """Worker body: a TilePainted per tile and a PlaneLabelled per finished plane.

    Tiles are labelled on their own for a quick look; a finished plane is labelled as a
    whole with the same function :func:`napari_unet.segment` uses, so the end result is
    exactly the blocking API's.
    """
    from ..images import describe_image
    from ..instances import probabilities_to_labels
    from ..predict import predict_tiles

    layout = describe_image(image, rgb=options.get("rgb"))
    plane_probabilities = np.zeros((model.config.out_channels,) + layout.plane_shape, dtype=np.float32)
    offset = 0
    for event in predict_tiles(image, model, focus=focus, planes=planes, **options):
        plane_probabilities[:, event.tile.y, event.tile.x] = event.probabilities
        tile_labels = probabilities_to_labels(event.probabilities, min_size=0, seeds=seeds).astype(np.uint32)
        tile_labels[tile_labels > 0] += offset
        offset = int(tile_labels.max(initial=offset))
        yield TilePainted(event.plane, event.tile.y, event.tile.x, tile_labels, event.done, event.total)
        if event.done % (event.total // len(planes or [0])) == 0:
            yield PlaneLabelled(event.plane, probabilities_to_labels(plane_probabilities, seeds=seeds),
                                plane_probabilities.copy() if keep_probabilities else None)


def prune_levels(model) -> list[str]:
    """"accurate", then "L1".."Ln-1" for a UNet++ trained with deep supervision."""
    network = model.network
    pruned = [f"L{level}" for level in network.levels if level != network.config.depth]
    return [ACCURATE] + pruned


class SegmentWidget(WorkerOwner, Container):
    """Dock widget: image + model -> a ``<image> labels`` layer, filled while it is computed."""

    def __init__(self, napari_viewer):
        self.viewer = napari_viewer
        self.image = LayerPicker(napari_viewer, Image, "image")
        self.model = ModelPicker()
        self.tile_size = SpinBox(label="tile size", value=0, min=0, max=8192, step=64,
                                 tooltip="output pixels per tile edge; 0 = automatic (512 CPU, 1024 GPU)")
        self.device = ComboBox(label="device", choices=device_choices(), value=AUTO)
        self.precision = ComboBox(label="precision", choices=PRECISIONS, value=AUTO,
                                  tooltip="auto: bf16 on a CUDA GPU that supports it, else fp32")
        self.prune_level = ComboBox(label="UNet++ level", choices=[ACCURATE], value=ACCURATE, enabled=False,
                                    tooltip="a pruned UNet++ (L1 fastest) trades accuracy for speed")
        self.split = ComboBox(label="split touching", choices=SPLIT_CHOICES, value="distance", tooltip=SPLIT_TOOLTIP)
        self.with_probabilities = CheckBox(text="also add class probabilities", value=False)
        self.controls = RunControls("Segment")
        super().__init__(widgets=[self.image, self.model, self.split, self.tile_size, self.device, self.precision,
                                  self.prune_level, self.with_probabilities, self.controls])
        self.labels_layer = None
        self.controls.run.changed.connect(self.run)
        self.controls.cancel.changed.connect(self.cancel)
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

    def predict_options(self, layer) -> dict:
        level = self.prune_level.value
        device = self.device.value
        return dict(tile_size=self.tile_size.value or None, device=device,
                    precision=resolve_precision(self.precision.value, device),
                    prune_level=None if level in (None, ACCURATE) else int(level[1:]), rgb=layer.rgb)

    def run(self, *_) -> None:
        """Check the inputs (errors are shown before anything starts), then predict in a worker."""
        from ..images import describe_image

        layer = self.image.value
        try:
            if layer is None:
                raise ValueError("no image layer: open an image first")
            image = image_data(layer)
            options = self.predict_options(layer)
            layout = describe_image(image, rgb=layer.rgb)
            model = self.model.load(options["device"])
            model.network.check_level(options["prune_level"])
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Segment")
            return
        shape = ((layout.planes,) if layout.stacked else ()) + layout.plane_shape
        self.source = layer.name
        self.labels_layer = show_owned(self.viewer, LABELS_ROLE, layer.name, f"{layer.name} labels",
                                       np.zeros(shape, dtype=np.uint32))
        plane, focus = view_position(self.viewer, layer)
        planes = None
        if layout.stacked:
            current = plane if plane is not None and 0 <= plane < layout.planes else 0
            planes = [current] + [p for p in range(layout.planes) if p != current]
        self._probabilities = {}
        self.controls.progress.value = 0
        self.controls.status.value = f"segmenting {layer.name}…"
        self.start_job("Segment", segment_job, image, model, options, focus, planes,
                       self.with_probabilities.value, self.split.value, on_yield=self._show,
                       on_return=self._finish)

    def _show(self, item) -> None:
        """Main thread: paint a tile or a finished plane into the labels layer."""
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

    def _finish(self, _result) -> None:
        layer = self.labels_layer
        if layer not in self.viewer.layers:  # removed during the run: the result comes back
            self.viewer.add_layer(layer)
        if self._probabilities:
            self._add_probabilities()
        count = sum(len(np.unique(plane)) - 1 for plane in (layer.data if layer.ndim == 3 else [layer.data]))
        self.controls.status.value = f"{self.source}: {count} cells"
        report(f"Segment: {self.source} done, {count} cells")

    def _add_probabilities(self) -> None:
        keys = sorted(self._probabilities, key=lambda plane: -1 if plane is None else plane)
        stacked = np.stack([self._probabilities[key] for key in keys], axis=1) if keys != [None] \
            else self._probabilities[None]
        for index, (name, colormap) in enumerate(PROBABILITY_CLASSES, start=1):
            show_owned(self.viewer, f"{name} probability", self.source, f"{self.source} {name} probability",
                       stacked[index], kind="image", colormap=colormap, blending="additive",
                       contrast_limits=(0, 1))
