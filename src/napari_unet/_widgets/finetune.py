"""Annotate and fine-tune dock widget: paint a few cells, fine-tune, watch the model improve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, FileEdit, FloatSpinBox, LineEdit, PushButton, SpinBox
from napari.layers import Image, Labels, Shapes

from ..jobs.finetune import budget_config, iter_finetune_previews
from . import _tooltips as tips
from ._annotation import (ANNOTATION_KEY, REGIONS_KEY, Pair, annotation_from_segmentation, find_segmentation,
                          layers_made_here, new_annotation_layer, new_regions_layer, plane_shape_of, training_pairs)
from ._controls import Advanced, ScientificEdit, ScrollingDock, side_by_side
from ._eta import RemainingTime, format_seconds
from ._export import ExportButton
from ._layers import LayerPicker, image_data, show_owned
from ._loss_plot import LossPlot
from ._registry import ModelPicker, next_round_name, registry
from ._worker import RunControls, WorkerOwner, report, report_error

PREVIEW_MAX = 512
# steps between live previews
PREVIEW_EVERY = 25


class FinetuneWidget(WorkerOwner, ScrollingDock):
    """Dock widget: annotation layers -> a fine-tuned model, offered in Segment and Batch segment."""

    def __init__(self, napari_viewer):
        self.viewer = napari_viewer
        self.image = LayerPicker(napari_viewer, Image, "image", tooltip=tips.TRAIN_IMAGE)
        self.new_annotation = PushButton(text="New annotation layer", tooltip=tips.NEW_ANNOTATION)
        self.annotation_layer = LayerPicker(napari_viewer, Labels, "annotation", tooltip=tips.ANNOTATION)
        self.new_regions = PushButton(text="New training regions layer", tooltip=tips.NEW_REGIONS)
        self.regions = LayerPicker(napari_viewer, Shapes, "training regions", tooltip=tips.REGIONS, optional=True,
                                   none_text=tips.NO_REGIONS)
        self.from_segmentation = PushButton(text="Correct the segmentation", tooltip=tips.FROM_SEGMENTATION)
        self.suggest = PushButton(text="Annotate here next", tooltip=tips.SUGGEST)
        self.show_weights = PushButton(text="Show weight map", tooltip=tips.WEIGHTS)
        self.show_augmentation = PushButton(text="Preview augmentation", tooltip=tips.AUGMENTATION)
        self.model = ModelPicker("start from", tooltip=tips.START_FROM)
        self.model_name = LineEdit(label="new model name", value="my cells", tooltip=tips.MODEL_NAME)
        self.all_pairs = CheckBox(text="also use my other annotated images", value=False, tooltip=tips.ALL_PAIRS)
        self.live_preview = CheckBox(text="live preview of the visible region", value=True, tooltip=tips.LIVE_PREVIEW)
        defaults = budget_config()
        self.minutes = FloatSpinBox(label="time (min)", value=defaults.minutes, min=0.1, max=600.0, step=0.5,
                                    tooltip=tips.MINUTES)
        self.iterations = SpinBox(label="at most steps", value=defaults.iterations, min=1, max=1_000_000, step=100,
                                  tooltip=tips.ITERATIONS)
        self.learning_rate = ScientificEdit(label="learning rate", value=defaults.learning_rate,
                                            tooltip=tips.LEARNING_RATE)
        self.anchor = FloatSpinBox(label="stay close to start", value=defaults.anchor, min=0.0, max=1e4, step=10.0,
                                   tooltip=tips.ANCHOR)
        self.keep_worse = CheckBox(text="keep it even if not better on held-out cells", value=defaults.keep_worse,
                                   tooltip=tips.KEEP_WORSE)
        self.advanced = Advanced([self.iterations, self.learning_rate, self.anchor, self.keep_worse],
                                 tooltip=tips.ADVANCED)
        self.controls = RunControls("Fine-tune", tips.FINETUNE_RUN)
        self.save_path = FileEdit(label="save to", mode="w", filter="*.safetensors", tooltip=tips.SAVE_PATH)
        self.save = PushButton(text="Save model", enabled=False, tooltip=tips.SAVE_MODEL)
        self.export = ExportButton(lambda: self.trained, self.controls.status)
        super().__init__(widgets=[self.image, side_by_side(self.new_annotation, self.new_regions),
                                  side_by_side(self.from_segmentation, self.suggest),
                                  self.annotation_layer, self.regions,
                                  side_by_side(self.show_weights, self.show_augmentation), self.model,
                                  self.model_name, self.minutes, self.all_pairs, self.live_preview, self.advanced,
                                  self.controls, self.save_path, side_by_side(self.save, self.export)])
        self.loss_plot = LossPlot()
        self.loss_plot.setToolTip(tips.LOSS_PLOT)
        self.controls.native.layout().addWidget(self.loss_plot)  # under the progress bar
        self.trained, self._last_step, self._eta = None, None, RemainingTime()
        self._held_out_start, self._held_out_line = None, ""
        self.augmentation_preview = None  # the window, once opened
        # asked before a model file is replaced; tests swap in an answer
        self.confirm_overwrite = self._ask_overwrite
        self.image.changed.connect(self._follow_image)
        self.new_annotation.changed.connect(self.add_annotation_layer)
        self.new_regions.changed.connect(self.add_regions_layer)
        self.from_segmentation.changed.connect(self.correct_segmentation)
        self.suggest.changed.connect(self.suggest_regions)
        self.show_weights.changed.connect(self.add_weight_map)
        self.show_augmentation.changed.connect(self.preview_augmentation)
        self.controls.run.changed.connect(self.run)
        self.controls.cancel.changed.connect(self.cancel)
        self.save.changed.connect(self.save_model)
        self.native.destroyed.connect(self._stop_on_close)

    # -- layers -------------------------------------------------------------------------

    def _follow_image(self, image) -> None:
        """Pick the annotation and regions layers made for the newly chosen image."""
        name = getattr(image, "name", None)
        annotations = [layer for layer in layers_made_here(self.viewer, Labels, ANNOTATION_KEY)
                       if layer.metadata[ANNOTATION_KEY] == name]
        if annotations:
            self.annotation_layer.value = annotations[-1]
        regions = [layer for layer in layers_made_here(self.viewer, Shapes, REGIONS_KEY)
                   if layer.metadata[REGIONS_KEY] == name]
        self.regions.value = regions[-1] if regions else None

    def _chosen_image(self, what: str):
        layer = self.image.value
        if layer is None:
            report_error(ValueError("no image layer: open an image first"), what, self.controls.status)
        return layer

    def _use(self, annotation=None, regions=None) -> None:
        """Make ``annotation`` / ``regions`` (new layers) the ones the widget trains on."""
        if annotation is not None:
            self.annotation_layer.reset_choices()
            self.annotation_layer.value = annotation
        if regions is not None:
            self.regions.reset_choices()
            self.regions.value = regions

    def add_annotation_layer(self, *_) -> Labels | None:
        """An empty Labels layer over the image: paint mode, a brush about a third of a nucleus."""
        layer = self._chosen_image("New annotation layer")
        if layer is None:
            return None
        labels = new_annotation_layer(self.viewer, layer)
        self._use(annotation=labels)
        return labels

    def add_regions_layer(self, *_) -> Shapes | None:
        """A Shapes layer for rectangles: outside them nothing is learned, not even background."""
        layer = self._chosen_image("New training regions layer")
        if layer is None:
            return None
        shapes = new_regions_layer(self.viewer, layer)
        shapes.mode = "add_rectangle"
        self._use(regions=shapes)
        return shapes

    def correct_segmentation(self, *_) -> Labels | None:
        """Correct instead of paint: the image's segmentation (inside the regions) as a new annotation."""
        layer = self._chosen_image("Correct the segmentation")
        if layer is None:
            return None
        segmentation = find_segmentation(self.viewer, layer)
        try:
            if segmentation is None:
                raise ValueError(f"no segmentation of {layer.name!r} yet: segment it with the Segment widget first")
            annotation = annotation_from_segmentation(self.viewer, layer, segmentation, self.regions.value)
        except ValueError as error:
            report_error(error, "Correct the segmentation", self.controls.status)
            return None
        self._use(annotation=annotation)
        where = "inside the training regions" if self.regions.value is not None else "of the whole image"
        report(f"{annotation.name!r}: the {len(np.unique(annotation.data)) - 1} cells {where}; fix the "
               "mistakes, then fine-tune", self.controls.status)
        return annotation

    def suggest_regions(self, *_) -> None:
        """Annotate here next: the model's disagreement with itself, and its most uncertain windows."""
        from ..inference.uncertainty import uncertainty

        layer = self._chosen_image("Annotate here next")
        try:
            if layer is None:
                return
            data = image_data(layer)
            plane = np.asarray(data[int(self.viewer.dims.current_step[0])] if len(plane_shape_of(layer)) == 3
                               else data)
            model = self.model.load("cpu")
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Annotate here next", self.controls.status)
            return

        def job():
            yield from ()
            return uncertainty(plane, model, axes="YXC" if layer.rgb else "YX")

        self.controls.status.value = f"looking for where {model.name!r} is unsure on {layer.name}…"
        self.start_job("Annotate here next", job, on_yield=lambda _: None,
                       on_return=lambda result: self._show_uncertainty(layer, result))

    def _show_uncertainty(self, layer, result) -> None:
        show_owned(self.viewer, "uncertainty", layer.name, f"{layer.name} uncertainty", result.disagreement,
                   kind="image", colormap="inferno", blending="additive", contrast_limits=(0, 0.5),
                   scale=layer.scale[-2:], translate=layer.translate[-2:])
        boxes = [region[:4] for region in result.regions]
        regions = new_regions_layer(self.viewer, layer, boxes, name=f"{layer.name} annotate here next",
                                    text={"string": "{rank}", "color": "yellow", "size": 14})
        self._use(regions=regions)
        report(f"the {len(boxes)} most uncertain areas of {layer.name} are now the training regions "
               "(1 = least sure): correct the segmentation there, then fine-tune", self.controls.status)

    def pairs(self) -> list[Pair]:
        """The 2-D training samples; ValueError explains unusable inputs before any run."""
        return training_pairs(self.viewer, self.image.value, self.annotation_layer.value, self.regions.value,
                              self.all_pairs.value)

    def add_weight_map(self, *_) -> None:
        """The per-pixel loss weights of the first annotated image (0 where nothing is learned)."""
        from ..training.annotations import training_weight_map

        try:
            pair = self.pairs()[0]
            weights = training_weight_map(pair.labels, regions=pair.regions)
        except ValueError as error:
            report_error(error, "Show weight map", self.controls.status)
            return
        source = self.annotation_layer.value.name
        show_owned(self.viewer, "weights", source, f"{source} weights", weights, kind="image",
                   colormap="inferno", blending="additive")

    def preview_augmentation(self, *_) -> None:
        """Four augmented versions of the first annotated image, as the network sees them, in a
        small window of their own: the viewer's layers and sliders stay as they are."""
        from ..training.augment import preview_augmentations
        from ._augment_preview import AugmentationPreview

        try:
            pair = self.pairs()[0]
            samples = preview_augmentations(np.asarray(pair.image, dtype=np.float32), pair.labels, n=4)
        except ValueError as error:
            report_error(error, "Preview augmentation", self.controls.status)
            return
        if self.augmentation_preview is None:
            self.augmentation_preview = AugmentationPreview(self.native)
        self.augmentation_preview.show_samples(samples, self.annotation_layer.value.name)

    # -- training -----------------------------------------------------------------------

    def config(self):
        return budget_config(minutes=float(self.minutes.value), iterations=int(self.iterations.value),
                             learning_rate=self.learning_rate.number(), anchor=float(self.anchor.value),
                             keep_worse=self.keep_worse.value)

    def run(self, *_) -> None:
        """Check the annotations (explained before anything starts), then fine-tune in a worker."""
        try:
            pairs = self.pairs()
            config = self.config()
            model = self.model.load("cpu")
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Fine-tune", self.controls.status)
            return
        window, self._window_origin = (None, None)
        if self.live_preview.value:
            window, self._window_origin = self._preview_window()
        self.loss_plot.clear()
        self._last_step, self._eta = None, RemainingTime()
        self._held_out_start, self._held_out_line = None, ""
        self.controls.progress.max = int(60 * config.minutes)  # seconds of the time budget
        self.controls.progress.value = 0
        self.controls.status.value = "preparing the annotations…"
        self.start_job("Fine-tune", iter_finetune_previews, model, [p.image for p in pairs],
                       [p.labels for p in pairs], [p.regions for p in pairs], config, window, PREVIEW_EVERY,
                       on_yield=self._show, on_return=self._finished)
        self.worker.aborted.connect(self._cancelled)

    def _preview_window(self):
        """The visible part (at most PREVIEW_MAX px a side) of the image's current plane."""
        layer = self.image.value
        data = image_data(layer)
        plane_shape = data.shape[-3:-1] if layer.rgb else data.shape[-2:]
        corners = np.asarray(layer.corner_pixels)[:, -2:]
        y0, x0 = np.clip(corners[0], 0, plane_shape)
        y1, x1 = np.clip(corners[1] + 1, 0, plane_shape)
        if y1 - y0 < 16 or x1 - x0 < 16:
            y0, x0, y1, x1 = 0, 0, *plane_shape
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        half = PREVIEW_MAX // 2
        y0, y1 = max(y0, cy - half), min(y1, cy + half)
        x0, x1 = max(x0, cx - half), min(x1, cx + half)
        plane = (int(self.viewer.dims.current_step[-3]),) if len(plane_shape) + 1 == layer.ndim else ()
        window = np.asarray(data[plane + (slice(y0, y1), slice(x0, x1))])
        return window, (int(y0), int(x0))

    def _show(self, item) -> None:
        """Main thread: loss curve, progress, ETA, notices and the live preview layer."""
        from ..events import Notice, Preview, TrainStep, Validation

        if isinstance(item, TrainStep):
            self._last_step = item
            self.loss_plot.append(item.loss)
            self.controls.progress.value = min(int(item.elapsed), self.controls.progress.max)
            left = self._eta.update(item.step, item.iterations, item.elapsed)
            if left is not None:  # the time budget ends the run at the latest
                left = min(left, max(0.0, self.controls.progress.max - item.elapsed))
            eta = "estimating the time left…" if left is None else f"ETA {format_seconds(left)}"
            self.controls.status.value = (f"step {item.step}/{item.iterations}   loss {item.loss:.3f}   "
                                          f"{self._held_out_line}{eta}")
        elif isinstance(item, Validation) and "loss" in item.metrics:  # held-out images
            self.loss_plot.add_validation(item.step, item.metrics["loss"])
        elif isinstance(item, Validation):  # held-out cells: the start's score, then the latest
            self._held_out_start = item.metrics["ap50"] if item.step == 0 else self._held_out_start
            self._held_out_line = (f"held-out cells AP {item.metrics['ap50']:.2f} "
                                   f"(start {self._held_out_start:.2f})   ")
        elif isinstance(item, Notice):
            report(f"Fine-tune: {item.message}")
        elif isinstance(item, Preview):
            y0, x0 = self._window_origin
            layer = self.image.value
            preview = show_owned(self.viewer, "preview", "fine-tune", "fine-tune preview",
                                 item.labels.astype(np.uint32), opacity=0.6, scale=layer.scale[-2:])
            # the window sits where it was cut from the image
            preview.translate = np.asarray(layer.translate)[-2:] + np.array([y0, x0]) * np.asarray(layer.scale)[-2:]

    def _register(self, model, suffix: str = "") -> None:
        name = registry.add(f"{self.model_name.value or 'fine-tuned'}{suffix}", model)
        model.name = name
        self.trained = model
        self.save.enabled = self.export.enabled = True
        report(f"Fine-tune: model {name!r} is ready in Segment and Batch segment", self.controls.status)
        # the next round (segment, correct, fine-tune again) starts from this one, under the next name
        self.model.select(name)
        self.model_name.value = next_round_name(self.model_name.value or "my cells")

    def _finished(self, finished) -> None:
        if finished.reason == "completed" and finished.kept_start:
            # not better on the held-out cells: nothing new is offered, the starting model stays chosen
            report(f"Fine-tune: {finished.message.split(';')[0]}", self.controls.status)
        elif finished.reason == "completed" and finished.collapsed:
            self._register(finished.model, " (finds no cells)")
            report_error(RuntimeError(finished.message), "Fine-tune", self.controls.status)
        elif finished.reason == "completed":
            self._register(finished.model)
            if finished.held_out is not None:
                self.controls.status.value += f" ({finished.message.split(';')[0]})"
        else:  # diverged: nothing is registered, the previous model stays selected everywhere
            report_error(RuntimeError(finished.message), "Fine-tune failed", self.controls.status)

    def _cancelled(self) -> None:
        """Keep what was learned so far, under a name that says so."""
        if self._last_step is not None:
            self._register(self._last_step.model, f" (step {self._last_step.step})")

    # -- saving -------------------------------------------------------------------------

    def _ask_overwrite(self, path: Path) -> bool:
        from qtpy.QtWidgets import QMessageBox

        answer = QMessageBox.question(self.native, "Replace model file?", f"{path} exists. Replace it?")
        return answer == QMessageBox.Yes

    def save_model(self, *_) -> Path | None:
        """Save the last fine-tuned model (atomically; asks before replacing a file)."""
        from ..models import save_model

        if self.trained is None:
            report_error(ValueError("nothing to save yet: fine-tune a model first"), "Save model",
                         self.controls.status)
            return None
        path = Path(self.save_path.value)
        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        if path.exists() and not self.confirm_overwrite(path):
            return None
        try:
            save_model(self.trained, path)
        except (ValueError, OSError) as error:
            report_error(error, "Save model", self.controls.status)
            return None
        report(f"Fine-tune: saved {path}", self.controls.status)
        return path

