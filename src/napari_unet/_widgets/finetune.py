"""Annotate & fine-tune dock widget: paint a few cells, fine-tune, watch the model improve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, Container, FileEdit, FloatSpinBox, LineEdit, PushButton, SpinBox
from napari.layers import Image, Labels, Shapes

from ._layers import LayerPicker, image_data, show_owned
from ._loss_plot import LossPlot
from ._registry import ModelPicker, registry
from ._worker import RunControls, WorkerOwner, report, report_error

# metadata: the name of the image an annotation / regions layer belongs to
ANNOTATION_KEY = "napari_unet_annotation_for"
REGIONS_KEY = "napari_unet_regions_for"
PREVIEW_MAX = 512


@dataclass(frozen=True)
class Pair:
    """One 2-D training sample taken from the layers."""

    image: np.ndarray  # (Y, X) or (Y, X, C)
    labels: np.ndarray  # (Y, X)
    regions: list | None  # (y0, y1, x0, x1) rectangles, None = everything annotated


@dataclass(frozen=True)
class Preview:
    """Labels predicted by the current weights for the preview window."""

    step: int
    labels: np.ndarray


def finetune_job(model, pairs: list[Pair], config, preview_window, preview_every: int):
    """Worker body: the events of :func:`napari_unet.iter_finetune`, plus a Preview every
    ``preview_every`` steps (and at the end); returns the TrainFinished event.

    Previews are segmented at the annotated cells' diameter (the scale of the training)."""
    from ..events import TrainFinished, TrainStep
    from ..inference.segment import segment
    from ..training.loop import iter_finetune

    from ..training.annotations import check_annotations, training_scale

    images, labels = [p.image for p in pairs], [p.labels for p in pairs]
    regions = [p.regions for p in pairs]
    _, diameter = training_scale(model, check_annotations(images, labels, regions), config)
    for event in iter_finetune(model, images, labels, regions=regions, config=config):
        if isinstance(event, TrainFinished):
            return event
        yield event
        last = isinstance(event, TrainStep) and event.step == event.iterations
        if preview_window is not None and isinstance(event, TrainStep) and (event.step % preview_every == 0 or last):
            yield Preview(event.step, segment(preview_window, event.model, device=str(event.model.device),
                                              diameter=diameter))
    return None


def rectangles(shapes_layer: Shapes, plane_shape, plane: int | None) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (y0, y1, x0, x1) of the shapes drawn on ``plane``, clipped to the image."""
    height, width = plane_shape
    boxes = []
    for vertices in shapes_layer.data:
        vertices = np.asarray(vertices)
        if plane is not None and vertices.shape[1] == 3 and int(np.round(vertices[0, 0])) != plane:
            continue
        ys, xs = vertices[:, -2], vertices[:, -1]
        y0, y1 = int(np.clip(np.floor(ys.min()), 0, height)), int(np.clip(np.ceil(ys.max()), 0, height))
        x0, x1 = int(np.clip(np.floor(xs.min()), 0, width)), int(np.clip(np.ceil(xs.max()), 0, width))
        if y1 > y0 and x1 > x0:
            boxes.append((y0, y1, x0, x1))
    return boxes


def format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}:{seconds:02d}"


def pick_cell_label(layer, event) -> None:
    """Mouse-press hook of annotation layers: paint the cell under the cursor, or a new one."""
    if layer.mode != "paint":
        return
    index = tuple(int(round(value)) for value in layer.world_to_data(event.position))
    inside = all(0 <= i < size for i, size in zip(index, layer.data.shape))
    under = int(layer.data[index]) if inside else 0
    layer.selected_label = under if under > 0 else int(layer.data.max()) + 1


class FinetuneWidget(WorkerOwner, Container):
    """Dock widget: annotation layers -> a fine-tuned model, offered in Segment and Batch segment."""

    def __init__(self, napari_viewer):
        self.viewer = napari_viewer
        self.image = LayerPicker(napari_viewer, Image, "image")
        self.new_annotation = PushButton(text="New annotation layer")
        self.annotation_layer = LayerPicker(napari_viewer, Labels, "annotation")
        self.new_regions = PushButton(text="New training regions layer")
        self.regions = LayerPicker(napari_viewer, Shapes, "training regions", optional=True)
        self.show_weights = PushButton(text="Show weight map")
        self.show_augmentation = PushButton(text="Preview augmentation")
        self.model = ModelPicker("start from")
        self.iterations = SpinBox(label="iterations", value=300, min=1, max=100_000, step=50)
        self.learning_rate = FloatSpinBox(label="learning rate", value=1e-3, min=1e-6, max=1.0, step=1e-4)
        self.all_pairs = CheckBox(text="also train on the other annotation layers made here", value=False)
        self.live_preview = CheckBox(text="live preview of the visible region", value=True)
        self.model_name = LineEdit(label="new model name", value="my cells")
        self.controls = RunControls("Fine-tune")
        self.save_path = FileEdit(label="save to", mode="w", filter="*.safetensors")
        self.save = PushButton(text="Save model", enabled=False)
        super().__init__(widgets=[self.image, self.new_annotation, self.annotation_layer, self.new_regions, self.regions,
                                  self.show_weights, self.show_augmentation, self.model, self.iterations,
                                  self.learning_rate, self.all_pairs, self.live_preview, self.model_name, self.controls,
                                  self.save_path, self.save])
        self.loss_plot = LossPlot()
        self.controls.native.layout().addWidget(self.loss_plot)  # under the progress bar
        self.trained, self._last_step = None, None
        # asked before a model file is replaced; tests swap in an answer
        self.confirm_overwrite = self._ask_overwrite
        self.image.changed.connect(self._follow_image)
        self.new_annotation.changed.connect(self.add_annotation_layer)
        self.new_regions.changed.connect(self.add_regions_layer)
        self.show_weights.changed.connect(self.add_weight_map)
        self.show_augmentation.changed.connect(self.add_augmentation_preview)
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

    def add_annotation_layer(self, *_) -> Labels | None:
        """An empty Labels layer over the image: paint mode, a brush about a third of a nucleus."""
        layer = self.image.value
        if layer is None:
            report_error(ValueError("no image layer: open an image first"), "New annotation layer")
            return None
        shape = image_data(layer).shape[:-1] if layer.rgb else image_data(layer).shape
        labels = self.viewer.add_labels(np.zeros(shape, dtype=np.uint16), name=f"{layer.name} annotation",
                                        scale=layer.scale, translate=layer.translate,
                                        metadata={ANNOTATION_KEY: layer.name})
        labels.brush_size = max(3, min(shape[-2:]) // 80)
        labels.mode = "paint"
        labels.selected_label = 1
        # a stroke that starts inside a cell extends it; one that starts elsewhere is a new cell
        labels.mouse_drag_callbacks.insert(0, pick_cell_label)
        self.annotation_layer.reset_choices()
        self.annotation_layer.value = labels
        return labels

    def add_regions_layer(self, *_) -> Shapes | None:
        """A Shapes layer for rectangles: outside them nothing is learned, not even background."""
        layer = self.image.value
        if layer is None:
            report_error(ValueError("no image layer: open an image first"), "New training regions layer")
            return None
        shapes = self.viewer.add_shapes(name=f"{layer.name} training regions", ndim=layer.ndim,
                                        scale=layer.scale, translate=layer.translate, edge_color="yellow",
                                        face_color="transparent", edge_width=2,
                                        metadata={REGIONS_KEY: layer.name})
        shapes.mode = "add_rectangle"
        self.regions.reset_choices()
        self.regions.value = shapes
        return shapes

    def _layer_pairs(self) -> list[tuple[Image, Labels, Shapes | None]]:
        image, annotation = self.image.value, self.annotation_layer.value
        if image is None:
            raise ValueError("no image layer: open an image first")
        if annotation is None:
            raise ValueError("no annotation layer: click 'New annotation layer' and paint a few cells")
        triples = [(image, annotation, self.regions.value)]
        if self.all_pairs.value:
            by_name = {layer.name: layer for layer in self.viewer.layers}
            for layer in layers_made_here(self.viewer, Labels, ANNOTATION_KEY):
                partner = by_name.get(layer.metadata[ANNOTATION_KEY])
                if layer is not annotation and isinstance(partner, Image):
                    regions = [s for s in layers_made_here(self.viewer, Shapes, REGIONS_KEY)
                               if s.metadata[REGIONS_KEY] == partner.name]
                    triples.append((partner, layer, regions[0] if regions else None))
        return triples

    def pairs(self) -> list[Pair]:
        """The 2-D training samples; ValueError explains unusable inputs before any run."""
        from ..training.annotations import check_annotation

        pairs = []
        for image_layer, annotation, regions in self._layer_pairs():
            image, painted = image_data(image_layer), annotation.data
            plane_shape = image.shape[:-1] if image_layer.rgb else image.shape
            if tuple(painted.shape) != tuple(plane_shape):
                raise ValueError(f"annotation {annotation.name!r} has shape {tuple(painted.shape)} but image "
                                 f"{image_layer.name!r} is {tuple(plane_shape)}: make one with "
                                 f"'New annotation layer'")
            stacked = len(plane_shape) == 3
            for plane in range(plane_shape[0]) if stacked else [None]:
                labels = np.asarray(painted[plane] if stacked else painted)
                if not labels.any():
                    continue
                boxes = None if regions is None else rectangles(regions, labels.shape, plane)
                where = f" (plane {plane})" if stacked else ""
                if boxes is not None and not boxes:
                    raise ValueError(f"training regions {regions.name!r} hold no rectangle{where} where "
                                     f"{annotation.name!r} has cells: draw one around the annotated cells")
                plane_image = np.asarray(image[plane] if stacked else image)
                check_annotation(plane_image, labels, boxes, image_name=f"image {image_layer.name!r}{where}",
                                 labels_name=f"annotation {annotation.name!r}{where}")
                pairs.append(Pair(plane_image, labels, boxes))
        if not pairs:
            raise ValueError("the annotation is empty: paint a few cells (each stroke that starts outside a cell "
                             "paints a new one)")
        return pairs

    def add_weight_map(self, *_) -> None:
        """The per-pixel loss weights of the first annotated image (0 where nothing is learned)."""
        from ..training.annotations import training_weight_map

        try:
            pair = self.pairs()[0]
            weights = training_weight_map(pair.labels, regions=pair.regions)
        except ValueError as error:
            report_error(error, "Show weight map")
            return
        source = self.annotation_layer.value.name
        show_owned(self.viewer, "weights", source, f"{source} weights", weights, kind="image",
                   colormap="inferno", blending="additive")

    def add_augmentation_preview(self, *_) -> None:
        """Four augmented versions of the first annotated image, as the network sees them."""
        from ..training.augment import preview_augmentations

        try:
            pair = self.pairs()[0]
            samples = preview_augmentations(np.asarray(pair.image, dtype=np.float32), pair.labels, n=4)
        except ValueError as error:
            report_error(error, "Preview augmentation")
            return
        source = self.annotation_layer.value.name
        rgb = samples[0].image.ndim == 3
        show_owned(self.viewer, "augmented images", source, "augmented images",
                   np.stack([sample.image for sample in samples]), kind="image", rgb=rgb)
        show_owned(self.viewer, "augmented labels", source, "augmented labels",
                   np.stack([sample.labels for sample in samples]).astype(np.uint32))

    # -- training -----------------------------------------------------------------------

    def config(self):
        from ..config import TrainConfig

        return TrainConfig(iterations=int(self.iterations.value), learning_rate=float(self.learning_rate.value))

    def run(self, *_) -> None:
        """Check the annotations (explained before anything starts), then fine-tune in a worker."""
        try:
            pairs = self.pairs()
            config = self.config()
            model = self.model.load("cpu")
        except (ValueError, TypeError, OSError) as error:
            report_error(error, "Fine-tune")
            return
        window, self._window_origin = (None, None)
        if self.live_preview.value:
            window, self._window_origin = self._preview_window()
        self.loss_plot.clear()
        self._last_step = None
        self.controls.progress.max = config.iterations
        self.controls.progress.value = 0
        self.controls.status.value = "preparing the annotations…"
        every = max(5, config.iterations // 20)
        self.start_job("Fine-tune", finetune_job, model, pairs, config, window, every,
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
        from ..events import Notice, TrainStep

        if isinstance(item, TrainStep):
            self._last_step = item
            self.loss_plot.append(item.loss)
            self.controls.progress.value = item.step
            self.controls.status.value = (f"step {item.step}/{item.iterations}   loss {item.loss:.3f}   "
                                          f"ETA {format_seconds(item.eta)}")
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
        self.save.enabled = True
        self.controls.status.value = f"model {name!r} is ready in Segment and Batch segment"
        report(f"Fine-tune: model {name!r} added to the model lists")

    def _finished(self, finished) -> None:
        if finished.reason == "completed":
            self._register(finished.model)
        else:  # diverged: nothing is registered, the previous model stays selected everywhere
            report_error(RuntimeError(finished.message), "Fine-tune")
            self.controls.status.value = f"failed: {finished.message}"

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
            report_error(ValueError("nothing to save yet: fine-tune a model first"), "Save model")
            return None
        path = Path(self.save_path.value)
        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        if path.exists() and not self.confirm_overwrite(path):
            return None
        try:
            save_model(self.trained, path)
        except (ValueError, OSError) as error:
            report_error(error, "Save model")
            return None
        report(f"Fine-tune: saved {path}")
        return path


def layers_made_here(viewer, kind, key: str) -> list:
    return [layer for layer in viewer.layers if isinstance(layer, kind) and key in layer.metadata]
