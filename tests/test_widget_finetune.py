"""Annotate and fine-tune dock widget in a real viewer (Xvfb): tiny model, a few steps."""

import numpy as np
import pytest
from widget_helpers import (  # noqa: F401
    assert_advanced_folded,
    assert_every_control_explained,
    messages,
    registry,
    trained_model,
    viewer,
    wait_until_idle,
)

import napari_unet as nu

pytest.importorskip("napari")


@pytest.fixture
def widget(viewer, registry, trained_model):
    from napari_unet._widgets.finetune import FinetuneWidget

    widget = FinetuneWidget(viewer)
    # a model that already finds cells: three more steps do not make it collapse
    widget.model.select(registry.add("tiny", trained_model))
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

    from napari_unet._widgets._annotation import pick_cell_label

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
    widget.add_weight_map()  # again: the same layer is updated
    assert [layer.name for layer in viewer.layers].count("nuclei annotation weights") == 1


def test_augmentation_preview_opens_a_window_and_leaves_the_viewer_alone(widget, viewer):
    from napari_unet._widgets._augment_preview import OUTLINE, outlined_rgb

    annotate_top_left(widget, viewer)
    layers, dims = list(viewer.layers), (viewer.dims.ndim, viewer.dims.nsteps)
    widget.preview_augmentation()
    preview = widget.augmentation_preview
    assert preview.isVisible() and len(preview.thumbnails) == 4
    assert all(sample.image.shape == (96, 128) and sample.labels.max() > 0 for sample in preview.samples)
    assert all(not label.pixmap().isNull() for label in preview.thumbnails)
    assert list(viewer.layers) == layers and (viewer.dims.ndim, viewer.dims.nsteps) == dims  # no slider added
    widget.preview_augmentation()  # again: new samples in the same window
    assert widget.augmentation_preview is preview and len(preview.thumbnails) == 4
    picture = outlined_rgb(preview.samples[0].image, preview.samples[0].labels)
    cells = preview.samples[0].labels > 0
    assert picture.shape == (96, 128, 3) and picture.dtype == np.uint8
    assert (picture[cells] == OUTLINE).all(axis=-1).any() and not (picture[~cells] == OUTLINE).all(axis=-1).any()


def test_finetune_registers_a_model_for_the_other_widgets_and_saves_it(widget, viewer, qtbot, tmp_path):
    from napari_unet._widgets.segment import SegmentWidget

    segment = SegmentWidget(viewer)
    annotate_top_left(widget, viewer)
    widget.learning_rate.value = "5e-5"
    steps = []
    widget.run()
    widget.worker.yielded.connect(steps.append)
    wait_until_idle(qtbot, widget)
    assert "widget model" in segment.model.choice.choices
    assert len(widget.loss_plot.losses) == 3 and all(np.isfinite(widget.loss_plot.losses))
    assert widget.controls.progress.max == 120  # the 2-minute budget, in seconds
    assert 0 <= widget.controls.progress.value <= 120
    assert "fine-tune preview" in viewer.layers
    # the live preview is the current model's labels of the visible region
    assert viewer.layers["fine-tune preview"].data.shape == (96, 128)

    path = tmp_path / "tuned.safetensors"
    widget.save_path.value = path
    assert widget.save_model() == path
    assert str(path) in widget.controls.status.value
    saved = nu.load_model(path)
    assert saved.name == "widget model" and saved.history[-1]["steps"] == 3
    assert saved.history[-1]["config"]["learning_rate"] == 5e-5  # as typed, not rounded to 0.0001
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
    assert "unpainted = background" in widget.regions.current_choice  # what no regions layer means
    pairs = widget.pairs()
    assert len(pairs) == 2
    assert pairs[0].regions is None and pairs[1].regions == [(0, 48, 0, 64)]  # each image its own regions
    widget.image.value = viewer.layers["nuclei"]  # back: its own annotation and regions are picked again
    assert widget.annotation_layer.value is viewer.layers["nuclei annotation"]
    assert widget.regions.value is viewer.layers["nuclei training regions"]


def test_unusable_inputs_are_explained_before_a_run(widget, viewer, messages):
    viewer.layers.remove("nuclei ground truth")
    widget.run()
    assert "no annotation layer" in messages[-1] and messages[-1] in widget.controls.status.value
    annotation = widget.add_annotation_layer()
    widget.run()
    assert "annotation is empty" in messages[-1] and messages[-1] in widget.controls.status.value
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
    assert "has shape (10, 10)" in messages[-1] and messages[-1] in widget.controls.status.value
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

    monkeypatch.setattr(finetune, "iter_finetune_previews", failing_job)
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

    monkeypatch.setattr(finetune, "iter_finetune_previews", diverging_job)
    annotate_top_left(widget, viewer)
    names = registry.names()
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "loss became nan" in messages[-1] and registry.names() == names


def test_a_run_not_better_on_held_out_cells_keeps_the_start_and_says_so(widget, viewer, registry, qtbot,
                                                                       monkeypatch):
    from napari_unet.events import TrainStep, Validation
    from napari_unet.training import loop
    from napari_unet._widgets.segment import SegmentWidget

    segment = SegmentWidget(viewer)
    segment.model.select("tiny")
    annotation = widget.add_annotation_layer()
    annotation.data[:] = viewer.layers["nuclei ground truth"].data  # enough cells to hold some out
    scores = iter([0.9, 0.4])  # the start, then the check at the last step
    monkeypatch.setattr(loop, "score_held_out", lambda *a, **k: {"cells": 3, "found": 2, "false": 1,
                                                                 "ap50": next(scores), "pq": 0.5})
    widget.live_preview.value = False
    names = registry.names()
    widget.run()
    wait_until_idle(qtbot, widget)
    status = widget.controls.status.value
    assert "held-out cells AP@0.5 0.90 -> 0.40, not better: the starting model is kept" in status
    assert registry.names() == names and segment.model.choice.value == "tiny" and widget.trained is None
    # while training, the status line shows the latest held-out score next to the start's
    for step, ap in ((0, 0.9), (50, 0.7)):
        widget._show(Validation(step=step, metrics={"cells": 3, "found": 2, "false": 0, "ap50": ap, "pq": 0.5},
                                model=None))
    widget._show(TrainStep(step=51, iterations=100, loss=0.5, learning_rate=1e-3, elapsed=5.0, eta=5.0,
                           batch_size=4, model=None))
    assert "held-out cells AP 0.70 (start 0.90)" in widget.controls.status.value


def test_the_learning_rate_keeps_small_values(widget, qtbot, messages):
    field = widget.learning_rate
    assert field.value == "1e-3" and widget.config().learning_rate == 1e-3
    assert widget.config().anchor == nu.TrainConfig().anchor  # the API's default
    widget.anchor.value = 250.0
    assert widget.config().anchor == 250.0
    for typed, expected in (("5e-5", 5e-5), ("1e-6", 1e-6), ("0.00025", 2.5e-4)):
        field.native.clear()
        qtbot.keyClicks(field.native, typed)
        assert field.value == typed and widget.config().learning_rate == expected
    field.native.clear()
    qtbot.keyClicks(field.native, "fast")
    assert field.value == ""  # letters are refused as they are typed
    widget.run()
    assert "learning rate '' is not a positive number" in widget.controls.status.value and widget.worker is None


def test_the_loss_plot_is_scaled_to_the_bulk_of_the_curve(qtbot):
    from napari_unet._widgets._loss_plot import LossPlot, nice_ticks

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(360, 160)
    for loss in [40.0] + list(np.linspace(1.0, 0.3, 199)):  # one spike, then the real decrease
        plot.append(loss)
    low, high = plot.y_limits()
    assert high < 1.2 and low < 0.3
    to_pixel, area = plot.mapping(), plot.plot_area()
    assert to_pixel(200, 0.3).y() - to_pixel(2, 1.0).y() > 0.8 * area.height()  # the decrease fills the plot
    assert area.left() > 30 and area.bottom() < plot.height() - 15  # room for the tick labels
    ticks = nice_ticks(low, high)
    assert 3 <= len(ticks) <= 6 and all(low <= tick <= high for tick in ticks)
    assert nice_ticks(1, 200, smallest_step=1) == [50, 100, 150, 200]
    assert nice_ticks(1, 3, smallest_step=1) == [1, 2, 3]
    assert not plot.grab().isNull()


def test_validation_losses_join_the_plot(widget):
    from napari_unet.events import Validation

    widget._show(Validation(step=50, metrics={"loss": 0.7, "ap50": 0.4, "iou": 0.5}, model=None))
    widget._show(Validation(step=100, metrics={"loss": 0.6, "ap50": 0.5, "iou": 0.6}, model=None))
    assert widget.loss_plot.validation == [(50, 0.7), (100, 0.6)]
    assert widget.loss_plot.x_limit() == 100 and widget.loss_plot.y_limits()[1] >= 0.7


def test_the_time_left_ignores_the_slow_first_steps(widget):
    from napari_unet.events import TrainStep

    status = widget.controls.status
    widget.controls.progress.max = 1000  # a time budget (seconds) far off: the steps decide
    for step in range(1, 11):  # the first step takes 10 s, the others 1 s each
        widget._show(TrainStep(step=step, iterations=100, loss=0.5, learning_rate=1e-3, elapsed=9.0 + step,
                               eta=0.0, batch_size=4, model=None))
        if step == 2:
            assert "estimating" in status.value
    assert "ETA 1:30" in status.value  # 90 steps of 1 s; elapsed / steps said 2:51


def test_advanced_options_are_folded_away(widget):
    assert_advanced_folded(widget, [widget.iterations, widget.learning_rate, widget.anchor, widget.keep_worse])


def test_every_control_has_a_tooltip(widget):
    assert_every_control_explained(widget)
    assert len(widget.loss_plot.toolTip()) > 40


def test_three_docks_fit_a_laptop_screen(viewer, registry, qtbot):
    from napari_unet._widgets.batch import BatchWidget
    from napari_unet._widgets.finetune import FinetuneWidget
    from napari_unet._widgets.segment import SegmentWidget

    widgets = [SegmentWidget(viewer), FinetuneWidget(viewer), BatchWidget(viewer)]
    for widget, name in zip(widgets, ("Segment", "Annotate and fine-tune", "Batch segment")):
        viewer.window.add_dock_widget(widget, name=name, area="right")
    viewer.window.show()
    qtbot.wait(100)
    viewer.window.resize(1366, 768)
    qtbot.wait(300)
    assert viewer.window.geometry()[3] <= 768  # the docks scroll instead of stretching the window
    for widget in widgets:
        assert widget.native.width() <= 450
        run = widget.controls.run.native
        widget.scroll_area.ensureWidgetVisible(run)
        qtbot.wait(50)
        assert not run.visibleRegion().isEmpty()  # every control can be scrolled to


def test_the_segmentation_becomes_an_annotation_to_correct(widget, viewer, qtbot, registry, trained_model):  # noqa: F811
    from napari_unet._widgets.segment import SegmentWidget

    segment = SegmentWidget(viewer)
    segment.model.select(registry.add("trained", trained_model))
    segment.image.value = viewer.layers["nuclei"]
    segment.run()
    wait_until_idle(qtbot, segment)
    segmentation = viewer.layers["nuclei labels"]
    before = segmentation.data.copy()
    user_layers = {layer.name: np.asarray(layer.data).copy() for layer in viewer.layers}
    regions = widget.add_regions_layer()
    regions.add_rectangles(np.array([[0, 0], [48, 64]]))
    annotation = widget.correct_segmentation()
    assert widget.annotation_layer.value is annotation and widget.regions.value is regions
    assert annotation is not segmentation and annotation.name == "nuclei corrections"
    inside = before[:48, :64]
    np.testing.assert_array_equal(annotation.data[:48, :64], inside)
    assert not annotation.data[48:].any() and not annotation.data[:, 64:].any()  # only the region's cells
    np.testing.assert_array_equal(segmentation.data, before)
    for name, data in user_layers.items():
        np.testing.assert_array_equal(np.asarray(viewer.layers[name].data), data)
    pairs = widget.pairs()
    assert pairs[0].regions == [(0, 48, 0, 64)]


def test_correcting_needs_a_segmentation_first(widget, viewer):
    assert widget.correct_segmentation() is None
    assert "segment it with the Segment widget first" in widget.controls.status.value


def test_each_round_is_a_new_named_model_version(widget, viewer, qtbot, registry):
    annotate_top_left(widget, viewer)
    widget.model_name.value = "my cells"
    widget.live_preview.value = False
    rounds_before = [entry["kind"] for entry in registry.get("tiny").history].count("finetune")
    for round_, expected in enumerate(("my cells", "my cells r2"), start=1):
        widget.run()
        wait_until_idle(qtbot, widget)
        assert expected in widget.model.choice.choices
        assert widget.model.choice.value == expected  # the next round starts from this one
        history = registry.get(expected).history
        assert [entry["kind"] for entry in history].count("finetune") == rounds_before + round_
        assert history[-1]["annotated_cells"] > 0 and "training_scores" in history[-1]
        assert history[-1]["round"] == rounds_before + round_ and history[-1]["seconds"] > 0
    assert widget.model_name.value == "my cells r3"


def test_annotate_here_next_shows_the_uncertainty_and_suggests_regions(widget, viewer, qtbot):
    widget.suggest_regions()
    wait_until_idle(qtbot, widget)
    uncertainty = viewer.layers["nuclei uncertainty"]
    assert uncertainty.data.shape == viewer.layers["nuclei"].data.shape
    suggested = viewer.layers["nuclei annotate here next"]
    assert widget.regions.value is suggested and len(suggested.data) >= 1
    assert "most uncertain" in widget.controls.status.value
