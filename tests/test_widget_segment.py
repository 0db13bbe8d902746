"""Segment dock widget in a real viewer (Xvfb): tiny models, a 96 x 128 crop of the sample."""

import dask.array as da
import numpy as np
import pytest
from widget_helpers import (  # noqa: F401
    assert_advanced_folded,
    assert_every_control_explained,
    count_cells,
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
    from napari_unet._widgets.segment import SegmentWidget

    widget = SegmentWidget(viewer)
    widget.model.select(registry.add("trained", trained_model))
    widget.image.value = viewer.layers["nuclei"]
    widget.tile_size.value = 32
    return widget


def run_collecting(widget):
    """What the worker yields to the viewer, after the first ImageRead (what was decided)."""
    from napari_unet.events import ImageRead

    items = []
    widget.run()
    widget.worker.yielded.connect(lambda item: None if isinstance(item, ImageRead) else items.append(item))
    return items


def test_labels_fill_tile_by_tile_and_end_equal_to_segment(widget, viewer, qtbot, trained_model):
    from napari_unet.events import PlaneLabelled, TilePainted

    widget.with_probabilities.value = True
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (0, 80, 120)  # the view sits on the bottom-right corner
    items = run_collecting(widget)
    wait_until_idle(qtbot, widget)
    expected = nu.segment(viewer.layers["nuclei"].data, trained_model, tile_size=32, device="cpu")
    assert count_cells(expected) >= 3
    np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, expected)
    tiles = [item for item in items if isinstance(item, TilePainted)]
    assert len(tiles) == tiles[0].total > 1 and isinstance(items[-1], PlaneLabelled)
    first = tiles[0]
    assert first.y.start <= 80 < first.y.stop and first.x.start <= 120 < first.x.stop  # visible tiles first
    probabilities = nu.predict_probabilities(viewer.layers["nuclei"].data, trained_model, tile_size=32, device="cpu")
    np.testing.assert_allclose(viewer.layers["nuclei boundary probability"].data, probabilities[2], atol=1e-6)
    assert "cells" in widget.controls.status.value and widget.controls.run.enabled


def test_a_stack_starts_with_the_plane_on_screen(widget, viewer, qtbot, trained_model):
    image = viewer.layers["nuclei"].data
    stack = da.from_array(np.stack([image, image[::-1], image[:, ::-1]]), chunks=(1, 48, 64))  # dask-backed
    layer = viewer.add_image(stack, name="stack")
    viewer.dims.set_current_step(0, 2)
    widget.image.value = layer
    items = run_collecting(widget)
    wait_until_idle(qtbot, widget)
    assert items[0].plane == 2
    expected = nu.segment(stack, trained_model, tile_size=32, device="cpu", axes="ZYX")
    np.testing.assert_array_equal(viewer.layers["stack labels"].data, expected)


def test_a_z_stack_gives_each_nucleus_one_id_through_its_planes(widget, viewer, qtbot):
    image = viewer.layers["nuclei"].data
    widget.image.value = viewer.add_image(np.stack([image, image, image]), name="stack")
    widget.run()
    wait_until_idle(qtbot, widget)
    labels = viewer.layers["stack labels"].data
    first = labels[0]
    assert count_cells(first) > 1
    for plane in labels[1:]:
        np.testing.assert_array_equal(plane, first)  # the same nucleus keeps its id in every plane
    assert count_cells(labels) == count_cells(first)
    assert widget.controls.status.value.endswith(f"done, {count_cells(first)} cells")


def test_a_z_stacks_layer_scale_is_its_z_step(widget, viewer):
    image = viewer.layers["nuclei"].data
    stack = viewer.add_image(np.stack([image, image]), name="scaled stack", scale=(2.0, 0.5, 0.5))
    assert widget.config(stack).z_step == 4.0  # 2 um planes of 0.5 um pixels
    assert widget.config(viewer.layers["nuclei"]).z_step is None


def test_rgb_images_are_segmented(widget, viewer, qtbot, trained_model):
    grey = viewer.layers["nuclei"].data
    rgb = np.stack([grey, grey // 2, grey // 3], axis=-1)
    widget.image.value = viewer.add_image(rgb, name="colour", rgb=True)
    widget.run()
    wait_until_idle(qtbot, widget)
    expected = nu.segment(rgb, trained_model, tile_size=32, device="cpu", axes="YXC")
    assert viewer.layers["colour labels"].data.shape == grey.shape
    np.testing.assert_array_equal(viewer.layers["colour labels"].data, expected)


def test_split_touching_chooses_the_seeds(widget, viewer, qtbot, trained_model):
    image = viewer.layers["nuclei"].data
    results = {seeds: nu.segment(image, trained_model, tile_size=32, device="cpu", seeds=seeds)
               for seeds in ("distance", "interior")}
    assert not np.array_equal(results["distance"], results["interior"])  # the choice matters here
    assert widget.split.value == "distance"
    for seeds in ("interior", "distance"):
        widget.split.value = seeds
        widget.run()
        wait_until_idle(qtbot, widget)
        np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, results[seeds])


def test_mirror_averaging_gives_the_apis_flipped_labels(widget, viewer, qtbot, trained_model):
    image = viewer.layers["nuclei"].data
    expected = nu.segment(image, trained_model, tile_size=32, device="cpu", flips=True)
    assert not np.array_equal(expected, nu.segment(image, trained_model, tile_size=32, device="cpu"))
    assert not widget.flips.value
    widget.flips.value = True
    widget.run()
    wait_until_idle(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, expected)


def test_labelling_fields_override_the_models_values_and_zero_keeps_them(widget, viewer, qtbot, trained_model):
    image = viewer.layers["nuclei"].data
    assert widget.labelling.options() == {"threshold": None, "split_depth": None}
    expected = nu.segment(image, trained_model, tile_size=32, device="cpu", threshold=0.8, split_depth=4.0)
    assert not np.array_equal(expected, nu.segment(image, trained_model, tile_size=32, device="cpu"))
    widget.labelling.threshold.value, widget.labelling.split_depth.value = 0.8, 4.0
    widget.run()
    wait_until_idle(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, expected)


def test_rerun_updates_its_own_layer_and_never_a_users(widget, viewer, qtbot):
    mine = viewer.add_labels(np.full((96, 128), 7, np.uint16), name="nuclei labels")
    widget.run()
    wait_until_idle(qtbot, widget)
    ours = widget.labels_layer
    assert ours is not mine and (mine.data == 7).all()
    layers_before = list(viewer.layers)
    widget.tile_size.value = 64
    widget.run()
    wait_until_idle(qtbot, widget)
    assert widget.labels_layer is ours and list(viewer.layers) == layers_before
    assert (mine.data == 7).all()


def test_prune_levels_are_offered_only_for_a_deeply_supervised_unetplusplus(widget, registry, viewer, qtbot):
    assert not widget.prune_level.enabled and widget.prune_level.choices == ("accurate",)
    model = nu.create_model("unetplusplus", depth=2, base_channels=8, deep_supervision=True)
    model.network.eval()
    widget.model.select(registry.add("nested", model))
    assert widget.prune_level.enabled and widget.prune_level.choices == ("accurate", "L1")
    widget.prune_level.value = "L1"
    widget.run()
    wait_until_idle(qtbot, widget)
    expected = nu.segment(viewer.layers["nuclei"].data, model, tile_size=32, device="cpu", prune_level=1)
    np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, expected)


def test_cancel_stops_at_the_next_tile_while_the_event_loop_keeps_running(widget, qtbot):
    from qtpy.QtCore import QTimer

    widget.tile_size.value = 8  # 12 x 16 tiles
    ticks = []

    def tick():
        ticks.append(widget.worker is not None)
        if len(ticks) == 10:  # the GUI thread ran ten times during the run: press Cancel
            widget.controls.cancel.clicked()

    timer = QTimer()
    timer.timeout.connect(tick)
    items = run_collecting(widget)
    timer.start(10)
    wait_until_idle(qtbot, widget)
    timer.stop()
    assert ticks[:10] == [True] * 10
    assert 1 <= len(items) < items[0].total
    assert widget.controls.status.value == "cancelled" and widget.controls.run.enabled


def test_closing_the_widget_mid_run_stops_the_worker(widget, qtbot):
    widget.tile_size.value = 8
    widget.run()
    worker = widget.worker
    widget.native.deleteLater()
    qtbot.waitUntil(lambda: worker.abort_requested, timeout=10_000)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=60_000)


def test_bad_inputs_are_explained_before_a_run(widget, viewer, messages, tmp_path):
    from napari_unet._widgets._registry import OPEN_FILE

    widget.model.choice.value = OPEN_FILE
    widget.model.file.value = tmp_path / "missing.safetensors"
    widget.run()
    assert "does not exist" in messages[-1] and widget.worker is None
    assert messages[-1] in widget.controls.status.value  # kept in the widget, not only in a passing toast
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    widget.model.file.value = bad
    widget.run()
    assert "bad.safetensors" in messages[-1] and widget.worker is None
    assert messages[-1] in widget.controls.status.value
    viewer.layers.clear()
    widget.run()
    assert "no image layer" in messages[-1] and widget.worker is None
    assert messages[-1] in widget.controls.status.value and widget.controls.status.native.wordWrap()


def test_an_error_in_the_worker_is_reported_and_nothing_is_lost(widget, viewer, messages, qtbot, monkeypatch):
    from napari_unet._widgets import segment

    def failing_job(*args):
        yield from ()
        raise RuntimeError("CUDA error: device-side assert triggered")  # torch raises RuntimeError

    monkeypatch.setattr(segment, "segment_with_previews", failing_job)
    layers_before = [(layer.name, layer.data.copy()) for layer in viewer.layers]
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "device-side assert" in messages[-1] and "device-side assert" in widget.controls.status.value
    assert widget.controls.run.enabled and not widget.controls.cancel.enabled
    for name, data in layers_before:
        np.testing.assert_array_equal(viewer.layers[name].data, data)


def test_closing_the_viewer_mid_run_stops_the_worker(widget, viewer, qtbot):
    viewer.window.add_dock_widget(widget, name="Segment")
    widget.tile_size.value = 8
    widget.run()
    worker = widget.worker
    viewer.close()
    qtbot.waitUntil(lambda: worker.abort_requested, timeout=10_000)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=60_000)


def test_advanced_options_are_folded_away(widget):
    assert_advanced_folded(widget, [widget.labelling.threshold, widget.labelling.split_depth, widget.tile_size,
                                    widget.device, widget.precision, widget.prune_level, widget.flips,
                                    widget.with_probabilities])


def test_every_control_has_a_tooltip(widget):
    assert_every_control_explained(widget)


def test_the_estimate_button_fills_the_diameter_field(widget, viewer, qtbot, registry, trained_model):
    import copy

    model = copy.deepcopy(trained_model)
    model.diameter = 12.0  # a working scale, so the image's own size can be measured
    widget.model.select(registry.add("with a scale", model))
    widget.image_options.estimate.clicked.emit()
    wait_until_idle(qtbot, widget)
    expected = nu.estimate_diameter(viewer.layers["nuclei"].data, model, device="cpu").diameter
    assert expected is not None
    assert widget.image_options.diameter.value == pytest.approx(round(expected, 1))
    assert f"{expected:.1f} px" in widget.controls.status.value


def test_an_implausible_result_is_named_in_the_status_line(widget, viewer, qtbot, registry, trained_model,
                                                            monkeypatch):
    import copy

    from napari_unet.inference import segment as core
    from test_plausibility import fragments

    monkeypatch.setattr(core, "label_plane", lambda probabilities, reading, config: fragments(
        reading.layout.plane_shape, step=4))
    model = copy.deepcopy(trained_model)
    model.diameter = 20.0
    widget.model.select(registry.add("sized", model))
    widget.image_options.diameter.value = 20.0
    widget.run()
    wait_until_idle(qtbot, widget)
    status = widget.controls.status.value
    assert "done" in status and "⚠" in status and "far below the 20 px" in status and "fine-tune" in status


def test_a_very_noisy_image_is_said_to_be_smoothed(widget, viewer, qtbot, rng):
    image = viewer.layers["nuclei"].data.astype(np.float32)
    spread = float(np.percentile(image, 99.8) - np.percentile(image, 1))
    viewer.add_image(image + rng.normal(0, 0.2 * spread, image.shape).astype(np.float32), name="noisy")
    widget.image.value = viewer.layers["noisy"]
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "smoothed" in widget.image_options.found.value
    widget.image.value = viewer.layers["nuclei"]
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "smoothed" not in widget.image_options.found.value
