import pytest
import torch

import napari_unet as nu
from napari_unet.config import ModelConfig
from napari_unet.models.blocks import nested_output_sizes

ARCHS = [
    dict(arch="unet"),
    dict(arch="unet", padding="same"),
    dict(arch="unet", upsampling="bilinear"),
    dict(arch="unet", batch_norm=False, dropout=0.2),
    dict(arch="unetplusplus"),
    dict(arch="unetplusplus", deep_supervision=True),
    dict(arch="unetplusplus", deep_supervision=True, padding="same", upsampling="bilinear"),
]


@pytest.mark.parametrize("options", ARCHS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
class TestEveryArchitecture:
    def test_forward_matches_declared_output_size(self, options):
        model = nu.create_model(depth=2, base_channels=8, **options)
        model.network.eval()
        size = 60
        expected = model.network.output_size(size)
        assert expected is not None
        out = model.network(torch.zeros(2, 1, size, size))
        assert out.shape == (2, 3, expected, expected)

    def test_invalid_sizes_are_reported(self, options):
        model = nu.create_model(depth=2, base_channels=8, **options)
        assert model.network.output_size(61) is None  # a 2x2 pooling would see an odd size

    def test_training_step_changes_weights(self, options):
        model = nu.create_model(depth=2, base_channels=8, **options)
        before = [p.detach().clone() for p in model.network.parameters()]
        optimiser = torch.optim.SGD(model.network.parameters(), lr=0.1)
        heads = model.network.forward_heads(torch.randn(2, 1, 60, 60))
        sum(h.mean() for h in heads).backward()
        optimiser.step()
        assert any(not torch.equal(a, b) for a, b in zip(before, model.network.parameters()))


def _parameters(**config):
    return nu.create_model(**config).parameter_count()


def test_unet_has_the_paper_family_parameter_count():
    assert round(_parameters(arch="unet", depth=4, base_channels=32) / 1e6, 2) == 7.76


def test_unetplusplus_has_the_paper_parameter_count():
    count = _parameters(arch="unetplusplus", depth=4, base_channels=32, deep_supervision=True, batch_norm=False)
    assert round(count / 1e6, 2) == 9.04


def test_paper_geometry_572_to_388():
    model = nu.create_model("unet", depth=4, base_channels=4)
    assert model.network.output_size(572) == 388
    assert model.network.output_size(573) is None


def test_he_initialisation_std():
    model = nu.create_model("unet", depth=2, base_channels=64, batch_norm=False)
    conv = model.network.encoder.blocks[1][0]  # 64 -> 128 channels, fan-in 9 * 64 = 576
    assert conv.weight.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0


def test_unetplusplus_pruned_level_runs_only_its_subnetwork():
    model = nu.create_model("unetplusplus", depth=3, base_channels=8, deep_supervision=True)
    model.network.eval()
    called = []
    for name, module in model.network.named_modules():
        parts = name.split(".")
        if parts[0] in ("nodes", "up") and len(parts) == 2 or parts[:2] == ["encoder", "blocks"] and len(parts) == 3:
            module.register_forward_hook(lambda m, i, o, name=name: called.append(name))
    model.network(torch.zeros(1, 1, 92, 92), level=1)
    assert sorted(called) == ["encoder.blocks.0", "encoder.blocks.1", "nodes.x0_1", "up.x0_1"]


def test_unetplusplus_levels_and_accurate_mode():
    model = nu.create_model("unetplusplus", depth=3, base_channels=8, deep_supervision=True)
    model.network.eval()
    x = torch.randn(1, 1, 92, 92)
    heads = model.network.forward_heads(x)
    assert len(heads) == 3
    accurate = torch.softmax(model.network(x), 1)
    size = heads[-1].shape[-1]
    crop = [(h.shape[-1] - size) // 2 for h in heads]
    mean = sum(torch.softmax(h, 1)[..., c:c + size, c:c + size] for h, c in zip(heads, crop)) / 3
    assert torch.allclose(accurate, mean, atol=1e-5)
    for level in (1, 2, 3):
        assert model.network(x, level=level).shape[-1] == model.network.output_size(92, level)


@pytest.mark.parametrize("arch, level", [("unet", 1), ("unetplusplus", 2), ("unetplusplus", True)])
def test_bad_prune_level_is_refused(arch, level):
    model = nu.create_model(arch, depth=3, base_channels=8)
    with pytest.raises(ValueError, match="prune_level"):
        model.network(torch.zeros(1, 1, 92, 92), level=level)


@pytest.mark.parametrize("field, value, message", [
    ("arch", "", "arch"),
    ("depth", 0, "depth"),
    ("base_channels", 2.5, "base_channels"),
    ("padding", "reflect", "padding"),
    ("upsampling", "nearest", "upsampling"),
    ("dropout", 1.0, "dropout"),
    ("out_channels", 1, "out_channels"),
])
def test_bad_model_config_is_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("options, message", [
    ({"arch": "resnet"}, "arch must be one of 'unet', 'unetplusplus', got 'resnet'"),
    ({"arch": "unet", "deep_supervision": True}, "deep_supervision=True needs arch='unetplusplus'"),
])
def test_the_registry_refuses_what_no_architecture_builds(options, message):
    from napari_unet.models.registry import build_network

    with pytest.raises(ValueError, match=message):
        nu.create_model(**options)
    with pytest.raises(ValueError, match=message):
        build_network(ModelConfig(**options))


def test_every_registered_architecture_is_built_and_cited():
    from napari_unet.models.registry import ARCHITECTURES

    for name, entry in ARCHITECTURES.items():
        model = nu.create_model(name, depth=2, base_channels=8)
        assert isinstance(model.network, entry.network) and entry.title and entry.citation["doi"]


def test_nested_sizes_describe_unet_decoder():
    sizes = nested_output_sizes(572, 4, "valid")
    assert sizes[(4, 0)] == 28 and sizes[(0, 4)] == 388
