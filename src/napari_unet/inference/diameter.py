"""Object size and channel: measured with the model itself before the image is segmented.

A model with a working diameter ``D`` (the object size it was trained at, with a zoom
spread of about 0.67-1.5x) sees an image rescaled by ``f`` with objects of ``f d`` pixels.
:func:`probe_scales` runs the model on a window of the image at factors an octave apart
(1/8 to 4), so at one of them the objects fall in the trained range whatever their size
(about 3 to 230 px), and measures the whole objects it finds there: their median diameter
and how confident the network is about them. :func:`choose_diameter` keeps the probe whose
objects look most like the training data (see its docstring for the rule and how it was
chosen).

How the rule was chosen (2026-12-06, the shipped ``nuclei``, all 517 DSB2018 ``train``
images probed once; ``val`` not used): the confidence and the size penalty alone put the
estimate within 20 % of the annotated median diameter on 91 % of the fluorescence and
80 % of the stained images, but on none of the 7 brightfield ones: shrunk to a quarter, a
whole squamous cell looks like a nucleus to the network, and it is surer of those than of
the small dark nuclei at full size. What separates them is how strongly the objects are
stained: a real nucleus is among the brightest (after polarity) structures of the image,
a whole cell is mid-grey. A weight of 0.25 on the objects' mean normalised intensity
(0.2-0.3 scored alike) fixed 2 of the 7 brightfield images (AP@0.5 0.00 -> 0.64 and
0.02 -> 0.54 at the diameter it then chose) and two fluorescence images whose estimate
had run off to clusters (0 -> 0.83, 0 -> 0.75), changed 15 fluorescence estimates in all
(AP@0.5 summed +1.43) and two stained ones (-0.04); weights of 0.4 and more lost
fluorescence (-0.44 and -2.5 summed).

Whole-cell models need another rule (``model.diameter_rule == "stable"``, see
:func:`stable_candidates`): a network trained on whole cells cuts whatever it is shown into
pieces of about its working diameter, so every probe "finds" objects of that size and the
confidence barely moves with the scale (cells-v1 on Usiigaci: the confidence rule put 53 %
of the estimates within 1.5x). Real cells are the objects whose size in input pixels stays
the same from one probe to the next, an octave apart; fragments halve with the factor.
Chosen on the 8 Usiigaci ``train`` images at 4 zooms (10-70 px cells): 91 % within 1.5x.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .labels import DEFAULT_MIN_SIZE, probabilities_to_labels
from .rescale import RescaledPlane, is_unit
from .runner import TileSource, predict_plane

PROBE_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
# network-grid pixels per side of the window a probe predicts (centred in the image)
PROBE_SIDE = 384
# a probe needs this many whole objects to count
MIN_OBJECTS = 3
# the weight of a probe's distance (in octaves) from the working diameter against its confidence
SIZE_PENALTY = 0.25
# the weight of its objects' mean normalised intensity (see the module docstring)
INTENSITY_WEIGHT = 0.25
# a scale this many times larger or smaller than the chosen one, scoring within this much
# of it, makes the estimate uncertain (the user is told to check it)
RIVAL_RATIO = 3.0
RIVAL_MARGIN = 0.03
# planes of a Z stack whose estimates make its size (see estimate_stack)
STACK_PLANES = 5
# a ball's diameter over its mean section at a random height (see estimate_stack)
BALL_SECTION = 4 / np.pi
# the "stable" rule: the objects a probe pair needs (each), and the octaves of size
# disagreement within which a pair far from the chosen one is a rival
STABLE_MIN_OBJECTS = 10
STABLE_MARGIN = 0.1


@dataclass(frozen=True)
class ScaleProbe:
    """What the model finds in a window of the image rescaled by ``factor``.

    Attributes
    ----------
    factor : float
    objects : int
        Whole objects (not touching the window's edge).
    diameter : float
        Their median equivalent diameter ``2 sqrt(area / pi)``, in input pixels (NaN if none).
    confidence : float
        Mean probability of the predicted class over the predicted foreground.
    intensity : float
        Median over the whole objects of their mean intensity as the network reads it
        (normalised to about 0-1, polarity corrected, mean over channels); 0 if none.
    """

    factor: float
    objects: int
    diameter: float
    confidence: float
    intensity: float = 0.0
    sizes: tuple[float, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class DiameterEstimate:
    """The estimated object diameter (input pixels; None when no probe found objects), and
    ``rival``: the diameter of a scale at least :data:`RIVAL_RATIO` times larger or smaller
    that scored within :data:`RIVAL_MARGIN` of it (None: no such scale) — the probes
    disagree, and the estimate may be far off."""

    diameter: float | None
    probes: tuple[ScaleProbe, ...]
    rival: float | None = None


def _window(plane, factor: float) -> np.ndarray:
    height, width = plane.shape[:2]
    side = int(np.ceil(PROBE_SIDE / factor))
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return np.asarray(plane[top:top + min(side, height), left:left + min(side, width)])


def probe(plane, reading, factor: float, scale) -> ScaleProbe:
    """Run the model on a centred window of ``plane`` rescaled by ``factor`` (see the module)."""
    window = _window(plane, factor)
    network_window = window if is_unit(factor) else RescaledPlane(window, factor)
    in_channels = reading.model.config.in_channels
    source = TileSource(network_window, reading.appearance, scale, in_channels)
    plan = reading.tile_plan(network_window.shape[:2])
    # probes stay single runs: the estimate's bias was calibrated that way, and it is 6 passes already
    probabilities = predict_plane(source, reading.runner(plan.batch_size, flips=False), plan,
                                  reading.model.config.out_channels)
    labels = probabilities_to_labels(probabilities, min_size=DEFAULT_MIN_SIZE)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    areas = np.bincount(labels.ravel())
    whole = np.setdiff1d(np.flatnonzero(areas), np.append(edge, 0))
    foreground = probabilities[0] < 0.5
    confidence = float(probabilities.max(axis=0)[foreground].mean()) if foreground.any() else 0.0
    sizes = tuple((2 * np.sqrt(areas[whole] / np.pi) / factor).tolist())
    diameter = float(np.median(sizes)) if sizes else float("nan")
    return ScaleProbe(factor=float(factor), objects=int(whole.size), diameter=diameter, confidence=confidence,
                      sizes=sizes,
                      intensity=_object_intensity(source, labels, whole))


def _object_intensity(source: TileSource, labels: np.ndarray, whole: np.ndarray) -> float:
    """Median over the ``whole`` objects of their mean network-input intensity (0 if none)."""
    if whole.size == 0:
        return 0.0
    from scipy import ndimage

    from .appearance import network_input

    plane = network_input(np.asarray(source.plane[:, :]), source.appearance, source.scale,
                          source.in_channels).mean(axis=0)
    return float(np.median(ndimage.mean(plane, labels, whole)))


def probe_scales(plane, reading, factors=PROBE_FACTORS) -> tuple[ScaleProbe, ...]:
    """One :class:`ScaleProbe` per factor, on ``plane`` (input grid) read as ``reading`` says."""
    from .appearance import intensity_range

    model = reading.model
    scale = intensity_range(plane, reading.appearance, model.normalization, model.config.in_channels)
    return tuple(probe(plane, reading, factor, scale) for factor in factors)


def _score(candidate: ScaleProbe, working_diameter: float) -> float:
    octaves = abs(np.log2(candidate.factor * candidate.diameter / working_diameter))
    return candidate.confidence - SIZE_PENALTY * octaves + INTENSITY_WEIGHT * candidate.intensity


def _ranked(probes, working_diameter: float, rule: str = "confidence") -> list[tuple[float, float]]:
    """(score, diameter) of every candidate size under ``rule``, best first."""
    if rule == "stable":
        return stable_candidates(probes)
    usable = [p for p in probes if p.objects >= MIN_OBJECTS and np.isfinite(p.diameter)]
    return sorted(((_score(p, working_diameter), p.diameter) for p in usable), key=lambda pair: -pair[0])


def stable_candidates(probes) -> list[tuple[float, float]]:
    """(score, diameter) of each pair of probes an octave apart, best first: the score is
    minus the octaves between the two probes' diameters, the diameter their geometric mean.
    Only pairs in which both probes found :data:`STABLE_MIN_OBJECTS` whole objects count
    when there are any (a pair of 3 objects agrees by chance), else pairs of
    :data:`MIN_OBJECTS`."""
    ordered = sorted((p for p in probes if p.objects >= MIN_OBJECTS and np.isfinite(p.diameter)),
                     key=lambda p: p.factor)
    pairs = [(a, b) for a, b in zip(ordered, ordered[1:]) if np.isclose(b.factor, 2 * a.factor)]
    populated = [(a, b) for a, b in pairs if min(a.objects, b.objects) >= STABLE_MIN_OBJECTS]
    ranked = [(-abs(float(np.log2(a.diameter / b.diameter))), float(np.sqrt(a.diameter * b.diameter)))
              for a, b in populated or pairs]
    return sorted(ranked, key=lambda pair: -pair[0])


def choose_diameter(probes, working_diameter: float, bias: float = 1.0, rule: str = "confidence") -> float | None:
    """The diameter of the best-scoring candidate under ``rule`` (divided by the model's
    ``bias``), None if no probe found enough objects.

    ``rule="confidence"`` (nuclei): a probe's score is its confidence minus ``SIZE_PENALTY``
    per octave between the size the network saw (``factor * diameter``) and its working
    diameter, plus ``INTENSITY_WEIGHT`` times its objects' intensity: a network shown
    objects of the size it was trained on is both sure of them and finds them at that size,
    while much larger objects come out as uncertain fragments and much smaller ones are
    missed or blurred together; and of two scales the network is about as sure of, the one
    whose objects are the stained ones (nuclei, not whole cells) wins.
    ``rule="stable"`` (whole cells): :func:`stable_candidates`.
    """
    ranked = _ranked(probes, working_diameter, rule)
    return ranked[0][1] / bias if ranked else None


def rival_diameter(probes, working_diameter: float, bias: float = 1.0, rule: str = "confidence") -> float | None:
    """The diameter of the best-scoring candidate :data:`RIVAL_RATIO` times or more apart
    from the chosen one that scores within :data:`RIVAL_MARGIN` of it (:data:`STABLE_MARGIN`
    octaves under ``rule="stable"``); None when there is none."""
    ranked = _ranked(probes, working_diameter, rule)
    if not ranked:
        return None
    margin = STABLE_MARGIN if rule == "stable" else RIVAL_MARGIN
    best_score, best = ranked[0]
    for score, candidate in ranked[1:]:
        ratio = candidate / best
        if best_score - score <= margin and max(ratio, 1 / ratio) >= RIVAL_RATIO:
            return candidate / bias
    return None


def estimate_from_probes(plane, reading, probes=None) -> DiameterEstimate:
    """:func:`choose_diameter` over the probes of ``plane`` (computed unless given)."""
    probes = probes if probes is not None else probe_scales(plane, reading)
    model = reading.model
    sizing = (model.diameter, model.diameter_bias, model.diameter_rule)
    return DiameterEstimate(diameter=choose_diameter(probes, *sizing), probes=tuple(probes),
                            rival=rival_diameter(probes, *sizing))


def pool_probes(probe_sets) -> tuple[ScaleProbe, ...]:
    """The probes of several planes as one per factor: their whole objects together (the
    median of all their diameters), the planes' mean confidence and the objects' mean
    intensity. A sparse stack (a few nuclei a plane) has too few objects in any one plane
    for a probe to count (:data:`MIN_OBJECTS`), or a median that a speck decides."""
    by_factor: dict[float, list[ScaleProbe]] = {}
    for probes in probe_sets:
        for one in probes:
            by_factor.setdefault(one.factor, []).append(one)
    pooled = []
    for factor, group in sorted(by_factor.items()):
        sizes = tuple(size for one in group for size in one.sizes)
        counted = [one for one in group if one.objects]
        intensity = (float(np.average([one.intensity for one in counted], weights=[one.objects for one in counted]))
                     if counted else 0.0)
        pooled.append(ScaleProbe(factor=factor, objects=len(sizes),
                                 diameter=float(np.median(sizes)) if sizes else float("nan"),
                                 confidence=float(np.mean([one.confidence for one in group])),
                                 intensity=intensity, sizes=sizes))
    return tuple(pooled)


def estimate_stack(image, reading, middle_probes=None) -> DiameterEstimate:
    """The object size of ``image``: :func:`estimate_from_probes` on its middle plane, or for
    a Z stack :func:`choose_diameter` over the probes of :data:`STACK_PLANES` planes spread
    over its middle 60 %, pooled (:func:`pool_probes`), times 4 / pi (``middle_probes``: the
    middle plane's, if already computed).

    One plane can be a bad sample of a stack: on a GoNuclear ovule stack the middle plane
    gave 5 px for 24 px nuclei while the other six planes measured said 15-20 px; on a mouse
    embryo stack (QCANet, 1-6 nuclei a plane) no plane had enough nuclei at the right scale
    for its own estimate, and the median of the planes' estimates came out at 8.6 px for
    ~20 px nuclei. A plane cuts most nuclei away from their equator, and the mean section of
    a ball cut at a random height is pi / 4 of its diameter: the factor gives the nuclei's
    own size. The planes' own estimates still say when the stack disagrees with itself: when
    they are :data:`RIVAL_RATIO` times apart, the one farthest from their median is the
    rival (else the pooled probes' rival)."""
    layout = reading.layout
    middle = layout.planes // 2
    if layout.stack_axis != "Z" or layout.planes < 3:
        return estimate_from_probes(reading.input_plane(image, middle), reading, middle_probes)
    spread = np.linspace(0.2 * (layout.planes - 1), 0.8 * (layout.planes - 1), STACK_PLANES)
    estimates = [estimate_from_probes(reading.input_plane(image, index), reading,
                                      middle_probes if index == middle else None)
                 for index in sorted(set(np.round(spread).astype(int).tolist()))]
    model = reading.model
    sizing = (model.diameter, model.diameter_bias, model.diameter_rule)
    pooled = pool_probes([e.probes for e in estimates])
    found = np.array([e.diameter for e in estimates if e.diameter is not None])
    median = float(np.median(found)) if found.size else None
    diameter = choose_diameter(pooled, *sizing) or median
    if diameter is None:
        return DiameterEstimate(diameter=None, probes=pooled)
    rival = rival_diameter(pooled, *sizing)
    if median is not None:
        farthest = float(found[np.argmax(np.abs(np.log(found / median)))])
        if max(farthest / median, median / farthest) >= RIVAL_RATIO:
            rival = farthest
    return DiameterEstimate(diameter=diameter * BALL_SECTION, probes=pooled,
                            rival=rival * BALL_SECTION if rival is not None else None)


def choose_channel(image, reading) -> tuple[int, tuple[ScaleProbe, ...]]:
    """The channel of a multi-channel image in which the model is most confident of what it
    finds (the nuclear stain, for a nuclei model), and that channel's probes."""
    import dataclasses

    from .appearance import detect_appearance

    middle = reading.layout.planes // 2
    best = None
    for channel in range(reading.layout.channels):
        plane = reading.layout.plane(image, middle, channel)
        appearance = detect_appearance(plane, colour=False)
        trial = dataclasses.replace(reading, channel=channel, appearance=appearance)
        factors = PROBE_FACTORS if reading.model.diameter is not None else (1.0,)
        probes = probe_scales(plane, trial, factors)
        counted = [p.confidence for p in probes if p.objects >= MIN_OBJECTS] or [0.0]
        if best is None or max(counted) > best[0]:
            best = (max(counted), channel, probes)
    return best[1], best[2]
