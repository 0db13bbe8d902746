"""Screenshots of the three dock widgets at work, for docs/user-guide.md.

Run under a virtual display:  xvfb-run -a python docs/screenshots.py

Opens napari with the sample data, docks each widget through the Plugins menu entries,
runs it (the shipped ``nuclei`` model when present, else a tiny model trained here for a
few seconds) and saves docs/images/{segment-running,segment,finetune-annotate,finetune,
batch}.png. The window has the size of a 1366 × 768 laptop screen, the smallest the
widgets are made for; notification pop-ups are switched off so they cover nothing.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

# a throw-away settings file: the pictures hide notification pop-ups without touching the
# user's napari settings
os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")

import napari  # noqa: E402
import numpy as np
from qtpy.QtWidgets import QApplication  # noqa: E402

import napari_unet as nu  # noqa: E402
from napari_unet.config import TrainConfig  # noqa: E402

IMAGES = Path(__file__).parent / "images"
PLUGIN = "napari-unet"
SCREEN = (1366, 768)


def pump(seconds: float = 0.3) -> None:
    """Let Qt paint for a moment."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def wait_idle(widget, timeout: float = 900) -> None:
    end = time.perf_counter() + timeout
    while widget.worker is not None:
        if time.perf_counter() > end:
            raise TimeoutError(f"{type(widget).__name__} still running after {timeout} s")
        QApplication.processEvents()
        time.sleep(0.02)
    pump()


def close_popups() -> None:
    """Close any notification toast still on screen (the settings should have stopped them)."""
    for popup in QApplication.allWidgets():
        if type(popup).__name__ == "NapariQtNotification" and popup.isVisible():
            popup.close()


def shoot(viewer, name: str) -> None:
    pump()
    close_popups()
    pump(0.1)
    viewer.screenshot(str(IMAGES / f"{name}.png"), canvas_only=False)
    print(f"saved {IMAGES / name}.png")


def starting_model():
    """The shipped nuclei model, or a tiny one trained quickly on the sample (fallback)."""
    from napari_unet.sample_data import sample_nuclei

    if "nuclei" in nu.list_models():
        return "nuclei"
    image, labels = sample_nuclei()
    tiny = nu.create_model("unet", depth=2, base_channels=8, name="tiny demo")
    config = TrainConfig(iterations=150, patch_size=64, batch_size=2, learning_rate=1e-2)
    return nu.finetune(tiny, image, labels, config=config)


def dock(viewer, title: str):
    viewer.window.remove_dock_widget("all")  # one widget at a time in the pictures
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, title)
    pump()
    viewer.reset_view()  # fit the image into the canvas left beside the dock
    pump()
    return widget


def show_segment(viewer, model_name: str, image) -> None:
    segment = dock(viewer, "Segment")
    segment.model.select(model_name)
    segment.image.value = image
    segment.tile_size.value = 128  # small tiles: the picture shows them arriving
    segment.advanced.section.expand(animate=False)  # the first picture shows the advanced options too
    shots = []

    def mid_run(item):
        if getattr(item, "done", 0) == 5 and not shots:
            shots.append(item)
            segment.worker.pause()  # at its next tile, so the picture shows a run half done
            shoot(viewer, "segment-running")
            segment.worker.resume()

    segment.run()
    segment.worker.yielded.connect(mid_run)
    wait_idle(segment)
    segment.advanced.section.collapse(animate=False)
    shoot(viewer, "segment")


def show_finetune(viewer, model_name: str, image) -> None:
    finetune = dock(viewer, "Annotate and fine-tune")
    finetune.image.value = image
    finetune.model.select(model_name)
    viewer.layers[f"{image.name} labels"].visible = False
    annotation = finetune.add_annotation_layer()
    truth = viewer.layers["nuclei ground truth"].data
    # stands in for painting by hand: the cells of one corner, with a box around them
    annotation.data[:128, :128] = truth[:128, :128]
    annotation.refresh()
    regions = finetune.add_regions_layer()
    regions.add_rectangles(np.array([[0, 0], [128, 128]]))
    regions.mode = "pan_zoom"
    finetune.add_weight_map()
    shoot(viewer, "finetune-annotate")
    viewer.layers["nuclei annotation weights"].visible = False
    finetune.iterations.value = 60
    finetune.model_name.value = "my nuclei"
    finetune.run()
    wait_idle(finetune)
    shoot(viewer, "finetune")


def show_batch(viewer, image) -> None:
    viewer.add_image(np.ascontiguousarray(image.data[::-1, ::-1]), name="second image")
    for layer in viewer.layers:
        layer.visible = layer.name in ("second image",)
    batch = dock(viewer, "Batch segment")
    batch.model.select("my nuclei")
    batch.save.value = True
    batch.folder.value = Path(tempfile.mkdtemp(prefix="labels-"))  # the status line says where they went
    batch.run()
    wait_idle(batch)
    viewer.layers["second image labels"].visible = True
    shoot(viewer, "batch")


def main() -> None:
    from napari_unet._widgets._registry import registry

    from napari.settings import get_settings

    IMAGES.mkdir(exist_ok=True)
    get_settings().application.gui_notification_level = "none"
    viewer = napari.Viewer(title="napari-unet")
    pump()
    viewer.window.resize(*SCREEN)
    viewer.open_sample(PLUGIN, "nuclei")
    model = starting_model()
    model_name = model if isinstance(model, str) else registry.add("tiny demo", model)
    image = viewer.layers[0]
    show_segment(viewer, model_name, image)
    show_finetune(viewer, model_name, image)
    show_batch(viewer, image)
    viewer.close()


if __name__ == "__main__":
    main()
