"""Training UNet++ with deep supervision: heads of different sizes all get targets."""

import numpy as np
import pytest
import torch

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.synth import SynthConfig, synth_dataset
from napari_unet.events import TrainStep
from napari_unet.training.annotations import prepare_annotations
from napari_unet.training.loop import iter_finetune
from napari_unet.training.patches import PatchSampler


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_targets_cover_every_deep_supervision_head(padding):
    model = nu.create_model("unetplusplus", depth=2, base_channels=8, deep_supervision=True, padding=padding)
    (image, labels), = synth_dataset(1, seed=0, config=SynthConfig(shape=(64, 64)))
    config = TrainConfig(patch_size=32, augment=False)
    sampler = PatchSampler(model.network, prepare_annotations(model, image, labels, config=config), config)
    inputs, classes, _ = sampler.sample(np.random.default_rng(0))
    heads = model.network.forward_heads(torch.from_numpy(inputs)[None])
    assert len(heads) == 2
    assert max(head.shape[-1] for head in heads) == classes.shape[-1]


def test_unetplusplus_with_deep_supervision_fine_tunes():
    model = nu.create_model("unetplusplus", depth=2, base_channels=8, deep_supervision=True)
    (image, labels), = synth_dataset(1, seed=0, config=SynthConfig(shape=(64, 64)))
    config = TrainConfig(iterations=3, batch_size=2, patch_size=32, device="cpu")
    losses = [event.loss for event in iter_finetune(model, image, labels, config=config)
              if isinstance(event, TrainStep)]
    assert len(losses) == 3 and all(np.isfinite(losses))
