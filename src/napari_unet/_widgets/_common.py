"""Pieces shared by the dock widgets: the model registry, pickers, worker glue, owned layers.

Nothing here imports torch at module level: napari imports the widget modules when it
builds its Plugins menu, and the core (with torch) is loaded only when a widget runs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar, PushButton
from napari.layers import Layer
from napari.utils.notifications import show_error, show_info
from psygnal import Signal

OPEN_FILE = "model file…"
AUTO = "auto"
# metadata key marking layers this plugin made: {"role": ..., "source": image layer name}
OWNER_KEY = "napari_unet"


class ModelRegistry:
    """Models usable in this napari session: models fine-tuned here, then the shipped ones.

    One instance (:data:`registry`) is shared by every widget, so a model fine-tuned in
    "Annotate & fine-tune" appears at once in "Segment" and "Batch segment".
    """

    changed = Signal()

    def __init__(self):
        self._session: dict[str, object] = {}

    def names(self) -> list[str]:
        from ..models.io import list_models

        return list(self._session) + [name for name in list_models() if name not in self._session]

    def add(self, name: str, model) -> str:
        """Register ``model`` under ``name`` (a taken name gets a number). Returns the name used."""
        unique, number = name, 2
        while unique in self._session:
            unique, number = f"{name} ({number})", number + 1
        self._session[unique] = model
        self.changed.emit()
        return unique

    def remove(self, name: str) -> None:
        if self._session.pop(name, None) is not None:
            self.changed.emit()

    def get(self, name: str):
        """The model object of a session model, else the name (a shipped model for ``load_model``)."""
        return self._session.get(name, name)


registry = ModelRegistry()


def layers_of(viewer, kind: type[Layer]) -> list[Layer]:
    return [layer for layer in viewer.layers if isinstance(layer, kind)]


class LayerPicker(ComboBox):
    """A combo box of the viewer's layers of one kind, kept in sync with the layer list."""

    def __init__(self, viewer, kind: type[Layer], label: str, optional: bool = False):
        self._viewer, self._kind, self._optional = viewer, kind, optional
        super().__init__(label=label, choices=self._choices)
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self.reset_choices)
        # the choice labels are layer names
        events.inserted.connect(lambda event: event.value.events.name.connect(self.reset_choices))

    def _choices(self, _widget=None):
        layers = [(layer.name, layer) for layer in layers_of(self._viewer, self._kind)]
        return ([("(none)", None)] if self._optional else []) + layers


class ModelPicker(Container):
    """A model by name (fine-tuned in this session or shipped) or a model file."""

    def __init__(self, label: str = "model"):
        self.choice = ComboBox(label=label, choices=self._choices)
        self.file = FileEdit(label="model file", filter="*.safetensors", visible=False)
        super().__init__(widgets=[self.choice, self.file], labels=True)
        self.choice.changed.connect(lambda value: setattr(self.file, "visible", value == OPEN_FILE))
        registry.changed.connect(self.choice.reset_choices)
        self.native.destroyed.connect(lambda: registry.changed.disconnect(self.choice.reset_choices))

    def _choices(self, _widget=None):
        return registry.names() + [OPEN_FILE]

    def select(self, name: str) -> None:
        self.choice.reset_choices()
        self.choice.value = name

    def spec(self):
        """A session model, a shipped name or a path; ValueError explains what is missing."""
        if self.choice.value == OPEN_FILE:
            path = Path(self.file.value)
            if not path.is_file():
                raise ValueError(f"model file {str(path)!r} does not exist: choose a .safetensors file")
            return path
        if self.choice.value is None:
            raise ValueError("no model available: fine-tune one or choose a model file")
        return registry.get(self.choice.value)

    def load(self, device: str = "cpu"):
        """The chosen model, loaded. A session model is copied: running it never moves or
        changes the registered one (another widget may be using it at the same time)."""
        from ..models import SegmentationModel, load_model

        spec = self.spec()
        if isinstance(spec, SegmentationModel):
            spec = copy.deepcopy(spec)
        return load_model(spec, device=device)


class RunControls(Container):
    """Run and Cancel buttons, a progress bar and a status line."""

    def __init__(self, run_text: str):
        self.run = PushButton(text=run_text)
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, visible=False)
        self.status = Label(value="")
        super().__init__(widgets=[self.run, self.cancel, self.progress, self.status], labels=False)

    def busy(self, busy: bool) -> None:
        self.run.enabled = not busy
        self.cancel.enabled = busy
        self.progress.visible = busy


def device_choices() -> list[str]:
    """"auto", "cpu" and the accelerators torch can see here."""
    import torch

    choices = [AUTO, "cpu"]
    if torch.cuda.is_available():
        choices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        choices.append("mps")
    return choices


def resolve_precision(precision: str, device: str) -> str:
    """"auto": bf16 on a CUDA GPU that supports it (about twice as fast), else fp32."""
    if precision != AUTO:
        return precision
    from ..devices import resolve_device

    import torch

    resolved = resolve_device(device)
    return "bf16" if resolved.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def report_error(error: BaseException, what: str) -> None:
    """Explain an unusable input as a napari notification (before anything runs)."""
    show_error(f"{what}: {error}")


def report(message: str) -> None:
    show_info(message)


class JobError(Exception):
    """An exception raised inside a worker job, re-raised under a type the worker reports.

    superqt's generator worker treats a ``RuntimeError`` as "the worker was deleted" and
    swallows it without emitting ``errored`` or ``finished``; torch raises RuntimeError for
    many real failures, so every job exception is wrapped in this type instead. Its
    message says which widget failed and why.
    """


def _guarded(title: str, job, *args):
    try:
        return (yield from job(*args))
    except Exception as error:  # noqa: BLE001 - reported to the user, see JobError
        raise JobError(f"{title} failed: {type(error).__name__}: {error}") from error


class WorkerOwner:
    """Mixin for a widget that runs one job at a time in a napari thread worker.

    The job (a generator) runs in a worker thread; its yielded items and its return value
    reach ``on_yield`` / ``on_return`` in the main thread, where layers may change.
    Cancel, closing the widget and closing the viewer all stop it at its next yield.
    """

    worker = None

    def start_job(self, title: str, job, *args, on_yield, on_return=None) -> None:
        from napari.qt.threading import create_worker

        worker = create_worker(_guarded, title, job, *args, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(on_yield)
        if on_return is not None:
            worker.returned.connect(on_return)
        worker.errored.connect(self._job_failed)
        worker.finished.connect(self._job_finished)
        self.worker = worker
        self.controls.busy(True)
        worker.start()

    def _job_failed(self, error: BaseException) -> None:
        show_error(str(error))
        self.controls.status.value = str(error)

    def _job_finished(self) -> None:
        self.controls.busy(False)
        self.worker = None

    def cancel(self, *_) -> None:
        """Ask the running job to stop at its next yield (a tile, a plane or a step)."""
        if self.worker is not None:
            self.worker.quit()
            self.controls.status.value = "cancelled"

    def _stop_on_close(self) -> None:
        """When the widget's Qt object goes away (widget or viewer closed), detach and stop."""
        worker = self.worker
        if worker is None:
            return
        for signal in (worker.yielded, worker.returned, worker.errored, worker.finished, worker.aborted):
            try:
                signal.disconnect()
            except (TypeError, RuntimeError):
                pass
        worker.quit()
        self.worker = None


def find_owned(viewer, role: str, source: str) -> Layer | None:
    """The layer this plugin made for ``role`` of the image ``source``, if still open."""
    for layer in viewer.layers:
        if layer.metadata.get(OWNER_KEY) == {"role": role, "source": source}:
            return layer
    return None


def show_owned(viewer, role: str, source: str, name: str, data, kind: str = "labels", **options) -> Layer:
    """Put ``data`` into the layer made earlier for (role, source), or add a new one.

    Layers the user made (or loaded) carry no such metadata and are never overwritten; a
    new layer whose name is taken gets napari's numbered name instead.
    """
    layer = find_owned(viewer, role, source)
    if layer is not None and layer.data.ndim == np.ndim(data):
        layer.data = data
        return layer
    add = viewer.add_labels if kind == "labels" else viewer.add_image
    return add(data, name=name, metadata={OWNER_KEY: {"role": role, "source": source}}, **options)


def view_position(viewer, layer) -> tuple[int | None, tuple[float, float] | None]:
    """(plane index or None, (y, x) of the canvas centre) in ``layer``'s pixels.

    Prediction starts with the plane on screen and the tiles around the centre of the view.
    """
    try:
        world = np.asarray(viewer.dims.point, dtype=float)
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9 / older
        world[-2:] = np.asarray(camera.center, dtype=float)[-2:]
        data = np.asarray(layer.world_to_data(world))
    except (AttributeError, IndexError, ValueError):
        return None, None
    plane = int(np.round(data[0])) if layer.ndim == 3 else None
    return plane, (float(data[-2]), float(data[-1]))


def image_data(layer):
    """The array behind an image layer (the full-resolution level of a multiscale one)."""
    return layer.data[0] if layer.multiscale else layer.data
