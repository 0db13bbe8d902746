"""What synthetic images look like: :class:`SynthConfig`, its styles and modalities."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

STYLES = ("nuclei", "cytoplasm", "membrane", "phase")
MODALITIES = ("fluorescence", "brightfield", "stained", "fluorescence-colour")
# stain optical densities per colour channel (R, G, B): haematoxylin and eosin (Ruifrok &
# Johnston's classic vectors), jittered per image
HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
EOSIN = np.array([0.07, 0.99, 0.11])

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
    style : {"nuclei", "cytoplasm", "membrane", "phase"}
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
        touching cells a darker seam, 0 none at all. ("membrane": whole cells whose
        outline is stained, bright rims over a faint inside.)
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
    nuclear_channel : bool
        Fluorescence only: add a second channel with each cell's nucleus (a nuclear stain
        beside the cell stain), giving a (Y, X, 2) image whose labels are the whole cells.
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
    nuclear_channel: bool = False

    def __post_init__(self):
        if len(self.shape) != 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in self.shape):
            raise ValueError(f"shape must be two positive integers (Y, X), got {self.shape!r}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(map(repr, STYLES))}, got {self.style!r}")
        if self.nuclear_channel and self.modality != "fluorescence":
            raise ValueError("nuclear_channel needs modality='fluorescence' (a second fluorescence channel)")
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
            "membrane": dict(
                radius=(14.0, 28.0),
                elongation=(1.0, 1.8),
                roughness=(0.06, 0.16),
                coverage=(0.5, 0.75),
                touching_fraction=(0.75, 0.95),
                texture=(0.05, 0.2),
                edge_darkening=(0.0, 0.0),
                photons=(50.0, 800.0),
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
