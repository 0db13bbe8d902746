"""Never silently absurd: signs that a segmentation is implausible, and what to do next.

A result the user should not trust without a look: objects covering most of the image
(background or tissue taken for nuclei), far more and far smaller objects than the size the
image was read at allows (a texture cut into pieces), or an object size the probes of the
size estimate disagree on. Each sign becomes one sentence with the next step;
:func:`napari_unet.iter_segment` yields them as :class:`~napari_unet.events.Notice` events
(the API warns, the command line prints a line, the widgets show it).
"""

from __future__ import annotations

import numpy as np

# objects of a nuclei model covering more than this share of the image
COVERAGE_LIMIT = 0.85
# at least this many objects, with a median diameter below this share of the diameter
# the image was read at, are fragments rather than cells
FRAGMENTS_COUNT = 200
FRAGMENT_SHARE = 0.4
# objects of the read diameter, this many times as many as could tile the image
CROWDING_LIMIT = 1.5

NEXT_STEP = ("give the cell diameter (diameter=, --diameter or the 'cell diameter' field) if that is wrong, "
             "or fine-tune on a few of your cells")


def model_target(model) -> str:
    """What ``model`` outlines: "cells" when its pretraining read whole-cell masks, else "nuclei"."""
    for entry in reversed(getattr(model, "history", []) or []):
        recipe = entry.get("recipe") if isinstance(entry, dict) else None
        if isinstance(recipe, dict) and recipe.get("target"):
            return str(recipe["target"])
    return "nuclei"


def _plane_sizes(labels: np.ndarray) -> np.ndarray:
    """Pixel counts of the objects of every plane (a 3-D object counts once per plane)."""
    planes = [labels] if labels.ndim == 2 else list(labels)
    sizes = [np.bincount(plane.ravel())[1:] for plane in planes]
    sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    return sizes[sizes > 0]


def implausibilities(labels: np.ndarray, *, diameter: float | None, target: str = "nuclei",
                     rival: float | None = None) -> list[str]:
    """The signs that ``labels`` are implausible, one sentence each (empty: none).

    Parameters
    ----------
    labels : (Y, X) or (Z|T, Y, X) ndarray of int
    diameter : float or None
        Object diameter (input pixels) the image was read at; None: unknown.
    target : {"nuclei", "cells"}
        What the model outlines (whole cells may cover a confluent image).
    rival : float or None
        A diameter that fitted almost as well as ``diameter`` (the estimate is uncertain).
    """
    labels = np.asarray(labels)
    found = []
    sizes = _plane_sizes(labels)
    planes = 1 if labels.ndim == 2 else labels.shape[0]
    coverage = float(sizes.sum()) / labels.size if labels.size else 0.0
    if target == "nuclei" and coverage > COVERAGE_LIMIT:
        found.append(f"the objects cover {coverage:.0%} of the image: background or tissue may have been taken "
                     f"for nuclei; check the result, and {NEXT_STEP}")
    if diameter and sizes.size:
        median = float(2 * np.sqrt(np.median(sizes) / np.pi))
        per_plane = sizes.size / planes
        room = labels.shape[-2] * labels.shape[-1] / (np.pi * diameter**2 / 4)  # objects that fit one plane
        if per_plane >= FRAGMENTS_COUNT and median < FRAGMENT_SHARE * diameter:
            found.append(f"{int(per_plane)} objects with a median diameter of {median:.0f} px, far below the "
                         f"{diameter:.0f} px the image was read at: a texture may have been cut into pieces; "
                         f"{NEXT_STEP}")
        elif per_plane > CROWDING_LIMIT * room:
            found.append(f"{int(per_plane)} objects where about {room:.0f} of {diameter:.0f} px would fill the "
                         f"image: {NEXT_STEP}")
    if rival is not None and diameter:
        found.append(f"the object size is uncertain: {diameter:.0f} px was chosen, but {rival:.0f} px fitted "
                     f"almost as well; if the cells are not about {diameter:.0f} px across, give their diameter "
                     "(diameter=, --diameter or the 'cell diameter' field)")
    return found
