"""A small window showing augmented training samples (image with the cells outlined).

A window of its own rather than layers: a stack of samples added to the viewer covered the
image being annotated and left a slider behind after it was deleted.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPoint, Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QDialog, QGridLayout, QLabel

THUMBNAIL = 240  # pixels a side on screen
OUTLINE = (255, 220, 0)


def outlined_rgb(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(Y, X, 3) uint8 for display: ``image`` ((Y, X) or (Y, X, C)) stretched between its 1st
    and 99th percentile, the cell outlines of ``labels`` (Y, X) drawn over it."""
    from skimage.segmentation import find_boundaries

    image = np.asarray(image, dtype=np.float32)
    low, high = np.percentile(image, [1, 99])
    grey = np.clip((image - low) / max(high - low, 1e-6), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1) if grey.ndim == 2 else grey[..., :3]
    out = (rgb * 255).astype(np.uint8)
    out[find_boundaries(labels, mode="inner")] = OUTLINE
    return out


def pixmap(rgb: np.ndarray, size: int = THUMBNAIL) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    height, width, _ = rgb.shape
    picture = QImage(rgb.data, width, height, 3 * width, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(picture).scaled(size, size, Qt.KeepAspectRatio, Qt.SmoothTransformation)


class AugmentationPreview(QDialog):
    """Non-modal window over the dock widget that opened it (not over the canvas): a 2 × 2
    grid of augmented samples. Reused while open; closing it only hides it."""

    def __init__(self, anchor):
        super().__init__(anchor)
        self._anchor = anchor
        self.setWindowTitle("Augmentation preview")
        self.grid = QGridLayout(self)
        self.samples: list = []
        self.thumbnails: list[QLabel] = []

    def show_samples(self, samples, source: str) -> None:
        """Show ``samples`` (AugmentedSample: ``image``, ``labels``) of the annotation ``source``."""
        for label in self.thumbnails:
            self.grid.removeWidget(label)
            label.deleteLater()
        self.samples, self.thumbnails = list(samples), []
        for index, sample in enumerate(self.samples):
            label = QLabel()
            label.setPixmap(pixmap(outlined_rgb(sample.image, sample.labels)))
            label.setToolTip(f"augmented copy {index + 1} of {source}: yellow lines are the cell outlines "
                             "the network is taught for it")
            self.grid.addWidget(label, index // 2, index % 2)
            self.thumbnails.append(label)
        self.setWindowTitle(f"Augmentation preview: {source}")
        if not self.isVisible():
            self.move(self._anchor.mapToGlobal(QPoint(0, 0)))
        self.show()
        self.raise_()
