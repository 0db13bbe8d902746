"""Synthetic microscopy images of cells with exact instance labels.

Used to pretrain the shipped model, for sample data and for benchmarks. A cell is an
ellipse whose radius is perturbed by a few low-order Fourier modes. Cells are placed
isolated or against an already placed cell; where two shapes overlap, each pixel goes to
the cell it lies deepest inside (smallest boundary-normalised radius), which gives
touching cells a shared border with no background between them. The label image is then
rendered as fluorescence ("nuclei", "cytoplasm") or phase-contrast-like ("phase")
intensities, blurred by a Gaussian point-spread function, put on a smooth background and
made noisy by Poisson (photon) and Gaussian (read-out) noise.

Every ``(low, high)`` field of :class:`SynthConfig` is a range: one value is drawn
uniformly per image (per cell for cell sizes and shapes), so one config yields a varied set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import label as connected_regions
from skimage.segmentation import relabel_sequential

STYLES = ("nuclei", "cytoplasm", "phase")
MODALITIES = ("fluorescence", "brightfield", "stained", "fluorescence-colour")
# stain optical densities per colour channel (R, G, B): haematoxylin and eosin (Ruifrok &
# Johnston's classic vectors), jittered per image
_HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11])

_RANGE_BOUNDS = {
    "radius": (1.0, np.inf),
    "elongation": (1.0, np.inf),
    "roughness": (0.0, 0.5),
    "coverage": (0.0, 1.0),
    "touching_fraction": (0.0, 1.0),
    "brightness_cv": (0.0, np.inf),
    "texture": (0.0, np.inf),
    "texture_scale": (0.0, np.inf),
    "edge_darkening": (0.0, 1.0),
    "background": (0.0, np.inf),
    "background_gradient": (0.0, np.inf),
    "haze": (0.0, np.inf),
    "blur": (0.0, np.inf),
    "photons": (np.finfo(float).tiny, np.inf),
    "read_noise": (0.0, np.inf),
}


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic images look. Ranges are ``(low, high)``; intensities are relative to
    the mean cell brightness (1.0) unless stated.

    Parameters
    ----------
    shape : (int, int)
        Image shape (Y, X) in pixels.
    style : {"nuclei", "cytoplasm", "phase"}
        Bright nuclei on a dark background; larger, irregular, touching cells with dim
        edges and a dark nucleus; or dark cells with a bright halo on mid-grey (phase
        contrast). :meth:`for_style` gives ranges that suit each style.
    radius : (float, float)
        Mean cell radius in pixels (5-16). One typical radius is drawn per image, and each
        cell varies by about 15 % around it within the range.
    elongation : (float, float)
        Ratio of the long to the short ellipse axis, per cell (1-1.6).
    roughness : (float, float)
        Relative amplitude of the Fourier perturbation of the boundary (0-0.08).
    coverage : (float, float)
        Fraction of the image area that the placed cells aim to cover (0.1-0.35).
    touching_fraction : (float, float)
        Probability that a cell is placed against an existing one instead of alone
        (0.25-0.5); repeated attachment forms clusters.
    brightness_cv : (float, float)
        Coefficient of variation of the brightness between cells (0.1-0.4).
    texture : (float, float)
        Relative amplitude of the smooth intra-cell texture (0.05-0.25).
    texture_scale : (float, float)
        Grain size (Gaussian sigma) of the texture in pixels (0.8-2).
    edge_darkening : (float, float)
        Intensity drop from cell centre to edge, as a fraction (0-0.5); large values give
        touching cells a darker seam, 0 none at all.
    background : (float, float)
        Background level (0.02-0.15).
    background_gradient : (float, float)
        Amplitude of the smooth background variation (0-0.1).
    haze : (float, float)
        Out-of-focus light: fraction of the signal spread over about two cell radii (0-0.15).
    blur : (float, float)
        Gaussian point-spread function sigma in pixels (0.5-1.8).
    photons : (float, float)
        Expected photon count of a cell of mean brightness (40-1000), drawn log-uniformly;
        sets the Poisson noise. The image is returned in photon units.
    read_noise : (float, float)
        Standard deviation of the Gaussian camera noise in photons (1-5).
    modality : {"fluorescence", "brightfield", "stained", "fluorescence-colour"}
        How the labelled objects (nuclei) are imaged. "fluorescence" (the default) renders
        the ``style`` as emitted light. The others render nuclei inside cells whose
        cytoplasm surrounds them: "brightfield" as transmitted light (dark nuclei and grey
        cytoplasm on a bright background, grey image); "stained" as a slide stained with
        haematoxylin (nuclei) and eosin (cytoplasm, stroma), with jittered stain colours
        (RGB image); "fluorescence-colour" as a colour composite of a nuclear stain and a
        dimmer cytoplasm stain in random hues (RGB image). ``style`` applies to
        "fluorescence" only.
    """

    shape: tuple[int, int] = (256, 256)
    style: str = "nuclei"
    radius: tuple[float, float] = (5.0, 16.0)
    elongation: tuple[float, float] = (1.0, 1.6)
    roughness: tuple[float, float] = (0.0, 0.08)
    coverage: tuple[float, float] = (0.1, 0.35)
    touching_fraction: tuple[float, float] = (0.25, 0.5)
    brightness_cv: tuple[float, float] = (0.1, 0.4)
    texture: tuple[float, float] = (0.05, 0.25)
    texture_scale: tuple[float, float] = (0.8, 2.0)
    edge_darkening: tuple[float, float] = (0.0, 0.5)
    background: tuple[float, float] = (0.02, 0.15)
    background_gradient: tuple[float, float] = (0.0, 0.1)
    haze: tuple[float, float] = (0.0, 0.15)
    blur: tuple[float, float] = (0.5, 1.8)
    photons: tuple[float, float] = (40.0, 1000.0)
    read_noise: tuple[float, float] = (1.0, 5.0)
    modality: str = "fluorescence"

    def __post_init__(self):
        if len(self.shape) != 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in self.shape):
            raise ValueError(f"shape must be two positive integers (Y, X), got {self.shape!r}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(map(repr, STYLES))}, got {self.style!r}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(map(repr, MODALITIES))}, got {self.modality!r}")
        for name, (minimum, maximum) in _RANGE_BOUNDS.items():
            interval = getattr(self, name)
            if len(interval) != 2 or not minimum <= interval[0] <= interval[1] <= maximum:
                raise ValueError(
                    f"{name} must be a range (low, high) with {minimum:g} <= low <= high <= {maximum:g}, "
                    f"got {interval!r}"
                )

    @classmethod
    def for_style(cls, style: str, **changes) -> "SynthConfig":
        """Ranges suited to ``style``; ``changes`` override single fields."""
        presets = {
            "nuclei": {},
            "cytoplasm": dict(
                radius=(14.0, 28.0),
                elongation=(1.0, 1.8),
                roughness=(0.06, 0.16),
                coverage=(0.45, 0.7),
                touching_fraction=(0.7, 0.95),
                texture=(0.1, 0.3),
                texture_scale=(1.5, 3.0),
                edge_darkening=(0.4, 0.75),
                photons=(30.0, 500.0),
            ),
            "phase": dict(
                radius=(8.0, 20.0),
                elongation=(1.0, 2.2),
                roughness=(0.04, 0.12),
                coverage=(0.15, 0.4),
                edge_darkening=(0.2, 0.6),
                background=(0.0, 0.0),
                haze=(0.0, 0.0),
                photons=(200.0, 2000.0),
            ),
        }
        if style not in presets:
            raise ValueError(f"style must be one of {', '.join(map(repr, STYLES))}, got {style!r}")
        return cls(style=style, **{**presets[style], **changes})

    def replace(self, **changes) -> "SynthConfig":
        return dataclasses.replace(self, **changes)


OUT_OF_DISTRIBUTION = ("magnified", "dim-rods")


def out_of_distribution_config(shape=(256, 256), kind: str = "magnified") -> SynthConfig:
    """Nuclei unlike any of the default :class:`SynthConfig` (the pretraining ranges).

    ``kind="magnified"`` (the fine-tuning benchmark): the same kind of sample seen through a
    stronger objective. Outside the defaults:

    - radius 18-26 px (default 5-16): large nuclei;
    - texture 0.3-0.45 at grain 2.5-4 px (default 0.05-0.25 at 0.8-2 px): coarse chromatin;
    - edge_darkening 0.55-0.75 (default 0-0.5): dim rims;
    - blur 2-2.5 px (default 0.5-1.8) and photons 1500-4000 (default 40-1000): an
      oversampled, bright image.

    ``kind="dim-rods"``: every appearance range at or past the far edge at once, large
    rod-shaped nuclei (radius 18-28, elongation 2-3 against 1-1.6), rough outlines
    (0.1-0.18), coarse texture (0.4-0.6 at 3-5 px), dark rims (0.6-0.8), heavy blur
    (2-2.8 px) and very few photons (15-35) over a bright background (0.2-0.3) with read
    noise 5-7. Many touching rods are divided by a seam below the noise, and the dimmest
    cells are hard to see at all: a stress test, not a target.

    Density and touching stay at the defaults in both, so the difference is appearance only.
    """
    kinds = {
        "magnified": dict(radius=(18.0, 26.0), texture=(0.3, 0.45), texture_scale=(2.5, 4.0),
                          edge_darkening=(0.55, 0.75), photons=(1500.0, 4000.0), blur=(2.0, 2.5)),
        "dim-rods": dict(radius=(18.0, 28.0), elongation=(2.0, 3.0), roughness=(0.1, 0.18), texture=(0.4, 0.6),
                         texture_scale=(3.0, 5.0), edge_darkening=(0.6, 0.8), photons=(15.0, 35.0),
                         read_noise=(5.0, 7.0), blur=(2.0, 2.8), background=(0.2, 0.3)),
    }
    if kind not in kinds:
        raise ValueError(f"kind must be one of {', '.join(map(repr, OUT_OF_DISTRIBUTION))}, got {kind!r}")
    return SynthConfig(shape=shape, **kinds[kind])


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


def _place_cells(rng, config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
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


def _smooth_noise(rng, shape, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / max(field.std(), 1e-12)


def _cell_signal(rng, config: SynthConfig, labels, depth) -> np.ndarray:
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
    return signal


def _background(rng, config: SynthConfig) -> np.ndarray:
    rows, columns = np.meshgrid(*(np.linspace(-0.5, 0.5, n) for n in config.shape), indexing="ij")
    direction = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(direction) * rows + np.sin(direction) * columns
    # Smooth blotches: noise on a coarse 6 x 6 lattice, interpolated to every pixel.
    coarse = rng.standard_normal((6, 6))
    blotches = 0.25 * ndimage.map_coordinates(coarse, [rows * 5 + 2.5, columns * 5 + 2.5], order=3, mode="mirror")
    gradient = rng.uniform(*config.background_gradient) * (ramp + blotches)
    return rng.uniform(*config.background) + gradient


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
    image : (Y, X) or, for colour modalities, (Y, X, 3) ndarray of float32
        Intensities in photon units (Poisson and read noise included).
    labels : (Y, X) ndarray of int32
        Cells (nuclei for the non-fluorescence modalities) numbered 1..n, 0 for background.
    """
    labels, depth = _place_cells(rng, config)
    signal = _cell_signal(rng, config, labels, depth)
    background = _background(rng, config)
    if config.modality != "fluorescence":
        return _render_with_cells(rng, config, labels, signal, background), labels
    if config.style == "phase":
        # Phase contrast: cells darker than the grey background, with a bright halo just
        # outside their outline.
        foreground = (labels > 0).astype(float)
        halo = np.clip(ndimage.gaussian_filter(foreground, rng.uniform(1.5, 3.0)) - foreground, 0.0, None)
        optical = 1.0 + background - 0.5 * signal + rng.uniform(0.6, 1.2) * halo
    else:
        spread = 2.0 * np.sqrt(np.count_nonzero(labels) / max(int(labels.max()), 1) / np.pi)
        optical = signal + rng.uniform(*config.haze) * ndimage.gaussian_filter(signal, spread) + background
    optical = ndimage.gaussian_filter(np.clip(optical, 0.0, None), rng.uniform(*config.blur))
    return _photon_noise(rng, config, optical), labels


def _photon_noise(rng, config: SynthConfig, optical: np.ndarray) -> np.ndarray:
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


def _render_with_cells(rng, config: SynthConfig, labels, signal, background) -> np.ndarray:
    """Brightfield, stained or colour-fluorescence rendering of nuclei inside their cells."""
    cytoplasm = _cytoplasm(rng, labels)
    blur = rng.uniform(*config.blur)
    if config.modality == "fluorescence-colour":
        hues = rng.dirichlet(np.full(3, 0.5), size=2)
        optical = (signal[..., None] * hues[0] + rng.uniform(0.0, 0.5) * cytoplasm[..., None] * hues[1]
                   + background[..., None] * rng.uniform(0.5, 1.0, 3))
        optical = ndimage.gaussian_filter(optical, (blur, blur, 0))
        return _photon_noise(rng, config, optical / optical.max() * 1.5)
    # transmitted light: absorbance (optical density) of each stain, then Beer-Lambert
    nuclear = rng.uniform(0.4, 1.5) * signal
    if config.modality == "brightfield":
        density = nuclear + rng.uniform(0.1, 0.6) * cytoplasm
        illumination = 1.0 + (background - background.mean()) * rng.uniform(0.0, 2.0)
        optical = illumination * np.exp(-ndimage.gaussian_filter(density, blur))
        return _photon_noise(rng, config.replace(photons=(1000.0, 10000.0)), optical)
    stroma = np.clip(_smooth_noise(rng, labels.shape, rng.uniform(4.0, 20.0)) - rng.uniform(-0.5, 1.5), 0, None)
    eosin = rng.uniform(0.1, 0.7) * (cytoplasm + stroma * (labels == 0))
    haematoxylin_colour = _stain_colour(rng, _HAEMATOXYLIN)
    eosin_colour = _stain_colour(rng, _EOSIN)
    density = nuclear[..., None] * haematoxylin_colour + eosin[..., None] * eosin_colour
    white = rng.uniform(0.93, 1.0, 3)
    optical = white * np.exp(-ndimage.gaussian_filter(density, (blur, blur, 0)))
    return _photon_noise(rng, config.replace(photons=(1000.0, 10000.0), read_noise=(0.0, 2.0)), optical)


def _stain_colour(rng, vector: np.ndarray) -> np.ndarray:
    jittered = np.clip(vector + rng.normal(0.0, 0.12, 3), 0.02, None)
    return jittered / np.linalg.norm(jittered)


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
