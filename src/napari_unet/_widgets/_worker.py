"""Running one job at a time in a napari thread worker, with Run/Cancel and a status line.

Nothing here imports torch: napari imports the widget modules when it builds its Plugins
menu, and the core (with torch) is loaded only when a widget runs.
"""

from __future__ import annotations

from magicgui.widgets import Container, Label, ProgressBar, PushButton
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt

from ._controls import wrapping
from ._tooltips import CANCEL, PROGRESS, STATUS


class RunControls(Container):
    """Run and Cancel buttons side by side, a progress bar and a status line.

    The status line keeps the last message (progress, results, problems) in full, wrapped
    over as many lines as it needs; notifications disappear and cut long messages short.
    """

    def __init__(self, run_text: str, run_tooltip: str):
        self.run = PushButton(text=run_text, tooltip=run_tooltip)
        self.cancel = PushButton(text="Cancel", enabled=False, tooltip=CANCEL)
        self.progress = ProgressBar(value=0, min=0, max=1, visible=False, tooltip=PROGRESS)
        self.status = wrapping(Label(value="", tooltip=STATUS))
        buttons = Container(widgets=[self.run, self.cancel], layout="horizontal", labels=False)
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[buttons, self.progress, self.status], labels=False)
        self.margins = (0, 0, 0, 0)
        self.status.native.setTextInteractionFlags(Qt.TextSelectableByMouse)  # errors can be copied

    def busy(self, busy: bool) -> None:
        self.run.enabled = not busy
        self.cancel.enabled = busy
        self.progress.visible = busy


def report_error(error: BaseException, what: str, status: Label | None = None) -> None:
    """Explain an unusable input (before anything runs): in the widget's ``status`` line, where
    it stays, and as a napari notification."""
    message = f"{what}: {error}"
    if status is not None:
        status.value = f"⚠ {message}"
    show_error(message)


def report(message: str, status: Label | None = None) -> None:
    """Tell the user something went well: in the ``status`` line and as a notification."""
    if status is not None:
        status.value = message
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
        self.controls.status.value = f"⚠ {error}"

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
