"""Pieces the dock widgets are built from: a scrolling body, a folded "Advanced" section and a
number field that takes scientific notation.

They keep the docks usable on a 1366 × 768 laptop with two docks open: the controls
scroll instead of pushing the other dock off-screen, and the options most people never
change stay folded away.
"""

from __future__ import annotations

import math

from magicgui.widgets import Container, Label, LineEdit
from qtpy.QtCore import QLocale, Qt
from qtpy.QtGui import QDoubleValidator
from qtpy.QtWidgets import QComboBox, QFrame, QScrollArea, QSizePolicy, QWidget
from superqt import QCollapsible


def _rehouse(container: Container, child: Container, house) -> None:
    """Move ``child``'s Qt widget out of ``container``'s layout into ``house`` (a Qt
    widget), and put ``house`` in its place. magicgui still knows ``child`` as a child of
    ``container``, so walking the widgets finds every control."""
    layout = container.native.layout()
    layout.removeWidget(child.native)
    if isinstance(house, QScrollArea):
        house.setWidget(child.native)
    else:
        house.addWidget(child.native)
    layout.addWidget(house)
    layout.setContentsMargins(0, 0, 0, 0)


class ScrollingDock(Container):
    """A dock widget whose controls (``body``) scroll when the window is shorter than they are.

    napari docks ``widget.native``; magicgui's ``scrollable=True`` puts its scroll area
    outside it, where napari never sees it, so the scroll area is made here, inside.
    """

    def __init__(self, widgets):
        self.body = Container(widgets=widgets)
        super().__init__(widgets=[self.body], labels=False)
        self.body.native.layout().addStretch(1)  # controls at the top of a tall dock
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        _rehouse(self, self.body, self.scroll_area)
        for combo in self.body.native.findChildren(QComboBox):
            # a long choice ("dark objects on bright …") does not widen the dock; the open list shows it whole
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
            combo.setMinimumWidth(100)  # Qt keeps the minimum size hint of the first choices otherwise
        for child in self.body.native.findChildren(QWidget):
            child.updateGeometry()  # sizes measured before the change above are stale
        # wide enough for the controls and a vertical scroll bar: no horizontal scrolling
        scroll_bar = self.scroll_area.verticalScrollBar().sizeHint().width()
        self.scroll_area.setMinimumWidth(self.body.native.minimumSizeHint().width() + scroll_bar)


class Advanced(Container):
    """Options most people never change, under an "Advanced" button, folded by default.

    ``settings`` is the Container of the controls; ``section`` the superqt QCollapsible.
    """

    def __init__(self, widgets, tooltip: str, title: str = "Advanced"):
        self.settings = Container(widgets=widgets)
        super().__init__(widgets=[self.settings], labels=False)
        self.section = QCollapsible(title, expandedIcon="▾", collapsedIcon="▸")
        self.section.toggleButton().setToolTip(tooltip)
        self.section.layout().setContentsMargins(0, 0, 0, 0)
        _rehouse(self, self.settings, self.section)

    @property
    def expanded(self) -> bool:
        return self.section.isExpanded()


def wrapping(label: Label) -> Label:
    """``label`` as wide as its container, its text wrapped over as many lines as it needs
    (magicgui labels are one line of fixed width: long messages were cut off)."""
    label.native.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Minimum)
    label.native.setWordWrap(True)  # after the policy: it adds height-for-width to it
    return label


def side_by_side(*buttons) -> Container:
    """Buttons in one row: the dock is shorter."""
    row = Container(widgets=list(buttons), layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    return row


def scientific(value: float) -> str:
    """``1e-3`` style text of a number: 0.001 → "1e-3", 5e-05 → "5e-5"."""
    mantissa, exponent = f"{value:.6e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


class ScientificEdit(LineEdit):
    """A positive number typed as 1e-4, 5e-5 or 0.0001, kept exactly as typed.

    A spin box rounds to its decimals (5e-5 became 0.0001, 1e-6 became 0); this field
    shows and keeps any number. ``number()`` reads it, with an error that says how to
    write it.
    """

    def __init__(self, *, label: str, value: float, tooltip: str):
        super().__init__(label=label, value=scientific(value), tooltip=tooltip)
        validator = QDoubleValidator(0.0, 1e9, 12, self.native)
        validator.setNotation(QDoubleValidator.ScientificNotation)
        validator.setLocale(QLocale.c())  # a decimal point, whatever the system language
        self.native.setValidator(validator)

    def number(self) -> float:
        """The number in the field; ValueError naming the field when it is not a positive number."""
        text = str(self.value).strip()
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not (number > 0 and math.isfinite(number)):
            raise ValueError(f"{self.label} {text!r} is not a positive number: write it like 1e-4 or 0.0001")
        return number
