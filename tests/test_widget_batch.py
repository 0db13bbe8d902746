"""Batch segment dock widget in a real viewer (Xvfb): a trained tiny model, small images."""

import dask.array as da
import numpy as np
import pytest
import tifffile
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
    from napari_unet._widgets.batch import BatchWidget

    widget = BatchWidget(viewer)
    widget.model.select(registry.add("trained", trained_model))
    widget.device.value = "cpu"
    return widget


@pytest.fixture
def stack(viewer):
    image = viewer.layers["nuclei"].data
    data = da.from_array(np.stack([image[:48, :64], image[48:, 64:]]), chunks=(1, 48, 64))
    return viewer.add_image(data, name="stack/2")


def test_every_image_gets_its_labels_layer_and_tiff(widget, viewer, stack, qtbot, trained_model, tmp_path):
    viewer.add_image(np.zeros((8, 8), np.float32), name="made here", metadata={"napari_unet": {"role": "x"}})
    widget.save.value = True
    widget.folder.value = tmp_path
    widget.run()
    wait_until_idle(qtbot, widget)
    expected = {"nuclei": nu.segment(viewer.layers["nuclei"].data, trained_model, device="cpu"),
                "stack/2": nu.segment(stack.data, trained_model, device="cpu", axes="ZYX")}
    assert count_cells(expected["nuclei"]) >= 3
    for name, labels in expected.items():
        np.testing.assert_array_equal(viewer.layers[f"{name} labels"].data, labels)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "nuclei_labels.tif"), expected["nuclei"])
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "stack_2_labels.tif"), expected["stack/2"])
    assert "made here labels" not in viewer.layers  # the plugin's own outputs are not inputs
    assert widget.controls.progress.value == widget.controls.progress.max == 3  # planes: 1 + 2


def test_split_touching_reaches_every_image(widget, viewer, qtbot, trained_model):
    image = viewer.layers["nuclei"].data
    expected = nu.segment(image, trained_model, device="cpu", seeds="interior")
    assert not np.array_equal(expected, nu.segment(image, trained_model, device="cpu"))
    widget.split.value = "interior"
    widget.run()
    wait_until_idle(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, expected)


def test_labelling_and_mirror_options_reach_every_image(widget, viewer, qtbot, trained_model):
    image = viewer.layers["nuclei"].data
    expected = nu.segment(image, trained_model, device="cpu", threshold=0.8, split_depth=4.0, flips=True)
    assert not np.array_equal(expected, nu.segment(image, trained_model, device="cpu"))
    widget.labelling.threshold.value, widget.labelling.split_depth.value = 0.8, 4.0
    widget.flips.value = True
    widget.run()
    wait_until_idle(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, expected)


def test_selected_images_only_and_rerun_updates_the_same_layer(widget, viewer, stack, qtbot):
    user_layer = viewer.add_labels(np.full((96, 128), 5, np.uint8), name="stack/2 labels")
    widget.images.value = [stack]
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "nuclei labels" not in viewer.layers
    ours = [layer for layer in viewer.layers if layer.name.startswith("stack/2 labels") and layer is not user_layer]
    assert len(ours) == 1 and ours[0].data.shape == (2, 48, 64)
    layers_before = list(viewer.layers)
    widget.run()
    wait_until_idle(qtbot, widget)
    assert list(viewer.layers) == layers_before and (user_layer.data == 5).all()


def test_cancel_stops_after_the_current_plane(widget, viewer, qtbot):
    big = viewer.add_image(np.repeat(viewer.layers["nuclei"].data[None], 6, axis=0), name="big")
    widget.images.value = [big]
    done = []
    widget.run()
    widget.worker.yielded.connect(lambda item: (done.append(item.done), widget.controls.cancel.clicked()))
    wait_until_idle(qtbot, widget)
    assert 1 <= len(done) < 6 and "big labels" not in viewer.layers
    assert widget.controls.status.value == "cancelled"


def test_bad_inputs_are_explained_before_a_run(widget, viewer, messages, tmp_path):
    widget.save.value = True
    widget.folder.value = tmp_path / "missing"
    widget.run()
    assert "does not exist" in messages[-1] and widget.worker is None
    assert messages[-1] in widget.controls.status.value
    viewer.layers.clear()
    widget.run()
    assert "no image layer" in messages[-1] and widget.worker is None
    assert messages[-1] in widget.controls.status.value


def test_an_error_in_the_worker_is_reported_and_layers_survive(widget, viewer, messages, qtbot, monkeypatch):
    from napari_unet._widgets import batch

    def failing_job(*args):
        yield from ()
        raise MemoryError("not enough memory for the tile")

    monkeypatch.setattr(batch, "segment_batch", failing_job)
    names = [layer.name for layer in viewer.layers]
    widget.run()
    wait_until_idle(qtbot, widget)
    assert "Batch segment failed" in messages[-1] and "not enough memory" in messages[-1]
    assert "not enough memory" in widget.controls.status.value
    assert [layer.name for layer in viewer.layers] == names and widget.controls.run.enabled


@pytest.fixture
def infos(monkeypatch):
    """The text of every information notification the widgets show."""
    from napari_unet._widgets import _worker

    shown = []
    monkeypatch.setattr(_worker, "show_info", shown.append)
    return shown


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The current directory, moved to an empty folder: nothing may be written there."""
    folder = tmp_path / "current directory"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_without_a_folder_results_go_next_to_the_image_file(widget, viewer, qtbot, tmp_path, infos, elsewhere):
    data = tmp_path / "day 1"
    data.mkdir()
    tifffile.imwrite(data / "cells.tif", viewer.layers["nuclei"].data)
    [layer] = viewer.open(str(data / "cells.tif"), plugin="napari")
    widget.ask_folder = lambda names: pytest.fail(f"asked for a folder for {names}")
    widget.images.value = [layer]
    widget.save.value = True
    widget.run()
    wait_until_idle(qtbot, widget)
    np.testing.assert_array_equal(tifffile.imread(data / "cells_labels.tif"), viewer.layers["cells labels"].data)
    assert list(elsewhere.iterdir()) == []
    assert str(data) in widget.controls.status.value and str(data) in infos[-1]  # says where it wrote


def test_images_not_read_from_a_file_ask_for_a_folder(widget, viewer, qtbot, tmp_path, messages, infos, elsewhere):
    asked = []
    widget.ask_folder = lambda names: asked.append(names)  # the user closes the dialog: None
    widget.images.value = [viewer.layers["nuclei"]]
    widget.save.value = True
    widget.run()
    assert asked == [["nuclei"]] and widget.worker is None
    assert "no folder chosen" in widget.controls.status.value and "no folder chosen" in messages[-1]
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    widget.ask_folder = lambda names: chosen
    widget.run()
    wait_until_idle(qtbot, widget)
    np.testing.assert_array_equal(tifffile.imread(chosen / "nuclei_labels.tif"), viewer.layers["nuclei labels"].data)
    assert list(elsewhere.iterdir()) == []
    assert str(chosen) in widget.controls.status.value and str(chosen) in infos[-1]


def test_the_status_line_is_not_cut_short(widget, viewer, qtbot):
    widget.run()
    wait_until_idle(qtbot, widget)
    status = widget.controls.status
    assert status.value.startswith("Batch segment: 1 plane(s) done")
    # in a narrow dock the message takes more lines instead of being cut off
    assert status.native.heightForWidth(100) > status.native.heightForWidth(2000) > 0


def test_advanced_options_are_folded_away(widget):
    assert_advanced_folded(widget, [widget.labelling.threshold, widget.labelling.split_depth, widget.device,
                                    widget.precision, widget.flips])


def test_every_control_has_a_tooltip(widget):
    assert_every_control_explained(widget)
