"""Synthetic microscopy images of cells with exact instance labels.

Used to pretrain the shipped model, for sample data and for benchmarks. A cell is an
ellipse whose radius is perturbed by a few low-order Fourier modes. Cells are placed
isolated or against an already placed cell; where two shapes overlap, each pixel goes to
the cell it lies deepest inside (smallest boundary-normalised radius), which gives
touching cells a shared border with no background between them. The label image is then
rendered as fluorescence ("nuclei", "cytoplasm") or phase-contrast-like ("phase")
intensities, or (``modality``) as brightfield or stained transmitted light, blurred by a
Gaussian point-spread function, put on a smooth background and made noisy by Poisson
(photon) and Gaussian (read-out) noise. ``config`` holds the ranges, ``cells`` places the
cells, ``render`` images them.

Every ``(low, high)`` field of :class:`SynthConfig` is a range: one value is drawn
uniformly per image (per cell for cell sizes and shapes), so one config yields a varied set.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .cells import place_cells
from .config import MODALITIES, STYLES, SynthConfig
from .render import cell_signal, nuclear_signal, photon_noise, render_with_cells, smooth_background

__all__ = ["MODALITIES", "STYLES", "SynthConfig", "synth_dataset", "synth_image"]


def synth_image(rng: np.random.Generator, config: SynthConfig = SynthConfig()) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic image and its instance labels.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice; the same state gives the same image.
    config : SynthConfig
        Style, modality and ranges.

    Returns
    -------
    image : (Y, X), or (Y, X, 3) for colour modalities, or (Y, X, 2) with a nuclear channel; float32
        Intensities in photon units (Poisson and read noise included).
    labels : (Y, X) ndarray of int32
        Cells (nuclei for the non-fluorescence modalities) numbered 1..n, 0 for background.
    """
    labels, depth = place_cells(rng, config)
    signal = cell_signal(rng, config, labels, depth)
    background = smooth_background(rng, config)
    if config.modality != "fluorescence":
        return render_with_cells(rng, config, labels, signal, background), labels
    if config.style == "phase":
        # Phase contrast: cells darker than the grey background, with a bright halo just
        # outside their outline.
        foreground = (labels > 0).astype(float)
        halo = np.clip(ndimage.gaussian_filter(foreground, rng.uniform(1.5, 3.0)) - foreground, 0.0, None)
        optical = 1.0 + background - 0.5 * signal + rng.uniform(0.6, 1.2) * halo
    else:
        spread = 2.0 * np.sqrt(np.count_nonzero(labels) / max(int(labels.max()), 1) / np.pi)
        optical = signal + rng.uniform(*config.haze) * ndimage.gaussian_filter(signal, spread) + background
    blur = rng.uniform(*config.blur)
    optical = ndimage.gaussian_filter(np.clip(optical, 0.0, None), blur)
    image = photon_noise(rng, config, optical)
    if config.nuclear_channel:
        nuclei = ndimage.gaussian_filter(nuclear_signal(rng, config, labels, depth) + background, blur)
        image = np.stack([image, photon_noise(rng, config, nuclei)], axis=-1)
    return image, labels


def synth_dataset(
    n: int, *, seed: int = 0, config: SynthConfig = SynthConfig()
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` synthetic images with labels; image ``i`` is the same for every ``n > i``.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        Seed of ``numpy.random.default_rng``, from which one generator per image is spawned.
    config : SynthConfig

    Returns
    -------
    samples : list of (image, labels)
        As returned by :func:`synth_image`.
    """
    return [synth_image(rng, config) for rng in np.random.default_rng(seed).spawn(n)]
