"""Shared fixtures: tiny CPU models (depth 2, 8 channels) keep the suite fast."""

import numpy as np
import pytest
import torch

import napari_unet as nu


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)


@pytest.fixture
def tiny_model():
    model = nu.create_model("unet", depth=2, base_channels=8)
    model.network.eval()
    return model


@pytest.fixture
def tiny_model_file(tiny_model, tmp_path):
    return nu.save_model(tiny_model, tmp_path / "tiny.safetensors")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
