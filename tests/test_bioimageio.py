"""bioimage.io packages: export validates offline with bioimage.io's own tools, and loads back safely."""

import ast
import os
import re
import socket
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
import yaml

import napari_unet as nu
from napari_unet.cli import main
from napari_unet.models import ModelFileError
from napari_unet.interop.bioimageio import export_bioimageio, package_geometry, preprocess
from napari_unet.models.io import model_to_bytes
from napari_unet.models.standalone import ARCHITECTURE_CALLABLE, ProbabilityNetwork, architecture_source


@pytest.fixture
def offline(monkeypatch):
    """Every attempt to reach the network fails (and is counted): validation must not fetch anything."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("the network is off in this test")

    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def _rdf(path):
    with zipfile.ZipFile(path) as archive:
        return yaml.safe_load(archive.read("rdf.yaml"))


@pytest.mark.parametrize("options", [
    dict(arch="unet", depth=2, base_channels=8),
    dict(arch="unetplusplus", depth=2, base_channels=8, deep_supervision=True, padding="same", in_channels=3),
], ids=["unet-valid", "unetplusplus-same-rgb"])
def test_an_exported_package_passes_bioimageio_tests_offline(options, tmp_path, offline):
    pytest.importorskip("bioimageio.core")
    from bioimageio.core import test_model
    from bioimageio.spec import InvalidDescr, load_description

    model = nu.create_model(**options, name="tiny cells")
    path = export_bioimageio(model, tmp_path / "tiny.zip", authors=["A. Person"])
    description = load_description(path, perform_io_checks=True)
    assert not isinstance(description, InvalidDescr), description.validation_summary.format()
    summary = test_model(path)  # runs both weight formats on the test tensors and other sizes
    assert summary.status == "passed", summary.format()
    assert {"pytorch_state_dict", "torchscript"} <= set(_rdf(path)["weights"])
    assert offline == []


def test_the_description_states_halo_processing_and_citations(tiny_model, tmp_path):
    path = export_bioimageio(tiny_model, tmp_path / "tiny.zip", authors=["A. Person"], license="CC-BY-4.0")
    rdf = _rdf(path)
    geometry = package_geometry(tiny_model.network)
    raw, probabilities = rdf["inputs"][0], rdf["outputs"][0]
    assert [axis["type"] for axis in raw["axes"]] == ["batch", "channel", "space", "space"]
    assert raw["axes"][2]["size"] == {"min": geometry.minimum, "step": geometry.step}
    # the unpadded network needs 20 px of context on each side: mirrored inside, the halo when tiling
    assert geometry.halo == 20 and probabilities["axes"][3]["halo"] == 20
    assert probabilities["axes"][3]["size"] == {"tensor_id": "raw", "axis_id": "x"}
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]["context"] == 20
    for size in (geometry.minimum, geometry.minimum + geometry.step):
        assert tiny_model.network.output_size(size + 40) == size
    assert [step["id"] for step in raw["preprocessing"]] == ["ensure_dtype", "scale_range", "clip"]
    assert raw["preprocessing"][1]["kwargs"]["max_percentile"] == tiny_model.normalization.high
    assert probabilities["axes"][1]["channel_names"] == ["background", "interior", "boundary"]
    assert [entry["doi"] for entry in rdf["cite"]] == ["10.1007/978-3-319-24574-4_28"]
    assert rdf["license"] == "CC-BY-4.0" and rdf["authors"] == [{"name": "A. Person"}]
    with zipfile.ZipFile(path) as archive:
        card = archive.read("README.md").decode()
    assert "Not expressible" in card and "watershed" in card and "overlap tiles by 40 px" in card


@pytest.mark.parametrize("in_channels, channel_names, expected", [
    (1, None, ["grey"]),
    (3, None, ["red", "green", "blue"]),
    (3, ("membrane", "nucleus"), ["membrane", "nucleus", "unused 2 (zeros)"]),
])
def test_input_channels_are_named(in_channels, channel_names, expected, tmp_path):
    pytest.importorskip("bioimageio.spec")
    from bioimageio.spec import InvalidDescr, load_description

    model = nu.create_model("unet", depth=2, base_channels=8, in_channels=in_channels)
    model.channel_names = channel_names
    path = export_bioimageio(model, tmp_path / "cells.zip")
    assert _rdf(path)["inputs"][0]["axes"][1]["channel_names"] == expected
    with zipfile.ZipFile(path) as archive:
        assert np.load(archive.open("test_input.npy")).shape[1] == in_channels
        assert ", ".join(expected) in archive.read("README.md").decode() or in_channels == 1
    assert not isinstance(load_description(path, perform_io_checks=True), InvalidDescr)


def test_unetplusplus_packages_cite_unetplusplus(tmp_path):
    model = nu.create_model("unetplusplus", depth=2, base_channels=8)
    assert len(_rdf(export_bioimageio(model, tmp_path / "pp.zip"))["cite"]) == 2


def test_the_test_output_is_what_napari_unet_predicts(tiny_model, tmp_path):
    path = export_bioimageio(tiny_model, tmp_path / "tiny.zip")
    with zipfile.ZipFile(path) as archive:
        raw = np.load(archive.open("test_input.npy"))
        output = np.load(archive.open("test_output.npy"))
    # the package normalises the whole input once and mirrors its borders, as napari-unet does
    expected = nu.predict_probabilities(raw[0, 0], tiny_model, device="cpu", precision="fp32", invert=False)
    assert output.shape == (1,) + expected.shape and expected.shape[1] >= 64
    np.testing.assert_allclose(output[0], expected, atol=1e-4)


def test_bioimageio_tools_tile_it_seamlessly(tiny_model, tmp_path):
    pytest.importorskip("bioimageio.core")
    from bioimageio.core import predict

    path = export_bioimageio(tiny_model, tmp_path / "tiny.zip")
    geometry = package_geometry(tiny_model.network)
    size = geometry.minimum + 12 * geometry.step
    image = preprocess(np.random.default_rng(3).random((1, 1, size, size)).astype(np.float32), tiny_model)
    whole = np.asarray(predict(model=path, inputs=image, skip_preprocessing=True).members["probabilities"].data)
    # tiles of 52 px, each extended by the declared 20 px halo
    tiled = predict(model=path, inputs=image, skip_preprocessing=True, blocksize_parameter=2)
    assert whole.shape == (1, 3, size, size)
    np.testing.assert_allclose(np.asarray(tiled.members["probabilities"].data), whole, atol=1e-5)
    # beyond the halo the image border plays no part: napari-unet's own probabilities
    expected = nu.predict_probabilities(image[0, 0], tiny_model, device="cpu", precision="fp32", invert=False,
                                        denoise=0)  # the package smooths nothing: a noise image stays as it is
    inner = (slice(None), slice(20, -20), slice(20, -20))
    np.testing.assert_allclose(whole[0][inner], expected[inner], atol=1e-5)


def test_the_architecture_source_builds_the_same_network_with_torch_alone(tmp_path, monkeypatch):
    model = nu.create_model("unetplusplus", depth=2, base_channels=4, deep_supervision=True, upsampling="bilinear")
    module = types.ModuleType("packaged_architecture")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    source = architecture_source("unetplusplus", model.class_names)
    imported = {node.module if isinstance(node, ast.ImportFrom) else alias.name
                for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert imported == {"__future__", "math", "dataclasses", "torch", "torch.nn"}
    exec(compile(source, "napari_unet_architecture.py", "exec"), module.__dict__)
    network = getattr(module, ARCHITECTURE_CALLABLE)(**model.config.__dict__)
    network.load_state_dict(ProbabilityNetwork(model.network).state_dict())
    x = torch.randn(1, 1, 68, 68)
    with torch.no_grad():
        torch.testing.assert_close(network.eval()(x), torch.softmax(model.network.eval()(x), dim=1))
        mirrored = getattr(module, ARCHITECTURE_CALLABLE)(context=20, **model.config.__dict__).eval()
        mirrored.load_state_dict(network.state_dict())
        padded = torch.nn.functional.pad(x, [20] * 4, mode="reflect")
        expected = torch.softmax(model.network(padded), dim=1)
        crop = (expected.shape[-1] - 68) // 2
        torch.testing.assert_close(mirrored(x), expected[..., crop:crop + 68, crop:crop + 68])


def test_a_package_loads_back_with_identical_weights_and_metadata(tiny_model, tmp_path):
    tiny_model.diameter, tiny_model.history = 17.0, [{"kind": "finetune", "steps": 3}]
    path = export_bioimageio(tiny_model, tmp_path / "tiny.zip")
    loaded = nu.load_model(path, device="cpu")
    assert (loaded.config, loaded.diameter, loaded.history) == (tiny_model.config, 17.0, tiny_model.history)
    for key, value in tiny_model.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[key], value), key
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    np.testing.assert_array_equal(nu.predict_probabilities(image, loaded, device="cpu", diameter=17.0),
                                  nu.predict_probabilities(image, tiny_model, device="cpu", diameter=17.0))


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _rewrite(path, changes: dict):
    """The package with some members replaced (bytes) or removed (None)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members.update(changes)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            if data is not None:
                archive.writestr(name, data)


def test_loading_a_package_never_unpickles_its_torch_weights(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = export_bioimageio(tiny_model, tmp_path / "tiny.zip")
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, evil)
    _rewrite(path, {"weights.pt": evil.read_bytes(), "weights_torchscript.pt": evil.read_bytes()})
    nu.load_model(path, device="cpu")
    assert not (tmp_path / "PWNED").exists()


def test_packages_napari_unet_did_not_write_or_that_were_changed_are_refused(tiny_model, tmp_path):
    path = export_bioimageio(tiny_model, tmp_path / "tiny.zip")
    rdf = _rdf(path)
    foreign = tmp_path / "foreign.zip"
    foreign.write_bytes(path.read_bytes())
    _rewrite(foreign, {"rdf.yaml": yaml.safe_dump({k: v for k, v in rdf.items() if k != "config"}).encode()})
    with pytest.raises(ModelFileError, match="did not export"):
        nu.load_model(foreign, device="cpu")
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(path.read_bytes())
    _rewrite(tampered, {"napari_unet_model.safetensors": model_to_bytes(nu.create_model("unet", depth=2,
                                                                                          base_channels=8))})
    with pytest.raises(ModelFileError, match="checksum"):
        nu.load_model(tampered, device="cpu")
    escaping = tmp_path / "escaping.zip"
    escaping.write_bytes(path.read_bytes())
    rdf["config"]["napari_unet"]["model_file"] = "../model.safetensors"
    _rewrite(escaping, {"rdf.yaml": yaml.safe_dump(rdf).encode()})
    with pytest.raises(ModelFileError, match="not at its root"):
        nu.load_model(escaping, device="cpu")


def test_a_zipped_torch_checkpoint_is_still_refused_as_a_pickle(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"weights": torch.zeros(3)}, path)  # a zip file, but no rdf.yaml inside
    with pytest.raises(ModelFileError, match="pickle"):
        nu.load_model(path, device="cpu")


def test_export_refuses_bad_arguments(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"path must end in \.zip"):
        export_bioimageio(tiny_model, tmp_path / "model.tar")
    with pytest.raises(ValueError, match="does not exist"):
        export_bioimageio(tiny_model, tmp_path / "missing" / "model.zip")
    with pytest.raises(ValueError, match="test_image must be"):
        export_bioimageio(tiny_model, tmp_path / "model.zip", test_image=np.zeros((2, 3, 40, 40)))
    assert list(tmp_path.iterdir()) == []


def test_export_does_not_move_or_change_the_model(tiny_model, tmp_path):
    before = {key: value.clone() for key, value in tiny_model.network.state_dict().items()}
    export_bioimageio(tiny_model, tmp_path / "tiny.zip", test_image=np.ones((30, 30)))  # padded to fit
    assert tiny_model.device.type == "cpu" and tiny_model.network.training is False
    assert all(torch.equal(before[key], value) for key, value in tiny_model.network.state_dict().items())


def test_preprocess_matches_the_described_scale_range_and_clip(tiny_model):
    raw = np.linspace(0, 1000, 2 * 50 * 50, dtype=np.float32).reshape(1, 2, 50, 50)
    out = preprocess(raw, tiny_model)
    low, high = np.percentile(raw, [1.0, 99.8])
    assert out[0, 0, 0, 0] == pytest.approx(max(-1.0, (0 - low) / (high - low + 1e-6)))
    assert out.max() <= 3.0 and out.dtype == np.float32


def test_the_export_command_writes_a_package_that_segment_accepts(tiny_model_file, tmp_path, capsys):
    out = tmp_path / "cells.zip"
    assert main(["export", str(tiny_model_file), "--out", str(out), "--author", "A. Person",
                 "--name", "my cells!"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert _rdf(out)["name"] == "my cells-"
    image = tmp_path / "image.npy"
    np.save(image, np.random.default_rng(0).random((48, 48)).astype(np.float32))
    assert main(["segment", str(image), "--model", str(out), "--out", str(tmp_path / "res"), "--device", "cpu"]) == 0
    assert (tmp_path / "res" / "image_labels.tif").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--out", "{tmp}/cells.tar"], "--out .*cells.tar: a bioimage.io package is a zip file"),
    (["--out", "{tmp}/missing/cells.zip"], "--out .*: folder .*missing does not exist"),
    (["--out", "{tmp}/existing.zip"], "--out .*existing.zip: exists; pass --overwrite"),
    (["--out", "{tmp}/cells.zip", "--test-image", "{tmp}/stack.npy"], "--test-image: test_image must be"),
])
def test_export_command_errors_are_one_line(arguments, message, tiny_model_file, tmp_path, capsys):
    (tmp_path / "existing.zip").write_bytes(b"keep me")
    np.save(tmp_path / "stack.npy", np.zeros((2, 3, 40, 40), dtype=np.float32))
    argv = ["export", str(tiny_model_file)] + [a.format(tmp=tmp_path) for a in arguments]
    assert main(argv) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert re.search(message, errors[0]), errors[0]
    assert (tmp_path / "existing.zip").read_bytes() == b"keep me"
    assert not (tmp_path / "cells.zip").exists()
