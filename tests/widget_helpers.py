"""Shared pieces of the Qt widget tests (tests/test_widget_*.py): viewer, models, waiting."""

import numpy as np
import pytest

import napari_unet as nu
from napari_unet.config import TrainConfig

CROP = (slice(0, 96), slice(0, 128))


@pytest.fixture(scope="module")
def trained_model():
    """A tiny U-Net trained for a few seconds: it finds some cells, so equality tests bite."""
    import torch

    from napari_unet.sample_data import sample_nuclei

    torch.manual_seed(0)
    image, labels = sample_nuclei()
    model = nu.create_model("unet", depth=2, base_channels=8)
    config = TrainConfig(iterations=40, patch_size=48, batch_size=2, learning_rate=1e-2, device="cpu")
    return nu.finetune(model, image[:128, :128], labels[:128, :128], config=config)


@pytest.fixture
def registry(monkeypatch):
    """The widgets' shared model registry, emptied for the test and restored after it."""
    from napari_unet._widgets._registry import registry

    monkeypatch.setattr(registry, "_session", {})
    return registry


@pytest.fixture
def messages(monkeypatch):
    """The text of every error notification the widgets show (bad inputs, worker errors)."""
    from napari_unet._widgets import _worker

    shown = []
    monkeypatch.setattr(_worker, "show_error", shown.append)
    return shown


@pytest.fixture
def viewer(make_napari_viewer):
    """A viewer holding a 96 x 128 crop of the sample image and its ground truth."""
    from napari_unet.sample_data import sample_nuclei_layers

    viewer = make_napari_viewer()
    for data, options, kind in sample_nuclei_layers():
        getattr(viewer, f"add_{kind}")(data[CROP], **options)
    return viewer


def wait_until_idle(qtbot, widget, timeout=120_000):
    """Wait for the widget's worker to finish (its handlers have run when this returns)."""
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def count_cells(labels) -> int:
    return len(np.unique(labels)) - 1


def controls_of(container):
    """Every control of a dock widget (folded or hidden ones too): the leaves of its magicgui
    tree, a file field counting as one control; labels (text shown, not set) are skipped."""
    from magicgui.widgets import Container, FileEdit, Label

    for child in container:
        if isinstance(child, Container) and not isinstance(child, FileEdit):
            yield from controls_of(child)
        elif not isinstance(child, Label):
            yield child


def assert_every_control_explained(widget):
    """A tooltip of a sentence or more on every control and on the Advanced button."""
    controls = list(controls_of(widget))
    assert len(controls) >= 8
    unexplained = [getattr(c, "label", "") or getattr(c, "text", "") or type(c).__name__ for c in controls
                   if len(c.tooltip or "") < 40]
    assert unexplained == [], f"controls without a real tooltip: {unexplained}"
    assert len(widget.advanced.section.toggleButton().toolTip()) >= 40


def assert_advanced_folded(widget, expected):
    """The Advanced section starts folded (no height) and holds exactly ``expected``."""
    from qtpy.QtWidgets import QApplication

    advanced = widget.advanced
    assert not advanced.expanded and advanced.section.content().maximumHeight() == 0
    assert set(map(id, expected)) == set(map(id, advanced.settings))
    assert all(advanced.section.content().isAncestorOf(control.native) for control in expected)
    advanced.section.expand(animate=False)
    QApplication.processEvents()
    assert advanced.expanded and advanced.section.content().maximumHeight() > 20 * len(expected)
