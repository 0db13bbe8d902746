"""The typed events that long computations yield, one place for all of them.

Prediction (:func:`napari_unet.iter_segment`) and training
(:func:`napari_unet.iter_finetune`) are generators of these small frozen records; the API's
blocking functions, the command line and the napari widgets all consume the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One output tile: ``index`` in the processing order, its kept region (y, x slices)."""

    index: int
    y: slice
    x: slice


@dataclass(frozen=True)
class TileDone:
    """A finished tile: class probabilities for ``tile`` of plane ``plane``.

    Attributes
    ----------
    plane : int or None
        Index of the plane in a stack, None for a single 2-D image.
    tile : Tile
        Kept region on the grid the network ran on (the image rescaled by ``factor``).
    region : (slice, slice)
        The same region on the input image's grid.
    done, total : int
        Tiles finished so far and in all, over every plane.
    probabilities : (C, h, w) float32 ndarray
        On the network's grid (``tile``).
    factor : float
        Scale of the network's grid relative to the input (1.0: not rescaled).
    """

    plane: int | None
    tile: Tile
    region: tuple[slice, slice]
    done: int
    total: int
    probabilities: np.ndarray
    factor: float = 1.0


@dataclass(frozen=True)
class ImageRead:
    """How an image is being read, before the first tile.

    Attributes
    ----------
    axes : str
        Axis letters of the input (e.g. "YX", "CYX", "ZYX").
    modality : str
        "fluorescence", "brightfield", "stained" or "fluorescence (colour)".
    channel : int, tuple of int, or None
        Channel segmented of a multi-channel image (or the channels the model reads).
    diameter : float or None
        Object diameter (input pixels) the image is brought to the model's scale with;
        None when the model works at any scale.
    estimated : bool
        The diameter was estimated from the image (not given).
    factor : float
        Scale the network sees the image at (model diameter / diameter).
    denoise : float
        Gaussian sigma (input pixels) the planes are smoothed with first; 0: not smoothed.
    """

    axes: str
    modality: str
    channel: int | tuple[int, ...] | None
    diameter: float | None
    estimated: bool
    factor: float
    denoise: float = 0.0


@dataclass(frozen=True)
class PlaneDone:
    """Final labels of one plane (on the input grid), and its probabilities if kept."""

    plane: int | None
    labels: np.ndarray
    probabilities: np.ndarray | None
    done: int
    total: int


@dataclass(frozen=True)
class SegmentDone:
    """The whole image is segmented.

    ``labels`` has the input's spatial shape (Y, X) or (Z|T, Y, X); ``objects`` counts
    cells (for a Z stack: 3-D objects, not per-plane outlines).
    """

    labels: np.ndarray
    objects: int
    read: ImageRead
    seconds: float


@dataclass(frozen=True)
class TrainStep:
    """One optimiser step finished. ``model`` holds the weights after it."""

    step: int
    iterations: int
    loss: float
    learning_rate: float
    elapsed: float
    eta: float
    batch_size: int
    model: object


@dataclass(frozen=True)
class Validation:
    """Scores on the held-out annotations after ``step`` ("loss", "ap50", "iou")."""

    step: int
    metrics: dict
    model: object


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the work (e.g. batch halved)."""

    step: int
    message: str


@dataclass(frozen=True)
class TrainFinished:
    """Training ended: "completed", or "diverged".

    After a divergence (a non-finite loss or non-finite weights) ``model`` holds the last
    weights whose loss was finite and ``steps`` counts the steps that produced them.
    ``collapsed``: the model finds none of its own annotated cells — hand it out, but do not
    save or use it without telling the user. ``held_out``: when part of the annotated cells
    was held out to check the run, their scores before (``"before"``: the starting model)
    and after (``"after"``: the best tuned weights), whether tuning ``"improved"`` them, and
    which weights ``model`` holds (``"kept"``: "fine-tuned", or "start" when tuning did
    not beat the starting model).
    """

    model: object
    steps: int
    reason: str
    message: str
    collapsed: bool = False
    held_out: dict | None = None

    @property
    def kept_start(self) -> bool:
        """Fine-tuning did not beat the starting model on the held-out cells, and ``model``
        holds the starting weights."""
        return self.held_out is not None and self.held_out["kept"] == "start"


@dataclass(frozen=True)
class Preview:
    """Labels the weights of ``step`` give a window of the training image (a live preview)."""

    step: int
    labels: np.ndarray


@dataclass(frozen=True)
class FileStarted:
    """Segmenting file ``index`` of ``total`` (counted from 0) begins."""

    path: Path
    index: int
    total: int


@dataclass(frozen=True)
class FileDone:
    """A file is segmented: its summary row (``row["written"]``: the files written)."""

    path: Path
    row: dict


@dataclass(frozen=True)
class FileFailed:
    """A file could not be segmented; ``message`` is one line starting with its path."""

    path: Path
    message: str


@dataclass(frozen=True)
class TilePainted:
    """Provisional labels of one finished tile (cells numbered within the tile), input grid."""

    plane: int | None
    y: slice
    x: slice
    labels: np.ndarray
    done: int
    total: int


@dataclass(frozen=True)
class PlaneLabelled:
    """Final labels of one plane, identical to :func:`napari_unet.segment` on it."""

    plane: int | None
    labels: np.ndarray
    probabilities: np.ndarray | None


@dataclass(frozen=True)
class ImageLabelled:
    """All planes of one image are done: its labels, equal to :func:`napari_unet.segment`."""

    name: str
    labels: np.ndarray
    done: int
    total: int


@dataclass(frozen=True)
class BatchProgress:
    """Progress of a batch: ``done`` of ``total`` planes over all images."""

    done: int
    total: int
