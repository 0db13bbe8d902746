"""A small live loss curve drawn with QPainter (no plotting backend needed)."""

from __future__ import annotations

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget


class LossPlot(QWidget):
    """Training loss per step (grey) and its running mean (orange), log-free and autoscaled."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.losses: list[float] = []
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def clear(self) -> None:
        self.losses = []
        self.update()

    def append(self, loss: float) -> None:
        self.losses.append(float(loss))
        self.update()

    def smoothed(self, window: int = 20) -> list[float]:
        out, total = [], 0.0
        for index, value in enumerate(self.losses):
            total += value
            if index >= window:
                total -= self.losses[index - window]
            out.append(total / min(index + 1, window))
        return out

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        width, height = self.width(), self.height()
        painter.fillRect(0, 0, width, height, QColor(38, 41, 48))
        painter.setPen(QColor(200, 200, 200))
        if not self.losses:
            painter.drawText(8, height // 2, "loss appears here during fine-tuning")
            return
        top = max(self.losses)
        painter.drawText(6, 14, f"loss {self.losses[-1]:.3f}  (max {top:.3f}, step {len(self.losses)})")
        margin = 20
        scale_x = (width - 2 * 6) / max(1, len(self.losses) - 1)
        scale_y = (height - margin - 6) / (top or 1.0)
        for values, colour, thickness in ((self.losses, QColor(140, 140, 140), 1), (self.smoothed(),
                                                                                  QColor(255, 160, 40), 2)):
            points = QPolygonF([QPointF(6 + i * scale_x, height - 6 - v * scale_y) for i, v in enumerate(values)])
            painter.setPen(QPen(colour, thickness, Qt.SolidLine))
            painter.drawPolyline(points)
