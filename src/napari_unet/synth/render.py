"""Rendering labelled cells as a microscope would: emitted or transmitted light, blur, noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .config import EOSIN, HAEMATOXYLIN, SynthConfig


def _smooth_noise(rng, shape, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / max(field.std(), 1e-12)


def cell_signal(rng, config: SynthConfig, labels, depth) -> np.ndarray:
    """Per-pixel cell intensity: per-cell brightness x radial profile x texture."""
    n_cells = int(labels.max())
    cv = rng.uniform(*config.brightness_cv)
    brightness = np.concatenate([[0.0], rng.lognormal(-0.5 * np.log1p(cv**2), np.sqrt(np.log1p(cv**2)), n_cells)])
    texture = rng.uniform(*config.texture) * _smooth_noise(rng, config.shape, rng.uniform(*config.texture_scale))
    edge = rng.uniform(*config.edge_darkening)
    radial = np.where(labels > 0, 1.0 - edge * np.minimum(depth, 1.0) ** 2, 0.0)
    signal = brightness[labels] * radial * np.clip(1.0 + texture, 0.0, None)
    if config.style == "cytoplasm":
        # The stain fills the cytoplasm only: a dim nucleus sits near each cell's centre.
        signal *= np.where(depth < rng.uniform(0.3, 0.45), rng.uniform(0.2, 0.5), 1.0)
    elif config.style == "membrane":
        # A membrane stain: bright rims (the outer fifth of each cell), a faint inside.
        signal *= np.where(depth > rng.uniform(0.75, 0.85), 1.0, rng.uniform(0.05, 0.25))
    return signal


def nuclear_signal(rng, config: SynthConfig, labels, depth) -> np.ndarray:
    """A nuclear stain for whole cells: an ellipse of about 40 % of each cell's radius."""
    n_cells = int(labels.max())
    brightness = np.concatenate([[0.0], rng.lognormal(0.0, 0.25, n_cells)])
    inside = np.where(labels > 0, depth < rng.uniform(0.3, 0.5), False)
    texture = 1.0 + 0.15 * _smooth_noise(rng, config.shape, 1.2)
    return brightness[labels] * inside * np.clip(texture, 0.0, None)


def smooth_background(rng, config: SynthConfig) -> np.ndarray:
    rows, columns = np.meshgrid(*(np.linspace(-0.5, 0.5, n) for n in config.shape), indexing="ij")
    direction = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(direction) * rows + np.sin(direction) * columns
    # Smooth blotches: noise on a coarse 6 x 6 lattice, interpolated to every pixel.
    coarse = rng.standard_normal((6, 6))
    blotches = 0.25 * ndimage.map_coordinates(coarse, [rows * 5 + 2.5, columns * 5 + 2.5], order=3, mode="mirror")
    gradient = rng.uniform(*config.background_gradient) * (ramp + blotches)
    return rng.uniform(*config.background) + gradient


def photon_noise(rng, config: SynthConfig, optical: np.ndarray) -> np.ndarray:
    photons = np.exp(rng.uniform(*np.log(config.photons)))
    # smooth backgrounds can dip below 0 where a gradient is steep: no negative light
    image = rng.poisson(np.clip(optical, 0.0, None) * photons) + rng.normal(0.0, rng.uniform(*config.read_noise), optical.shape)
    return image.astype(np.float32)


def _cytoplasm(rng, labels: np.ndarray) -> np.ndarray:
    """Density of the cytoplasm around each nucleus: cells a few nucleus radii wide, some
    touching into sheets, with a smooth texture; 0 inside nuclei and outside cells."""
    from skimage.segmentation import expand_labels

    count = int(labels.max())
    if count == 0:
        return np.zeros(labels.shape)
    radius = 2.0 * np.sqrt(np.count_nonzero(labels) / count / np.pi) / 2
    cells = expand_labels(labels, distance=radius * rng.uniform(0.8, 3.0))
    # a share of the nuclei are bare, and cells differ in how much they absorb
    density = rng.uniform(0.3, 1.0, count + 1) * (rng.random(count + 1) < rng.uniform(0.6, 1.0))
    density[0] = 0.0
    texture = 1.0 + 0.3 * _smooth_noise(rng, labels.shape, rng.uniform(1.0, 4.0))
    return np.clip(density[cells] * texture, 0.0, None) * (labels == 0)


def render_with_cells(rng, config: SynthConfig, labels, signal, background) -> np.ndarray:
    """Brightfield, stained or colour-fluorescence rendering of nuclei inside their cells."""
    cytoplasm = _cytoplasm(rng, labels)
    blur = rng.uniform(*config.blur)
    if config.modality == "fluorescence-colour":
        hues = rng.dirichlet(np.full(3, 0.5), size=2)
        optical = (signal[..., None] * hues[0] + rng.uniform(0.0, 0.5) * cytoplasm[..., None] * hues[1]
                   + background[..., None] * rng.uniform(0.5, 1.0, 3))
        optical = ndimage.gaussian_filter(optical, (blur, blur, 0))
        return photon_noise(rng, config, optical / optical.max() * 1.5)
    # transmitted light: absorbance (optical density) of each stain, then Beer-Lambert
    nuclear = rng.uniform(0.4, 1.5) * signal
    if config.modality == "brightfield":
        density = nuclear + rng.uniform(0.1, 0.6) * cytoplasm
        illumination = 1.0 + (background - background.mean()) * rng.uniform(0.0, 2.0)
        optical = illumination * np.exp(-ndimage.gaussian_filter(density, blur))
        return photon_noise(rng, config.replace(photons=(1000.0, 10000.0)), optical)
    stroma = np.clip(_smooth_noise(rng, labels.shape, rng.uniform(4.0, 20.0)) - rng.uniform(-0.5, 1.5), 0, None)
    eosin = rng.uniform(0.1, 0.7) * (cytoplasm + stroma * (labels == 0))
    haematoxylin_colour = _stain_colour(rng, HAEMATOXYLIN)
    eosin_colour = _stain_colour(rng, EOSIN)
    density = nuclear[..., None] * haematoxylin_colour + eosin[..., None] * eosin_colour
    white = rng.uniform(0.93, 1.0, 3)
    optical = white * np.exp(-ndimage.gaussian_filter(density, (blur, blur, 0)))
    return photon_noise(rng, config.replace(photons=(1000.0, 10000.0), read_noise=(0.0, 2.0)), optical)


def _stain_colour(rng, vector: np.ndarray) -> np.ndarray:
    jittered = np.clip(vector + rng.normal(0.0, 0.12, 3), 0.02, None)
    return jittered / np.linalg.norm(jittered)
