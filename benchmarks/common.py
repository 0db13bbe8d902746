"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import os
import time

import napari_unet as nu
from napari_unet.synth import SynthConfig


def benchmark_model(name: str):
    """``(model, description)``: a shipped name or file, else an untrained depth-3 U-Net."""
    if name in nu.list_models() or os.path.isfile(name):
        return nu.load_model(name, device="cpu"), f"{name}"
    return (nu.create_model("unet", depth=3, base_channels=16),
            f"model {name!r} not found: an untrained depth-3, 16-channel U-Net")


def best_time(function, repeats: int):
    """``(best seconds, last result)`` of ``repeats`` calls of ``function()``."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


OUT_OF_DISTRIBUTION = ("magnified", "dim-rods", "cells")


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

    ``kind="cells"``: whole cells, not nuclei — the "membrane" style (touching cells with
    bright rims, 28-56 px across) with a nuclear stain as a second channel, ``(Y, X, 2)``.
    """
    if kind == "cells":
        return SynthConfig.for_style("membrane", shape=shape, nuclear_channel=True)
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
