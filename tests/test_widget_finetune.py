"""Annotate & fine-tune dock widget in a real viewer (Xvfb): tiny model, a few steps."""

import numpy as np
import pytest
from widget_helpers import messages, registry, viewer, wait_until_idle  # noqa: F401

import napari_unet as nu

pytest.importorskip("napari")


@pytest.fixture
def widget(viewer, registry, tiny_model):
    from napari_unet._widgets.finetune import FinetuneWidget

    widget = FinetuneWidget(viewer)
    widget.model.select(registry.add("tiny", tiny_model))
    widget.image.value = viewer.layers["nuclei"]
    widget.iterations.value = 3
    widget.model_name.value = "widget model"
    return widget


def annotate_top_left(widget, viewer):
    """Copy the ground truth of the top-left quarter into a new annotation layer, boxed in."""
    annotation = widget.add_annotation_layer()
    annotation.data[:48, :64] = viewer.layers["nuclei ground truth"].data[:48, :64]
    regions = widget.add_regions_layer()
    regions.add_rectangles(np.array([[0, 0], [48, 64]]))
    return annotation, regions


def test_annotation_layers_match_the_image(widget, viewer):
    annotation, regions = annotate_top_left(widget, viewer)
    assert annotation.data.shape == (96, 128) and annotation.mode == "paint" and annotation.brush_size >= 3
    assert widget.annotation_layer.value is annotation and widget.regions.value is regions
    assert regions.mode == "add_rectangle"
    assert [(pair.regions, pair.labels.shape) for pair in widget.pairs()] == [([(0, 48, 0, 64)], (96, 128))]


def test_a_stroke_starting_outside_the_cells_paints_a_new_cell(widget, viewer):
    from types import SimpleNamespace

    from napari_unet._widgets.finetune import pick_cell_label

    annotation = widget.add_annotation_layer()
    assert annotation.mouse_drag_callbacks[0] is pick_cell_label
    annotation.data[10:20, 10:20] = 3
    pick_cell_label(annotation, SimpleNamespace(position=(50.0, 50.0)))  # empty: a new cell
    assert annotation.selected_label == 4
    pick_cell_label(annotation, SimpleNamespace(position=(15.0, 12.0)))  # inside cell 3: extend it
    assert annotation.selected_label == 3
    annotation.mode = "erase"
    pick_cell_label(annotation, SimpleNamespace(position=(50.0, 50.0)))  # other modes: untouched
    assert annotation.selected_label == 3


def test_weight_map_and_augmentation_preview(widget, viewer):
    annotate_top_left(widget, viewer)
    widget.add_weight_map()
    weights = viewer.layers["nuclei annotation weights"].data
    assert weights[:40, :56].min() > 0 and weights[48:, :].max() == 0 and weights[:, 64:].max() == 0
    widget.add_augmentation_preview()
    images, labels = viewer.layers["augmented images"].data, viewer.layers["augmented labels"].data
    assert images.shape == (4, 96, 128) and labels.shape == (4, 96, 128) and labels.max() > 0
    widget.add_weight_map()  # again: the same layer is updated
    assert [layer.name for layer in viewer.layers].count("nuclei annotation weights") == 1


def test_finetune_registers_a_model_for_the_other_widgets_and_saves_it(widget, viewer, qtbot, tmp_path):
    from napari_unet._widgets.segment import SegmentWidget

    segment = SegmentWidget(viewer)
    annotate_top_left(widget, viewer)
    steps = []
    widget.run()
    widget.worker.yielded.connect(steps.append)
    wait_until_idle(qtbot, widget)
    assert "widget model" in segment.model.choice.choices
    assert len(widget.loss_plot.losses) == 3 and all(np.isfinite(widget.loss_plot.losses))
    assert widget.controls.progress.value == 3
    assert "fine-tune preview" in viewer.layers
    # the live preview is the current model's labels of the visible region
    assert viewer.layers["fine-tune preview"].data.shape == (96, 128)

    path = tmp_path / "tuned.safetensors"
    widget.save_path.value = path
    assert widget.save_model() == path
    saved = nu.load_model(path)
    assert saved.name == "widget model" and saved.history[-1]["steps"] == 3
    before = path.read_bytes()
    asked = []
    widget.confirm_overwrite = lambda target: asked.append(target) or False
    assert widget.save_model() is None
    assert asked == [path] and path.read_bytes() == before
    widget.confirm_overwrite = lambda target: True
    assert widget.save_model() == path


def test_cancel_keeps_the_weights_of_the_last_step(widget, viewer, qtbot):
    annotate_top_left(widget, viewer)
    widget.iterations.value = 10_000
    widget.live_preview.value = False
    widget.run()
    widget.worker.yielded.connect(lambda item: widget.controls.cancel.clicked())
    wait_until_idle(qtbot, widget)
    assert 1 <= len(widget.loss_plot.losses) < 10
    kept = [name for name in widget.model.choice.choices if name.startswith("widget model (step")]
    assert kept == [f"widget model (step {len(widget.loss_plot.losses)})"]


def test_several_annotated_images_are_used_together(widget, viewer):
    annotate_top_left(widget, viewer)
    other = viewer.add_image(viewer.layers["nuclei"].data[::-1].copy(), name="flipped")
    widget.image.value = other
    annotation = widget.add_annotation_layer()
    annotation.data[-20:, -20:] = viewer.layers["nuclei ground truth"].data[::-1][-20:, -20:]
    widget.all_pairs.value = True
    assert widget.annotation_layer.value is annotation and widget.regions.value is None
    pairs = widget.pairs()
    assert len(pairs) == 2
    assert pairs[0].regions is None and pairs[1].regions == [(0, 48, 0, 64)]  # each image its own regions
    widget.image.value = viewer.layers["nuclei"]  # back: its own annotation and regions are picked again
    assert widget.annotation_layer.value is viewer.layers["nuclei annotation"]
    assert widget.regions.value is viewer.layers["nuclei training regions"]


def test_unusable_inputs_are_explained_before_a_run(widget, viewer, messages):
    viewer.layers.remove("nuclei ground truth")
    widget.run()
    assert "no annotation layer" in messages[-1]
    annotation = widget.add_annotation_layer()
    widget.run()
    assert "annotation is empty" in messages[-1]
    annotation.data[5:10, 5:10] = 1
    regions = widget.add_regions_layer()
    regions.add_rectangles(np.array([[60, 60], [90, 120]]))
    widget.regions.value = regions
    regions.data = []
    widget.run()
    assert "no rectangle" in messages[-1]
    viewer.add_labels(np.ones((10, 10), np.uint8), name="wrong")
    widget.annotation_layer.value = viewer.layers["wrong"]
    widget.run()
    assert "has shape (10, 10)" in messages[-1]
    viewer.layers.clear()
    widget.run()
    assert "no image layer" in messages[-1]
    assert widget.worker is None and widget.controls.run.enabled


def test_a_failed_finetune_registers_nothing_and_keeps_the_selection(widget, viewer, registry, messages, qtbot,
                                                                       monkeypatch):
    from napari_unet._widgets import finetune
    from napari_unet._widgets.segment import SegmentWidget

    segment = SegmentWidget(viewer)
    segment.model.select("tiny")
    annotate_top_left(widget, viewer)

    def failing_job(*args):
        yield from ()
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(finetune, "finetune_job", failing_job)
    names = registry.names()
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "CUDA out of memory" in messages[-1] and "Fine-tune" in messages[-1]
    assert registry.names() == names and segment.model.choice.value == "tiny"
    assert widget.trained is None and not widget.save.enabled
    assert "nuclei annotation" in viewer.layers and viewer.layers["nuclei annotation"].data.any()


def test_a_diverged_finetune_is_reported_and_not_registered(widget, viewer, registry, messages, qtbot,
                                                             monkeypatch, tiny_model):
    from napari_unet._widgets import finetune
    from napari_unet.events import TrainFinished

    def diverging_job(*args):
        yield from ()
        return TrainFinished(model=tiny_model, steps=0, reason="diverged", message="loss became nan at step 1")

    monkeypatch.setattr(finetune, "finetune_job", diverging_job)
    annotate_top_left(widget, viewer)
    names = registry.names()
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "loss became nan" in messages[-1] and registry.names() == names
