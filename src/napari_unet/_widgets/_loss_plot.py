"""A small live loss curve drawn with QPainter (no plotting backend needed)."""

from __future__ import annotations

import math

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

STEP_COLOUR, MEAN_COLOUR, VALIDATION_COLOUR = QColor(150, 150, 150), QColor(255, 160, 40), QColor(80, 170, 255)
TEXT_COLOUR, AXIS_COLOUR = QColor(210, 210, 210), QColor(120, 120, 120)
# plot area inside the widget: room for the title, the legend and the tick labels
LEFT, RIGHT, TOP, BOTTOM = 46, 10, 34, 22


def nice_ticks(low: float, high: float, count: int = 4, smallest_step: float = 0.0) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) in [low, high],
    at least ``smallest_step`` apart (1 for steps)."""
    if not high > low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = max(smallest_step, next(power * factor for factor in (1, 2, 5, 10) if power * factor >= raw))
    first = math.ceil(low / step - 1e-9) * step
    return [first + index * step for index in range(int((high - first) / step + 1e-9) + 1)]


class LossPlot(QWidget):
    """Training loss per step (grey), its running mean (orange) and validation loss (blue
    dots), against the step, with labelled axes.

    The y range comes from the bulk of the values (robust percentiles), not from the
    largest one: the first steps' spike is drawn cut off at the top instead of flattening
    the decrease that follows.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.losses: list[float] = []
        self.validation: list[tuple[int, float]] = []
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def clear(self) -> None:
        self.losses, self.validation = [], []
        self.update()

    def append(self, loss: float) -> None:
        """The loss of the next step (steps count from 1)."""
        self.losses.append(float(loss))
        self.update()

    def add_validation(self, step: int, loss: float) -> None:
        self.validation.append((int(step), float(loss)))
        self.update()

    def smoothed(self, window: int = 20) -> list[float]:
        out, total = [], 0.0
        for index, value in enumerate(self.losses):
            total += value
            if index >= window:
                total -= self.losses[index - window]
            out.append(total / min(index + 1, window))
        return out

    def y_limits(self) -> tuple[float, float]:
        """(low, high) of the y axis: the 1st to 97th percentile of the step losses, widened to
        every validation loss, plus a margin."""
        values = np.asarray([v for v in self.losses if math.isfinite(v)] or [0.0, 1.0])
        low, high = np.percentile(values, [1, 97])
        shown = [v for _, v in self.validation if math.isfinite(v)]
        low, high = min([low, *shown]), max([high, *shown])
        margin = (high - low) * 0.08 or max(abs(high) * 0.1, 1e-3)
        return float(low - margin), float(high + margin)

    def x_limit(self) -> int:
        """Last step on the x axis."""
        return max([len(self.losses), 2] + [step for step, _ in self.validation])

    def plot_area(self) -> QRectF:
        return QRectF(LEFT, TOP, max(1, self.width() - LEFT - RIGHT), max(1, self.height() - TOP - BOTTOM))

    def mapping(self):
        """A function (step, loss) -> widget point, for the data and size of now; values
        outside the y range land outside the plot area (and are cut off there)."""
        area, (low, high), last = self.plot_area(), self.y_limits(), self.x_limit()

        def to_pixel(step: float, value: float) -> QPointF:
            x = area.left() + (step - 1) / (last - 1) * area.width()
            y = area.bottom() - (value - low) / (high - low) * area.height()
            return QPointF(x, y)

        return to_pixel

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), QColor(38, 41, 48))
        painter.setPen(TEXT_COLOUR)
        if not self.losses:
            painter.drawText(8, self.height() // 2, "the loss curve appears here during fine-tuning")
            return
        to_pixel = self.mapping()
        self._draw_axes(painter, to_pixel)
        self._draw_curves(painter, to_pixel)
        self._draw_legend(painter)

    def _draw_axes(self, painter: QPainter, to_pixel) -> None:
        area, (low, high) = self.plot_area(), self.y_limits()
        painter.setPen(QPen(AXIS_COLOUR, 1))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.drawLine(area.bottomLeft(), area.topLeft())
        metrics = painter.fontMetrics()
        for value in nice_ticks(low, high, count=5):
            y = to_pixel(1, value).y()
            painter.setPen(QPen(AXIS_COLOUR, 1))
            painter.drawLine(QPointF(area.left() - 4, y), QPointF(area.left(), y))
            painter.setPen(TEXT_COLOUR)
            text = f"{value:.3g}"
            painter.drawText(QPointF(area.left() - 6 - metrics.horizontalAdvance(text), y + metrics.ascent() / 2.5),
                             text)
        baseline = area.bottom() + 5 + metrics.ascent()
        painter.drawText(QPointF(area.left(), baseline), "step")  # the x axis' name, under its start
        free_from = area.left() + metrics.horizontalAdvance("step") + 6
        for step in nice_ticks(1, self.x_limit(), smallest_step=1):
            step = int(round(step))
            x = to_pixel(step, low).x()
            painter.setPen(QPen(AXIS_COLOUR, 1))
            painter.drawLine(QPointF(x, area.bottom()), QPointF(x, area.bottom() + 4))
            painter.setPen(TEXT_COLOUR)
            text = str(step)
            left = min(x - metrics.horizontalAdvance(text) / 2, self.width() - 2 - metrics.horizontalAdvance(text))
            if left >= free_from:
                painter.drawText(QPointF(left, baseline), text)

    def _draw_curves(self, painter: QPainter, to_pixel) -> None:
        painter.save()
        painter.setClipRect(self.plot_area().adjusted(0, -1, 1, 1))  # a spike is cut off at the top
        for values, colour, thickness in ((self.losses, STEP_COLOUR, 1), (self.smoothed(), MEAN_COLOUR, 2)):
            painter.setPen(QPen(colour, thickness, Qt.SolidLine))
            painter.drawPolyline(QPolygonF([to_pixel(i + 1, v) for i, v in enumerate(values)]))
        painter.setPen(QPen(VALIDATION_COLOUR, 2))
        painter.setBrush(VALIDATION_COLOUR)
        points = [to_pixel(step, value) for step, value in self.validation]
        if len(points) > 1:
            painter.drawPolyline(QPolygonF(points))
        for point in points:
            painter.drawEllipse(point, 3, 3)
        painter.restore()

    def _draw_legend(self, painter: QPainter) -> None:
        metrics, x = painter.fontMetrics(), float(LEFT)
        painter.setPen(TEXT_COLOUR)
        painter.drawText(QPointF(6, 4 + metrics.ascent()),
                         f"loss {self.losses[-1]:.3g} at step {len(self.losses)}")
        entries = [("per step", STEP_COLOUR), ("mean of 20", MEAN_COLOUR)]
        entries += [("validation", VALIDATION_COLOUR)] if self.validation else []
        y = 6 + metrics.height() + metrics.ascent() / 2
        for text, colour in entries:
            painter.setPen(QPen(colour, 2))
            painter.drawLine(QPointF(x, y), QPointF(x + 14, y))
            painter.setPen(TEXT_COLOUR)
            painter.drawText(QPointF(x + 18, y + metrics.ascent() / 2.5), text)
            x += 18 + metrics.horizontalAdvance(text) + 12
