"""Annotated image folders for pretraining and benchmarks (read by path, never shipped).

A folder holds ``images/<id>.tif`` and ``masks/<id>.tif`` (instance labels, 0 =
background) with the same ids, and optionally ``index.csv`` with at least an ``id``
column; its ``split`` and ``modality`` columns, when present, select and group images
(the layout of the DSB2018 copy in ``shared/data/dsb2018``). The folders that
``benchmarks/data/build_*.py`` write add ``source`` (the data set), ``group`` (the
experiment, organ, patient or lab an image comes from: what a leave-source-out
evaluation holds out whole) and ``target`` ("nuclei" or "cells": what the masks outline).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AnnotatedImage:
    """One image with its instance labels.

    Attributes
    ----------
    id : str
    image : (Y, X) or (Y, X, 3) ndarray
    labels : (Y, X) ndarray of int
    modality : str
        From ``index.csv`` ("" when unknown).
    diameter : float
        Median equivalent diameter of the labelled objects, pixels (``2 sqrt(area / pi)``).
    source : str
        The data set (``index.csv``'s ``source``, else the folder's name).
    group : str
        Experiment / organ / patient within the source ("" when the source gives none).
    target : str
        What the masks outline: "nuclei" (the default) or "cells".
    """

    id: str
    image: np.ndarray
    labels: np.ndarray
    modality: str
    diameter: float
    source: str = ""
    group: str = ""
    target: str = "nuclei"


def median_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter ``2 sqrt(area / pi)`` of the objects, in pixels (NaN if none)."""
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    return float(2 * np.sqrt(np.median(areas) / np.pi)) if areas.size else float("nan")


def read_index(folder) -> list[dict]:
    """Rows of ``index.csv``, or one row ``{"id": stem}`` per image when there is none."""
    folder = Path(folder)
    if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
        raise ValueError(f"{folder}: an annotated folder needs images/ and masks/ subfolders")
    index = folder / "index.csv"
    if index.is_file():
        with open(index, newline="") as stream:
            rows = list(csv.DictReader(stream))
        if rows and "id" not in rows[0]:
            raise ValueError(f"{index}: needs an 'id' column")
        return rows
    return [{"id": path.stem} for path in sorted((folder / "images").glob("*.tif"))]


def read_annotated(folder, *, split: str | None = None, modality: str | None = None,
                   limit: int | None = None, target: str | None = None,
                   keep=None) -> list[AnnotatedImage]:
    """Images and labels of an annotated folder, in index order.

    Parameters
    ----------
    folder : str or Path
    split, modality, target : str, optional
        Keep only rows whose ``split`` / ``modality`` / ``target`` column has this value
        (a row without a ``target`` counts as "nuclei").
    limit : int, optional
        At most this many images (the first ones).
    keep : callable, optional
        ``keep(row)`` -> bool on the ``index.csv`` row (with ``source`` filled in): further
        selection before any image is read.
    """
    import tifffile

    folder = Path(folder)
    rows = [dict(row, source=row.get("source") or folder.name) for row in read_index(folder)]
    rows = [row for row in rows
            if (split is None or row.get("split") == split) and (modality is None or row.get("modality") == modality)
            and (target is None or (row.get("target") or "nuclei") == target) and (keep is None or keep(row))]
    samples = []
    for row in rows[:limit]:
        image = tifffile.imread(folder / "images" / f"{row['id']}.tif")
        labels = tifffile.imread(folder / "masks" / f"{row['id']}.tif")
        if labels.shape != image.shape[:2]:
            raise ValueError(f"{folder}: masks/{row['id']}.tif has shape {labels.shape}, its image {image.shape}")
        samples.append(AnnotatedImage(id=row["id"], image=image, labels=labels, modality=row.get("modality", ""),
                                      diameter=median_diameter(labels), source=row["source"],
                                      group=row.get("group") or "", target=row.get("target") or "nuclei"))
    return samples
