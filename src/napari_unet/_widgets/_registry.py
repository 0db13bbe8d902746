"""The models a napari session can use: fine-tuned here, shipped, or from a file."""

from __future__ import annotations

import copy
from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit
from psygnal import Signal

from ._tooltips import MODEL, MODEL_FILE

OPEN_FILE = "model file…"


class ModelRegistry:
    """Models usable in this napari session: models fine-tuned here, then the shipped ones.

    One instance (:data:`registry`) is shared by every widget, so a model fine-tuned in
    "Annotate and fine-tune" appears at once in "Segment" and "Batch segment".
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


class ModelPicker(Container):
    """A model by name (fine-tuned in this session or shipped) or a model file."""

    def __init__(self, label: str = "model", tooltip: str = MODEL):
        self.choice = ComboBox(label=label, choices=self._choices, tooltip=tooltip)
        self.file = FileEdit(label="model file", filter="*.safetensors", visible=False, tooltip=MODEL_FILE)
        super().__init__(widgets=[self.choice, self.file], labels=True)
        self.margins = (0, 0, 0, 0)
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


def next_round_name(name: str) -> str:
    """The name of the next fine-tuning round: "my cells" -> "my cells r2" -> "my cells r3"."""
    import re

    match = re.fullmatch(r"(.*) r(\d+)", name.strip())
    return f"{match[1]} r{int(match[2]) + 1}" if match else f"{name.strip()} r2"
