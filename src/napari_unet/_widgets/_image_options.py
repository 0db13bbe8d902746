"""How the widgets read an image: object size (given or estimated) and polarity."""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton

from ._controls import wrapping
from ._tooltips import DIAMETER, ESTIMATE, POLARITY

POLARITIES = [("detect", None), ("bright objects on dark (fluorescence)", False),
              ("dark objects on bright (brightfield, stained)", True)]


class ImageOptions(Container):
    """Cell diameter (0 = estimate from the image) with an "estimate" button, and polarity."""

    def __init__(self):
        self.diameter = FloatSpinBox(label="cell diameter (px)", value=0.0, min=0.0, max=2000.0, step=1.0,
                                     tooltip=DIAMETER)
        self.estimate = PushButton(text="estimate", tooltip=ESTIMATE)
        self.polarity = ComboBox(label="cells are", choices=POLARITIES, value=None, tooltip=POLARITY)
        self.found = wrapping(Label(value="", visible=False))  # shown once an image was read
        super().__init__(widgets=[self.diameter, self.estimate, self.polarity, self.found])
        self.margins = (0, 0, 0, 0)

    def options(self) -> dict:
        """Fields of napari_unet.PredictConfig."""
        return {"diameter": self.diameter.value or None, "invert": self.polarity.value}

    def show_read(self, read) -> None:
        """Show what the core decided (an ImageRead event)."""
        size = "" if read.diameter is None else (f"cells ≈ {read.diameter:.1f} px"
                                                 f"{' (estimated)' if read.estimated else ''}, ")
        smoothed = f", smoothed ({read.denoise:.1f} px: very noisy)" if read.denoise > 0 else ""
        self.found.value = f"{size}{read.modality}{smoothed}"
        self.found.visible = True
