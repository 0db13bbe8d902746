"""Every button clicked and every field set, in each of the three docks, with its effect
asserted (a small image, tiny models, a real viewer under Xvfb). A control added to a dock
without a line here fails ``test_..._every_control``: each dock's walk names every control
it touched and the test compares that with what the dock holds."""

from pathlib import Path

import numpy as np
import pytest
from widget_helpers import controls_of, messages, registry, trained_model, viewer, wait_until_idle  # noqa: F401

import napari_unet as nu

pytest.importorskip("napari")
OPEN_FILE = pytest.importorskip("napari_unet._widgets._registry").OPEN_FILE


def touched_all(widget, touched: list) -> None:
    """Every control of ``widget`` was exercised (by identity), and nothing else."""
    controls = list(controls_of(widget))
    missing = [getattr(c, "label", "") or getattr(c, "text", "") for c in controls
               if not any(c is t for t in touched)]
    assert missing == [], f"controls no test touched: {missing}"


def shown(control) -> bool:
    """Not hidden by the dock (the dock itself is not on screen in these tests)."""
    return not control.native.isHidden()


def click(button) -> None:
    """A user's click: Qt's own click on the push button."""
    button.native.click()


@pytest.fixture
def sized(trained_model):
    import copy

    model = copy.deepcopy(trained_model)
    model.diameter = 12.0  # a working scale: the size can be estimated
    return model


def test_segment_dock_every_control(viewer, registry, sized, qtbot, tmp_path):
    from napari_unet._widgets.segment import SegmentWidget

    w = SegmentWidget(viewer)
    touched = []

    def use(control):
        touched.append(control)
        return control

    image = viewer.layers["nuclei"]
    use(w.image).value = image
    use(w.model.choice).value = registry.add("sized", sized)
    assert w.model.load("cpu").diameter == 12.0  # the chosen one (the picker hands out its own copy)
    path = nu.save_model(sized, tmp_path / "from file.safetensors")
    w.model.choice.value = OPEN_FILE
    assert shown(w.model.file)
    use(w.model.file).value = path
    assert Path(w.model.spec()) == path and w.model.load("cpu").diameter == 12.0
    w.model.choice.value = "sized"
    click(use(w.image_options.estimate))
    wait_until_idle(qtbot, w)
    estimated = w.image_options.diameter.value
    assert estimated > 0 and "px" in w.controls.status.value
    use(w.image_options.diameter).value = 11.0
    use(w.image_options.polarity).value = False
    use(w.split).value = "interior"
    use(w.labelling.threshold).value = 0.6
    use(w.labelling.split_depth).value = 2.0
    use(w.tile_size).value = 32
    use(w.device).value = "cpu"
    use(w.precision).value = "fp32"
    use(w.flips).value = True
    config = w.config(image)
    assert (config.diameter, config.invert, config.seeds, config.threshold, config.split_depth) == \
        (11.0, False, "interior", 0.6, 2.0)
    assert (config.tile_size, config.device, config.precision, config.flips) == (32, "cpu", "fp32", True)
    # the UNet++ level: offered (and then used) only for a deeply supervised UNet++
    assert not use(w.prune_level).enabled
    plus = nu.create_model("unetplusplus", depth=2, base_channels=8, deep_supervision=True)
    w.model.choice.value = registry.add("plus", plus)
    assert w.prune_level.enabled and "L1" in w.prune_level.choices
    w.prune_level.value = "L1"
    assert w.config(image).prune_level == 1
    w.model.choice.value = "sized"
    assert not w.prune_level.enabled
    use(w.with_probabilities).value = True
    w.flips.value = False
    click(use(w.controls.run))
    wait_until_idle(qtbot, w)
    assert "nuclei labels" in viewer.layers and "nuclei interior probability" in viewer.layers
    expected = nu.segment(image.data, sized, diameter=11.0, invert=False, seeds="interior", threshold=0.6,
                          split_depth=2.0, tile_size=32, device="cpu", precision="fp32")
    np.testing.assert_array_equal(viewer.layers["nuclei labels"].data, expected)
    assert use(w.controls.progress).value == w.controls.progress.max > 0
    w.tile_size.value = 8  # many tiles: time to cancel
    w.with_probabilities.value = False
    w.run()
    click(use(w.controls.cancel))
    wait_until_idle(qtbot, w)
    assert w.controls.status.value == "cancelled" and w.controls.run.enabled
    touched_all(w, touched)


def test_batch_dock_every_control(viewer, registry, sized, qtbot, tmp_path):
    from napari_unet._widgets.batch import BatchWidget

    viewer.add_image(viewer.layers["nuclei"].data[:48, :64].copy(), name="crop")
    w = BatchWidget(viewer)
    touched = []

    def use(control):
        touched.append(control)
        return control

    assert not shown(use(w.image_options.estimate))  # each image's size is estimated on its own
    use(w.images).value = [viewer.layers["crop"]]
    use(w.model.choice).value = registry.add("sized", sized)
    path = nu.save_model(sized, tmp_path / "batch model.safetensors")
    w.model.choice.value = OPEN_FILE
    use(w.model.file).value = path
    assert Path(w.model.spec()) == path
    w.model.choice.value = "sized"
    use(w.image_options.diameter).value = 11.0
    use(w.image_options.polarity).value = False
    use(w.split).value = "interior"
    use(w.labelling.threshold).value = 0.6
    use(w.labelling.split_depth).value = 2.0
    use(w.device).value = "cpu"
    use(w.precision).value = "fp32"
    use(w.flips).value = True
    config = w.config()
    assert (config.diameter, config.invert, config.seeds, config.threshold, config.split_depth) == \
        (11.0, False, "interior", 0.6, 2.0)
    assert (config.device, config.precision, config.flips) == ("cpu", "fp32", True)
    w.flips.value = False
    assert not shown(w.folder)
    use(w.save).value = True
    assert shown(w.folder)
    use(w.folder).value = tmp_path
    click(use(w.controls.run))
    wait_until_idle(qtbot, w)
    assert "crop labels" in viewer.layers and "nuclei labels" not in viewer.layers  # only the chosen image
    assert (tmp_path / "crop_labels.tif").is_file() and use(w.controls.progress).value == w.controls.progress.max
    w.images.value = []  # every image: the large one gives time to cancel
    w.save.value = False
    w.run()
    click(use(w.controls.cancel))
    wait_until_idle(qtbot, w)
    assert w.controls.status.value == "cancelled"
    touched_all(w, touched)


def test_finetune_dock_every_control(viewer, registry, trained_model, qtbot, tmp_path, messages):
    from napari_unet._widgets.finetune import FinetuneWidget
    from napari_unet._widgets.segment import SegmentWidget

    w = FinetuneWidget(viewer)
    touched = []

    def use(control):
        touched.append(control)
        return control

    use(w.image).value = viewer.layers["nuclei"]
    use(w.model.choice).value = registry.add("tiny", trained_model)
    path = nu.save_model(trained_model, tmp_path / "start.safetensors")
    w.model.choice.value = OPEN_FILE
    use(w.model.file).value = path
    assert Path(w.model.spec()) == path
    w.model.choice.value = "tiny"
    click(use(w.new_annotation))
    annotation = use(w.annotation_layer).value
    assert annotation is not None and annotation.mode == "paint" and annotation in viewer.layers
    annotation.data[:48, :64] = viewer.layers["nuclei ground truth"].data[:48, :64]
    click(use(w.new_regions))
    regions = use(w.regions).value
    assert regions is not None and regions.mode == "add_rectangle"
    regions.add_rectangles(np.array([[0, 0], [48, 64]]))
    click(use(w.show_weights))
    assert f"{annotation.name} weights" in viewer.layers
    click(use(w.show_augmentation))
    assert w.augmentation_preview is not None and w.augmentation_preview.isVisible()
    w.augmentation_preview.close()
    click(use(w.suggest))
    wait_until_idle(qtbot, w)
    assert "nuclei uncertainty" in viewer.layers and w.regions.value is not regions
    w.regions.value = regions
    segment = SegmentWidget(viewer)  # a segmentation to correct
    segment.model.choice.value = "tiny"
    segment.image.value = viewer.layers["nuclei"]
    segment.tile_size.value = 64
    segment.run()
    wait_until_idle(qtbot, segment)
    click(use(w.from_segmentation))
    corrected = w.annotation_layer.value
    assert corrected is not annotation and corrected.data[:48, :64].any() and not corrected.data[60:, 80:].any()
    w.annotation_layer.value = annotation
    use(w.model_name).value = "walked"
    use(w.minutes).value = 0.5
    use(w.iterations).value = 4
    use(w.learning_rate).value = "2e-3"
    use(w.anchor).value = 25.0
    use(w.keep_worse).value = True
    use(w.all_pairs).value = False
    config = w.config()
    assert (config.minutes, config.iterations, config.learning_rate, config.anchor, config.keep_worse) == \
        (0.5, 4, 2e-3, 25.0, True)
    assert len(w.pairs()) == 1
    w.all_pairs.value = True  # the corrected segmentation is an annotated image of its own
    assert len(w.pairs()) == 2
    w.all_pairs.value = False
    use(w.live_preview).value = True
    assert not w.save.enabled and not w.export.enabled
    click(use(w.controls.run))
    wait_until_idle(qtbot, w)
    assert "walked" in registry.names() and "fine-tune preview" in viewer.layers
    assert use(w.controls.progress).max == 30 and w.save.enabled and w.export.enabled  # seconds of the budget
    saved = tmp_path / "tuned.safetensors"
    use(w.save_path).value = saved
    click(use(w.save))
    assert nu.load_model(saved).name == "walked"
    exported = []
    w.export.choose_path = lambda default: exported.append(default) or str(tmp_path / "package")
    click(use(w.export))
    qtbot.waitUntil(lambda: w.export.worker is None, timeout=120_000)
    assert (tmp_path / "package.zip").is_file()
    w.minutes.value = 5.0
    w.iterations.value = 100_000
    w.live_preview.value = False
    w.run()
    click(use(w.controls.cancel))
    wait_until_idle(qtbot, w)
    assert w.controls.status.value == "cancelled" or "(step" in w.controls.status.value
    assert messages == []
    touched_all(w, touched)
