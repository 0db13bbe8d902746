"""Placing cells: perturbed ellipses, isolated or attached to a neighbour, never overlapping."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import label as connected_regions
from skimage.segmentation import relabel_sequential

from .config import SynthConfig


@dataclass(frozen=True)
class _CellShape:
    centre: np.ndarray
    semi_axes: tuple[float, float]
    angle: float
    mode_cos: np.ndarray
    mode_sin: np.ndarray

    def radius_scale(self, polar_angle):
        """Fourier perturbation of the boundary radius at ``polar_angle`` (cell frame)."""
        modes = np.arange(2, 2 + len(self.mode_cos))
        phases = np.multiply.outer(polar_angle, modes)
        return 1.0 + np.cos(phases) @ self.mode_cos + np.sin(phases) @ self.mode_sin

    def extent(self, direction: float) -> float:
        """Distance from the centre to the boundary along an image-frame direction."""
        phi = direction - self.angle
        a, b = self.semi_axes
        return float(self.radius_scale(np.array(phi))) / np.hypot(np.cos(phi) / a, np.sin(phi) / b)

    def normalised_radius(self, shape) -> tuple[tuple[slice, slice], np.ndarray]:
        """Bounding box in the image and, inside it, radius / boundary radius (< 1 inside)."""
        reach = max(self.semi_axes) * (1.0 + np.abs(self.mode_cos).sum() + np.abs(self.mode_sin).sum()) + 1
        box = tuple(
            slice(int(max(np.floor(c - reach), 0)), int(min(np.ceil(c + reach) + 1, n)))
            for c, n in zip(self.centre, shape)
        )
        y, x = np.ogrid[box[0], box[1]]
        dy, dx = y - self.centre[0], x - self.centre[1]
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        a, b = self.semi_axes
        return box, np.hypot(u / a, v / b) / self.radius_scale(np.arctan2(v, u))


def _draw_shape(rng, config: SynthConfig, typical_radius: float, centre) -> _CellShape:
    radius = np.clip(typical_radius * rng.lognormal(0.0, 0.15), *config.radius)
    elongation = rng.uniform(*config.elongation)
    roughness = rng.uniform(*config.roughness)
    n_modes = 4
    amplitudes = roughness / np.arange(1, n_modes + 1)
    return _CellShape(
        centre=np.asarray(centre, dtype=float),
        semi_axes=(radius * np.sqrt(elongation), radius / np.sqrt(elongation)),
        angle=rng.uniform(0, np.pi),
        mode_cos=rng.normal(0.0, amplitudes),
        mode_sin=rng.normal(0.0, amplitudes),
    )


def place_cells(rng, config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Label image (sequential, int32) and each pixel's normalised radius in its cell."""
    shape = config.shape
    typical_radius = rng.uniform(*config.radius)
    touching = rng.uniform(*config.touching_fraction)
    target_area = rng.uniform(*config.coverage) * shape[0] * shape[1]
    owner = np.zeros(shape, dtype=np.int32)
    depth = np.full(shape, np.inf)
    cells: list[_CellShape] = []
    covered = 0
    expected_count = target_area / (np.pi * typical_radius**2) + 1
    for _ in range(int(20 * expected_count) + 10):
        if covered >= target_area:
            break
        attach = bool(cells) and rng.random() < touching
        if attach:
            neighbour = cells[rng.integers(len(cells))]
            direction = rng.uniform(0, 2 * np.pi)
            cell = _draw_shape(rng, config, typical_radius, neighbour.centre)
            # Centre distance a bit below the sum of the two extents: the shapes overlap
            # slightly and the overlap is split between them into a shared border.
            distance = (neighbour.extent(direction) + cell.extent(direction + np.pi)) * rng.uniform(0.8, 0.95)
            cell = dataclasses.replace(
                cell, centre=neighbour.centre + distance * np.array([np.sin(direction), np.cos(direction)])
            )
        else:
            cell = _draw_shape(rng, config, typical_radius, rng.uniform((0, 0), shape))
        box, radius = cell.normalised_radius(shape)
        inside = radius < 1
        if not inside.any():
            continue
        occupied = depth[box] < radius
        if attach:
            # An attached cell may give up a thin overlap to its neighbours, not more.
            if np.count_nonzero(inside & occupied) > 0.3 * np.count_nonzero(inside):
                continue
        elif np.any(ndimage.binary_dilation(inside, iterations=2) & (owner[box] > 0)):
            # An isolated cell keeps at least two pixels of background to every other cell.
            continue
        claimed = inside & ~occupied
        owner[box][claimed] = len(cells) + 1
        depth[box][claimed] = radius[claimed]
        covered += np.count_nonzero(claimed)
        cells.append(cell)
    # A cell cut in two by its neighbours becomes two objects; crumbs are dropped.
    labels = connected_regions(owner, connectivity=1)
    crumb = np.bincount(labels.ravel()) <= 7
    crumb[0] = False
    labels = relabel_sequential(np.where(crumb[labels], 0, labels))[0].astype(np.int32)
    return labels, np.where(labels > 0, depth, np.inf)
