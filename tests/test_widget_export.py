"""The "Export for Fiji / bioimage.io…" button of Annotate and fine-tune, in a real viewer (Xvfb)."""

import pytest
import torch
from widget_helpers import messages, registry, viewer  # noqa: F401

import napari_unet as nu

pytest.importorskip("napari")


@pytest.fixture
def widget(viewer, registry):
    from napari_unet._widgets.finetune import FinetuneWidget

    return FinetuneWidget(viewer)


def test_the_button_exports_the_fine_tuned_model_off_the_gui_thread(widget, tiny_model, qtbot, tmp_path):
    assert not widget.export.enabled  # nothing fine-tuned yet
    widget._register(tiny_model)  # what a finished fine-tune does
    assert widget.export.enabled and widget.save.enabled
    offered = []
    widget.export.choose_path = lambda default: offered.append(default) or str(tmp_path / "my cells")
    path = widget.export.export()
    assert path == tmp_path / "my cells.zip" and offered == [f"{tiny_model.name}.zip"]
    qtbot.waitUntil(lambda: widget.export.worker is None, timeout=120_000)
    assert "wrote" in widget.controls.status.value and widget.export.enabled
    loaded = nu.load_model(path, device="cpu")
    assert all(torch.equal(loaded.network.state_dict()[key], value)
               for key, value in tiny_model.network.state_dict().items())


def test_a_cancelled_dialog_writes_nothing(widget, tiny_model, tmp_path):
    widget._register(tiny_model)
    widget.export.choose_path = lambda default: ""
    assert widget.export.export() is None and widget.export.worker is None
    assert list(tmp_path.iterdir()) == []


def test_nothing_to_export_is_explained(widget, messages):
    assert widget.export.export() is None
    assert messages == ["Export: nothing to export yet: fine-tune a model first"]
    assert "fine-tune a model first" in widget.controls.status.value


def test_a_failed_export_is_reported(widget, tiny_model, qtbot, tmp_path, messages):
    widget._register(tiny_model)
    widget.export.choose_path = lambda default: str(tmp_path / "missing" / "cells.zip")
    widget.export.export()
    qtbot.waitUntil(lambda: widget.export.worker is None, timeout=60_000)
    assert len(messages) == 1 and "does not exist" in messages[0]
    assert widget.export.enabled
