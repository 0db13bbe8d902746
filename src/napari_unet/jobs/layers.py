"""Segment images held in memory (napari layers): labels previewed tile by tile, batches of
images, and where their labels are saved. Qt-free: the widgets run these in a worker and
only put what they yield into layers. The inference modules (and with them torch) are
imported when a job runs, not when a widget module is loaded."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from ..events import (BatchProgress, ImageLabelled, ImageRead, Notice, PlaneDone, PlaneLabelled, SegmentDone,
                      TileDone, TilePainted)


def segment_with_previews(image, model, config, focus, planes, keep_probabilities: bool):
    """The ImageRead, a TilePainted per tile, a PlaneLabelled per plane and any Notice;
    returns the SegmentDone.

    Tiles are labelled on their own for a quick look; every plane's final labels come from
    :func:`napari_unet.iter_segment`, so the end result is exactly the blocking API's.
    """
    from ..inference.labels import probabilities_to_labels
    from ..inference.rescale import resample_nearest
    from ..inference.segment import iter_segment

    # the model's labelling as the final labels use it, but no size filter on a cut-off tile
    preview = dataclasses.replace(config.labelling(model.labelling), min_size=0)
    offset = 0
    for event in iter_segment(image, model, config, focus=focus, planes=planes,
                              keep_probabilities=keep_probabilities):
        if isinstance(event, TileDone):
            rows, cols = event.region
            labels = probabilities_to_labels(event.probabilities, seeds=config.seeds,
                                             **dataclasses.asdict(preview)).astype(np.uint32)
            labels = resample_nearest(labels, 1 / event.factor, (rows.stop - rows.start, cols.stop - cols.start))
            labels[labels > 0] += offset
            offset = int(labels.max(initial=offset))
            yield TilePainted(event.plane, rows, cols, labels, event.done, event.total)
        elif isinstance(event, PlaneDone):
            yield PlaneLabelled(event.plane, event.labels, event.probabilities)
        elif isinstance(event, (ImageRead, Notice)):
            yield event
        elif isinstance(event, SegmentDone):
            return event
    return None


def segment_batch(items, model, config):
    """Segment each ``(name, image, options)`` with :func:`napari_unet.iter_segment`;
    ``options``: the image's own SegmentConfig fields (``axes``, ``z_step``).

    Yields a BatchProgress after every plane (a widget's cancel takes effect there), an
    ImageLabelled after every image, and the images' Notices (named after the image).
    """
    from ..inference.layout import describe_image
    from ..inference.segment import iter_segment

    total = sum(describe_image(image, axes=options.get("axes")).planes for _, image, options in items)
    done = 0
    for name, image, options in items:
        for event in iter_segment(image, model, config.replace(**options)):
            if isinstance(event, PlaneDone):
                done += 1
                yield BatchProgress(done, total)
            elif isinstance(event, SegmentDone):
                yield ImageLabelled(name, event.labels, done, total)
            elif isinstance(event, Notice):
                yield Notice(step=done, message=f"{name}: {event.message}")


def file_name(layer_name: str) -> str:
    """``<layer name>_labels.tif`` with characters that are unsafe in file names replaced."""
    return re.sub(r"[^\w.-]+", "_", layer_name).strip("._") + "_labels.tif"


def label_paths(sources: dict, folder=None, ask=None) -> dict[str, Path] | None:
    """Where the labels of each named image are saved: ``<name>_labels.tif`` in ``folder``
    when one is given (it must exist), else next to the image's own file (``sources``: name
    -> the path it was read from, or None), else in the folder ``ask(names)`` returns for
    the images that have none. None: ``ask`` declined. Never the current directory by default.
    """
    if folder is not None:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise ValueError(f"folder {str(folder)!r} does not exist: choose an existing folder")
        folders = {name: folder for name in sources}
    else:
        folders = {name: _existing_parent(path) for name, path in sources.items()}
        homeless = [name for name, found in folders.items() if found is None]
        if homeless:
            asked = ask(homeless) if ask is not None else None
            if asked is None or not Path(asked).is_dir():
                return None
            folders.update((name, Path(asked)) for name in homeless)
    return {name: found / file_name(name) for name, found in folders.items()}


def _existing_parent(path) -> Path | None:
    """The folder of ``path``, or None (no file: made in Python, pasted, a URL)."""
    if not path:
        return None
    folder = Path(path).parent
    return folder if folder.is_dir() else None


def saved_where(paths: list[Path]) -> str:
    """"3 file(s) in /data/day1" (or the folders, one after another)."""
    folders = sorted({str(path.parent) for path in paths})
    return f"{len(paths)} file(s) in {', '.join(folders)}"
