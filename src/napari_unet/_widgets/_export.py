"""The "Export for Fiji / bioimage.io…" button: a model as a bioimage.io package, written in a worker.

Nothing here imports torch: the exporter is imported when the button is used.
"""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import Label, PushButton

from ._worker import report, report_error

EXPORT_TOOLTIP = ("Write the last fine-tuned model as a bioimage.io package (.zip) for Fiji (deepImageJ), "
                  "ilastik or bioimage.io; napari-unet loads it back as a model file.")


class ExportButton(PushButton):
    """Asks for a .zip file name, then exports the model ``model_of()`` returns, off the GUI thread.

    ``choose_path(default)`` (a save-file dialog; tests swap in an answer) returns the
    path, or "" when the user cancels.
    """

    def __init__(self, model_of, status: Label):
        super().__init__(text="Export for Fiji / bioimage.io…", enabled=False, tooltip=EXPORT_TOOLTIP)
        self.model_of, self.status = model_of, status
        self.choose_path = self._ask_path
        self.worker = None
        self.changed.connect(self.export)

    def _ask_path(self, default: str) -> str:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, "Export for Fiji / bioimage.io", default,
                                              "bioimage.io model package (*.zip)")
        return path

    def export(self, *_) -> Path | None:
        """Start writing the package; returns its path (None: nothing to export, or cancelled)."""
        from napari.qt.threading import create_worker

        from ..interop.bioimageio import export_bioimageio

        model = self.model_of()
        if model is None:
            report_error(ValueError("nothing to export yet: fine-tune a model first"), "Export", self.status)
            return None
        chosen = self.choose_path(f"{model.name}.zip")
        if not chosen:
            return None
        path = Path(chosen)
        path = path if path.suffix.lower() == ".zip" else path.with_name(f"{path.name}.zip")
        worker = create_worker(export_bioimageio, model, path, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda written: report(f"Export: wrote {written} (bioimage.io package)", self.status))
        worker.errored.connect(lambda error: report_error(error, "Export", self.status))
        worker.finished.connect(self._finished)
        self.worker, self.enabled = worker, False
        worker.start()
        return path

    def _finished(self) -> None:
        self.worker, self.enabled = None, True
