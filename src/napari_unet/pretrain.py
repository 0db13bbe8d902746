"""Reproduce the shipped ``nuclei`` model from the synthetic generator alone.

``napari-unet pretrain --out nuclei.safetensors`` trains a U-Net from scratch on images of
:mod:`napari_unet.synth` (default nuclei style) with the same loop as fine-tuning, and
records the recipe, data seed and held-out scores in the model file's history.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import TrainConfig
from .models import SegmentationModel, create_model, save_model
from .synth import SynthConfig, synth_dataset
from .train import TrainFinished, iter_finetune


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that determines the shipped weights (with the package version)."""

    name: str = "nuclei"
    depth: int = 3
    base_channels: int = 16
    training_images: int = 400
    validation_images: int = 16
    image_size: int = 256
    data_seed: int = 0
    train: TrainConfig = TrainConfig(iterations=3000, learning_rate=2e-3, batch_size=8, patch_size=128,
                                     freeze_batchnorm=False, validate_every=500)


def pretrain(out, *, recipe: PretrainRecipe = PretrainRecipe(),
             callback: Callable[[object], None] | None = None) -> SegmentationModel:
    """Train the recipe's model from scratch and save it to ``out`` (atomically).

    ``recipe.train.device``, ``precision`` and ``workers`` change speed, not the recipe.
    """
    synth = SynthConfig(shape=(recipe.image_size, recipe.image_size))
    data = synth_dataset(recipe.training_images + recipe.validation_images, seed=recipe.data_seed, config=synth)
    training, held_out = data[:recipe.training_images], data[recipe.training_images:]
    model = create_model("unet", name=recipe.name, depth=recipe.depth, base_channels=recipe.base_channels)
    started = time.perf_counter()
    finished = None
    for event in iter_finetune(model, [image for image, _ in training], [labels for _, labels in training],
                               validation=held_out, config=recipe.train):
        if callback is not None:
            callback(event)
        if isinstance(event, TrainFinished):
            finished = event
    if finished.reason != "completed":
        raise RuntimeError(f"pretraining did not complete: {finished.message}")
    trained = finished.model
    trained.name = recipe.name
    entry = trained.history[-1]
    entry.update(
        kind="pretrain",
        data={"generator": "napari_unet.synth", "config": dataclasses.asdict(synth), "seed": recipe.data_seed,
              "training_images": recipe.training_images, "validation_images": recipe.validation_images},
        seconds=round(time.perf_counter() - started, 1),
        command=f"napari-unet pretrain --out {recipe.name}.safetensors --precision {recipe.train.precision}",
    )
    save_model(trained, out)
    return trained
