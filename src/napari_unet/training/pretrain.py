"""Reproduce the shipped models: real annotated images from several sources plus synthetic ones.

``napari-unet pretrain --data DIR [--data DIR ...] --out nuclei.safetensors`` trains a
U-Net on annotated folders (DSB2018 in the layout of ``shared/data/dsb2018``, and the
folders ``benchmarks/data/build_*.py`` write) and on images of :mod:`napari_unet.synth`
randomised over modality (fluorescence, brightfield, stained, colour fluorescence), stain
colours, blur, noise, background and object size (5-100 px). Every image goes through the
same input path as prediction (:mod:`napari_unet.inference.appearance`, then rescaling so
its objects have the model's ``diameter``); a zoom augmentation spreads the sizes around
it. Only the images the recipe's ``target`` outlines ("nuclei" or "cells") are read, and
of them only the ``train`` split (or images with no split): a ``val`` or ``test`` split
is never read, nor a source or group the recipe ``excludes`` (kept whole for a
leave-source-out evaluation). A tenth of each source is held out to choose the kept
weights: whole groups (experiments, organs, patients) where the source has them, else
images of each modality. The recipe, data and scores are recorded in the model file's
history.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import check_non_negative_number
from ..config import TrainConfig
from ..datasets import AnnotatedImage, median_diameter, read_annotated
from ..events import TrainFinished, Validation
from ..inference.appearance import detect_appearance, model_channels
from ..inference.rescale import is_unit, resample, resample_nearest
from ..models import SegmentationModel, create_model, load_model, save_model
from ..synth import SynthConfig, synth_image
from .augment import AugmentConfig
from .calibrate import calibrate_diameter, calibrate_labelling
from .loop import iter_finetune

# share of the patches drawn from each group of training images (the recipe's default)
GROUP_SHARES = {"fluorescence": 0.40, "stained": 0.20, "brightfield": 0.10, "synthetic": 0.30}
# splits of a source that training never reads (DSB2018's val, a source's own test images)
UNREAD_SPLITS = ("val", "test")
SYNTHETIC_MODALITIES = ("fluorescence", "brightfield", "stained", "fluorescence-colour")
# the whole-cell recipe's shares: phase contrast (the only real whole-cell source it reads) and synthetic cells
CELL_SHARES = {"phase": 0.45, "fluorescence": 0.15, "brightfield": 0.10, "synthetic": 0.30}
# synthetic whole cells: napari_unet.synth styles, rendered as fluorescence (cytoplasm, membrane) or phase
CELL_STYLES = ("cytoplasm", "membrane", "phase")


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that determines the shipped weights (with the package version and data)."""

    name: str = "nuclei"
    # what the masks read must outline: "nuclei" or "cells"
    target: str = "nuclei"
    # sources ("SOURCE") or groups ("SOURCE/GROUP") never read: kept for evaluation
    excluded: tuple[str, ...] = ()
    # synth styles of the synthetic images (whole cells); () renders nuclei in SYNTHETIC_MODALITIES
    synthetic_styles: tuple[str, ...] = ()
    depth: int = 4
    base_channels: int = 16
    in_channels: int = 3
    diameter: float = 20.0
    # how the diameter estimate reads the model's probes (inference.diameter.DIAMETER_RULES)
    diameter_rule: str = "confidence"
    holdout_fraction: float = 0.1
    synthetic_images: int = 300
    synthetic_diameter: tuple[float, float] = (5.0, 100.0)
    data_seed: int = 0
    # (group, share of the patches) for fluorescence, stained, brightfield and synthetic images
    group_shares: tuple[tuple[str, float], ...] = tuple(GROUP_SHARES.items())
    augmentation: AugmentConfig = AugmentConfig(zoom=(0.67, 1.5), channel_gain=(0.85, 1.15), blur=(0.0, 1.0),
                                                noise_std=(0.0, 0.08), image_order=1)
    train: TrainConfig = TrainConfig(iterations=16000, learning_rate=2e-3, batch_size=4, patch_size=192,
                                     freeze_batchnorm=False, validate_every=1000, precision="bf16", anchor=0.0)


@dataclass(frozen=True)
class TrainingImage:
    """An image brought to the model's input convention and scale, with its labels."""

    id: str
    group: str
    image: np.ndarray  # (Y, X, C) float32, objects of the model's diameter
    labels: np.ndarray  # (Y, X)


def to_model_scale(image: np.ndarray, labels: np.ndarray, diameter: float, target: float,
                   in_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The prediction input path for a training image: appearance, then rescaling.

    Returns a channels-last float32 image (its own polarity convention applied) whose
    objects have ``target`` px diameter, and the labels on the same grid.
    """
    colour = image.ndim == 3
    appearance = detect_appearance(image, colour=colour)
    pixels = np.moveaxis(model_channels(image, appearance, in_channels), 0, -1)
    factor = target / diameter
    if is_unit(factor):
        return pixels, np.asarray(labels)
    scaled = resample(pixels, factor)
    return scaled, resample_nearest(labels, factor, scaled.shape[:2])


def _split_holdout(samples: list[AnnotatedImage], fraction: float, seed: int):
    """Per source: a ``fraction`` of its groups held out whole where it has two or more
    groups, else (per modality) a ``fraction`` of its images; at least one where there are two."""
    rng = np.random.default_rng(seed)
    fit, held_out = [], []

    def hold_out(members: list) -> set:
        count = max(1, int(round(fraction * len(members)))) if len(members) > 1 else 0
        return set(rng.choice(len(members), count, replace=False).tolist()) if count else set()

    for source in sorted({s.source for s in samples}):
        of_source = [s for s in samples if s.source == source]
        groups = sorted({s.group for s in of_source})
        if len(groups) > 1:
            chosen = {groups[i] for i in hold_out(groups)}
            for sample in of_source:
                (held_out if sample.group in chosen else fit).append(sample)
            continue
        for modality in sorted({s.modality for s in of_source}):
            group = [s for s in of_source if s.modality == modality]
            chosen = hold_out(group)
            for index, sample in enumerate(group):
                (held_out if index in chosen else fit).append(sample)
    return fit, held_out


# the shipped models' recipes: ``napari-unet pretrain --recipe NAME``
RECIPES = {
    "nuclei": PretrainRecipe(),
    "cells": PretrainRecipe(name="cells", target="cells", diameter=30.0, diameter_rule="stable", synthetic_styles=CELL_STYLES,
                            synthetic_diameter=(15.0, 150.0), group_shares=tuple(CELL_SHARES.items())),
}


def is_excluded(row: dict, excluded) -> bool:
    """Whether an ``index.csv`` row (with its ``source``) is one of the ``excluded``
    sources ("SOURCE") or groups ("SOURCE/GROUP")."""
    source, group = row.get("source", ""), row.get("group") or ""
    return source in excluded or f"{source}/{group}" in excluded


def read_training_sources(recipe: "PretrainRecipe", data) -> list[AnnotatedImage]:
    """The annotated images of the folder(s) ``data`` that the recipe trains on."""
    folders = [data] if isinstance(data, (str, Path)) else list(data)
    if not folders:
        raise ValueError("data: give at least one annotated folder")
    real = []
    for folder in folders:
        real += read_annotated(folder, target=recipe.target,
                               keep=lambda row: row.get("split", "") not in UNREAD_SPLITS
                               and not is_excluded(row, recipe.excluded))
    if not real:
        raise ValueError(f"--data {', '.join(map(str, folders))}: no {recipe.target} images outside the "
                         f"{'/'.join(UNREAD_SPLITS)} splits and the excluded sources")
    return real


def synthetic_training_images(recipe: PretrainRecipe) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """Domain-randomised synthetic images: (modality, image, labels, object diameter)."""
    images = []
    low, high = np.log(recipe.synthetic_diameter)
    kinds = recipe.synthetic_styles or SYNTHETIC_MODALITIES
    for index, rng in enumerate(np.random.default_rng([recipe.data_seed, 1]).spawn(recipe.synthetic_images)):
        kind = kinds[index % len(kinds)]
        diameter = float(np.exp(rng.uniform(low, high)))
        # about 256 px once the objects are brought to the model's diameter
        side = int(np.clip(round(256 * diameter / recipe.diameter), 128, 1024))
        radius = diameter / 2
        sizes = dict(shape=(side, side), radius=(0.85 * radius, 1.15 * radius), blur=(0.3, 0.1 * diameter + 0.5))
        if recipe.synthetic_styles:
            config = SynthConfig.for_style(kind, **sizes)
        else:
            config = SynthConfig(modality=kind, coverage=(0.1, 0.5), **sizes)
        image, labels = synth_image(rng, config)
        images.append((kind, image, labels, median_diameter(labels)))
    return images


@dataclass(frozen=True)
class TrainingData:
    """Images to fit and to choose the kept weights on (both at the model's scale), the
    held-out images as they are (to calibrate the diameter estimate), and what they are."""

    fit: list[TrainingImage]
    held_out: list[TrainingImage]
    held_out_raw: list[AnnotatedImage]
    description: dict


def training_images(recipe: PretrainRecipe, data) -> TrainingData:
    """The recipe's training data from the annotated folder ``data`` and the generator."""
    real = read_training_sources(recipe, data)
    fit, held_out = _split_holdout(real, recipe.holdout_fraction, recipe.data_seed)

    def convert(sample: AnnotatedImage, group: str) -> TrainingImage:
        image, labels = to_model_scale(sample.image, sample.labels, sample.diameter, recipe.diameter,
                                       recipe.in_channels)
        return TrainingImage(sample.id, group, image, labels)

    fit_images = [convert(s, s.modality) for s in fit]
    for index, (modality, image, labels, diameter) in enumerate(synthetic_training_images(recipe)):
        scaled, scaled_labels = to_model_scale(image, labels, diameter, recipe.diameter, recipe.in_channels)
        fit_images.append(TrainingImage(f"synthetic-{index}-{modality}", "synthetic", scaled, scaled_labels))
    folders = [data] if isinstance(data, (str, Path)) else list(data)
    description = {
        "real": [str(Path(folder).resolve().name) for folder in folders], "split": "train",
        "target": recipe.target, "excluded": list(recipe.excluded),
        "sources": {source: sum(s.source == source for s in real) for source in sorted({s.source for s in real})},
        "fit_ids": [image_key(s) for s in fit], "held_out_ids": [image_key(s) for s in held_out],
        "synthetic": {"generator": "napari_unet.synth", "images": recipe.synthetic_images,
                      "modalities": list(recipe.synthetic_styles or SYNTHETIC_MODALITIES),
                      "diameter": list(recipe.synthetic_diameter),
                      "seed": recipe.data_seed},
    }
    return TrainingData(fit_images, [convert(s, s.modality) for s in held_out], held_out, description)


def image_key(sample: AnnotatedImage) -> str:
    """``SOURCE/ID``: unique over several folders."""
    return f"{sample.source}/{sample.id}"


def parse_shares(text: str, defaults=tuple(GROUP_SHARES.items())) -> tuple[tuple[str, float], ...]:
    """``"stained=0.35,synthetic=0.2"`` -> the recipe's group shares (``defaults``) with those
    replaced (the groups left out keep their default share)."""
    shares = dict(defaults)
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, _, value = item.partition("=")
        group = group.strip()
        if group not in shares:
            raise ValueError(f"shares: unknown group {group!r} in {text!r} (groups: {', '.join(dict(defaults))})")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"shares: {item!r} is not GROUP=NUMBER") from None
        check_non_negative_number(f"shares: the share of {group}", share)
        shares[group] = share
    if sum(shares.values()) <= 0:
        raise ValueError(f"shares: {text!r} leaves every group at 0")
    return tuple(shares.items())


def sampling_weights(images: list[TrainingImage], shares=tuple(GROUP_SHARES.items())) -> np.ndarray:
    """Per image: its group's share (``shares``, pairs of group and share) split in
    proportion to its area."""
    shares = dict(shares)
    weights = np.zeros(len(images))
    groups = {image.group for image in images}
    for group in groups:
        members = [i for i, image in enumerate(images) if image.group == group]
        areas = np.array([images[i].labels.size for i in members], dtype=float)
        weights[members] = shares.get(group, 0.1) * areas / areas.sum()
    return weights / weights.sum()


def initial_model(recipe: PretrainRecipe, init=None) -> SegmentationModel:
    """The recipe's network with random weights, or the weights of the model file ``init``
    (a checkpoint of an interrupted run, to go on training); its architecture must be the
    recipe's."""
    if init is None:
        model = create_model("unet", name=recipe.name, depth=recipe.depth, base_channels=recipe.base_channels,
                             in_channels=recipe.in_channels)
    else:
        model = load_model(init, device="cpu")
        wanted = {"arch": "unet", "depth": recipe.depth, "base_channels": recipe.base_channels,
                  "in_channels": recipe.in_channels}
        found = {key: getattr(model.config, key) for key in wanted}
        if found != wanted:
            raise ValueError(f"init {init}: its network ({found}) is not the recipe's ({wanted})")
    model.diameter, model.diameter_rule = recipe.diameter, recipe.diameter_rule
    return model


def iter_pretrain(out, data, *, recipe: PretrainRecipe = PretrainRecipe(), init=None) -> Iterator[object]:
    """Train the recipe's model, yielding the training events, and save it to ``out``.

    From random weights, or from the weights of the model file ``init`` (for example the
    best checkpoint of an interrupted run) with a new learning-rate schedule of
    ``recipe.train.iterations`` steps; the history then keeps both runs.

    The best weights on the held-out images are saved (atomically) at every validation that
    improves them, so an interrupted run leaves a usable model. At the end the diameter
    estimate and the labelling settings are calibrated on the held-out images
    (:func:`calibrate_diameter`, :func:`calibrate_labelling`) and the final
    ``TrainFinished`` carries the model as saved. ``recipe.train.device``,
    ``precision`` and ``workers`` change speed, not the recipe.
    """
    if init is not None and Path(out).resolve() == Path(init).resolve():
        raise ValueError(f"out {out}: the same file as init (its first checkpoint would overwrite the start)")
    started = time.perf_counter()
    data = training_images(recipe, data)
    fit, held_out, description = data.fit, data.held_out, data.description
    model = initial_model(recipe, init)
    if init is not None:
        description = dict(description, init=f"{Path(init).name}: {model.history[-1].get('outcome', '?')}"
                           if model.history else str(init))
    best = -1.0
    # the images are at the model's diameter already: the loop must not measure and rescale them
    config = dataclasses.replace(recipe.train, diameter=recipe.diameter)
    events = iter_finetune(model, [t.image for t in fit], [t.labels for t in fit],
                           validation=[(t.image, t.labels) for t in held_out], config=config,
                           augmentation=recipe.augmentation, sampling=sampling_weights(fit, recipe.group_shares))
    for event in events:
        if isinstance(event, Validation) and event.metrics["ap50"] > best:
            best = event.metrics["ap50"]
            _save(event.model, out, recipe, description, started, partial=event.step, init=init)
        if isinstance(event, TrainFinished) and event.reason == "completed":
            event.model.diameter_bias = calibrate_diameter(event.model, data.held_out_raw)
            event.model.labelling = calibrate_labelling(event.model, data.held_out_raw)
            event = dataclasses.replace(event, model=_save(event.model, out, recipe, description, started,
                                                           partial=None, init=init))
        yield event


def pretrain(out, data, *, recipe: PretrainRecipe = PretrainRecipe(), init=None,
             callback: Callable[[object], None] | None = None) -> SegmentationModel:
    """Blocking :func:`iter_pretrain`: returns the saved model (``callback`` sees every event)."""
    finished = None
    for event in iter_pretrain(out, data, recipe=recipe, init=init):
        if callback is not None:
            callback(event)
        if isinstance(event, TrainFinished):
            finished = event
    if finished.reason != "completed":
        raise RuntimeError(f"pretraining did not complete: {finished.message}")
    return finished.model


def _save(model: SegmentationModel, out, recipe: PretrainRecipe, description: dict, started: float,
          partial: int | None, init=None) -> SegmentationModel:
    import copy

    kept = copy.deepcopy(model) if partial is not None else model
    kept.name = recipe.name
    if partial is not None:
        kept.history.append({"kind": "pretrain", "outcome": f"checkpoint at step {partial}"})
    entry = kept.history[-1]
    entry.update(
        kind="pretrain",
        data=description,
        recipe={"target": recipe.target, "excluded": list(recipe.excluded), "depth": recipe.depth,
                "base_channels": recipe.base_channels, "in_channels": recipe.in_channels,
                "diameter": recipe.diameter, "holdout_fraction": recipe.holdout_fraction,
                "group_shares": dict(recipe.group_shares)},
        seconds=round(time.perf_counter() - started, 1),
        command=_command(recipe, init),
    )
    save_model(kept, out)
    return kept


def _command(recipe: PretrainRecipe, init=None) -> str:
    """The ``napari-unet pretrain`` command line that repeats ``recipe`` (from ``init``)."""
    base = RECIPES.get(recipe.name, PretrainRecipe())
    train, default = recipe.train, base.train
    schedule = ("" if train.minutes is None else f"--minutes {train.minutes:g} ") + f"--iterations {train.iterations}"
    return (f"napari-unet pretrain --data DIR --out {recipe.name}.safetensors {schedule} "
            + ("" if recipe.name == "nuclei" else f"--recipe {recipe.name} ")
            + "".join(f"--exclude {item} " for item in recipe.excluded)
            + f"--learning-rate {train.learning_rate:g} --seed {train.seed} --precision {train.precision}"
            + (f" --batch-size {train.batch_size}" if train.batch_size != default.batch_size else "")
            + (f" --patch-size {train.patch_size}" if train.patch_size != default.patch_size else "")
            + ("" if recipe.group_shares == base.group_shares else
               " --shares " + ",".join(f"{g}={v:g}" for g, v in recipe.group_shares))
            + (f" --init {Path(init).name}" if init is not None else ""))
