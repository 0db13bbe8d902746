"""Fine-tuning only part of the network (TrainConfig.trainable): the frozen weights stay as
they were, the chosen ones learn, and the returned model is free to train again."""

import pytest
import torch

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.synth import SynthConfig, synth_dataset
from napari_unet.training.loop import finetune
from napari_unet.training.loss import NORMALISATIONS

pytestmark = pytest.mark.filterwarnings("ignore:after 3 steps:RuntimeWarning")

CONFIG = TrainConfig(iterations=3, batch_size=2, patch_size=32, device="cpu", holdout=0.0, learning_rate=1e-2)


@pytest.fixture(scope="module")
def sample():
    return synth_dataset(1, seed=5, config=SynthConfig(shape=(64, 64)))[0]


def _changed(before: torch.nn.Module, after: torch.nn.Module) -> dict[str, bool]:
    start = dict(before.named_parameters())
    return {name: not torch.equal(start[name], p) for name, p in after.named_parameters()}


def _normalisation_names(network) -> set[str]:
    return {f"{module_name}.{name}" for module_name, module in network.named_modules()
            if isinstance(module, NORMALISATIONS) for name, _ in module.named_parameters(recurse=False)}


@pytest.mark.parametrize("arch", ["unet", "unetplusplus"])
def test_decoder_only_leaves_the_encoder_as_it_was(sample, arch):
    model = nu.create_model(arch, depth=2, base_channels=8)
    tuned = finetune(model, *sample, config=CONFIG.replace(trainable="decoder"))
    changed = _changed(model.network, tuned.network)
    encoder = {name for name in changed if name.startswith("encoder.")}
    assert encoder and not any(changed[name] for name in encoder)
    assert any(changed[name] for name in changed if name not in encoder)
    # nothing stays frozen on the model handed back
    assert all(p.requires_grad for p in tuned.network.parameters())


def test_normalisation_only_changes_scales_shifts_and_the_output_layer(sample, tiny_model):
    tuned = finetune(tiny_model, *sample, config=CONFIG.replace(trainable="normalisation"))
    changed = _changed(tiny_model.network, tuned.network)
    allowed = _normalisation_names(tiny_model.network) | {name for name in changed if name.startswith("head.")}
    assert not any(changed[name] for name in changed if name not in allowed)
    assert any(changed[name] for name in _normalisation_names(tiny_model.network))
    assert all(p.requires_grad for p in tuned.network.parameters())


def test_all_weights_learn_by_default(sample, tiny_model):
    tuned = finetune(tiny_model, *sample, config=CONFIG)
    changed = _changed(tiny_model.network, tuned.network)
    assert any(changed[name] for name in changed if name.startswith("encoder."))


def test_normalisation_without_normalisation_layers_is_refused(sample):
    model = nu.create_model("unet", depth=2, base_channels=8, batch_norm=False)
    with pytest.raises(ValueError, match="trainable='normalisation'.*no normalisation layers"):
        finetune(model, *sample, config=CONFIG.replace(trainable="normalisation"))


def test_an_unknown_part_is_refused_by_name():
    with pytest.raises(ValueError, match="trainable must be one of 'all', 'decoder', 'normalisation'"):
        TrainConfig(trainable="encoder")
