"""Model files are data: round trips, atomic saves, and clear refusals of anything else."""

import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch

import napari_unet as nu
from napari_unet.config import Labelling
from napari_unet.models import ModelFileError
from napari_unet.models import io as model_io


def _outputs(model, x):
    model.network.eval()
    with torch.no_grad():
        return model.network(x)


@pytest.mark.parametrize("options", [
    dict(arch="unet", depth=2, base_channels=8),
    dict(arch="unet", depth=2, base_channels=8, padding="same", upsampling="bilinear", batch_norm=False),
    dict(arch="unetplusplus", depth=2, base_channels=8, deep_supervision=True),
])
def test_round_trip_keeps_outputs_and_metadata(options, tmp_path):
    model = nu.create_model(name="mine", **options)
    model.history.append({"kind": "test", "steps": 3})
    model.labelling = Labelling(threshold=0.4, foreground=0.85, split_depth=2.5, min_size=30)
    path = nu.save_model(model, tmp_path / "m.safetensors")
    loaded = nu.load_model(path, device="cpu")
    x = torch.randn(1, 1, 60, 60)
    assert torch.allclose(_outputs(model, x), _outputs(loaded, x))
    assert loaded.config == model.config
    assert loaded.name == "mine" and loaded.history == [{"kind": "test", "steps": 3}]
    assert loaded.normalization == model.normalization and loaded.labelling == model.labelling


def test_save_is_atomic_when_interrupted(tiny_model, tmp_path, monkeypatch):
    path = nu.save_model(tiny_model, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def crash(self, data):
        with open(self, "wb") as stream:
            stream.write(data[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr("pathlib.Path.write_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        nu.save_model(nu.create_model(depth=2, base_channels=8), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]
    nu.load_model(path, device="cpu")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".safetensors"])
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_pickles_are_refused_without_running_them(suffix, writer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"evil{suffix}"
    if writer == "torch":
        torch.save({"x": _Payload()}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ModelFileError, match="pickle"):
        nu.load_model(path, device="cpu")
    assert not (tmp_path / "PWNED").exists()


def _header(path):
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + size]), raw[8 + size:]


def _write(path, header, body):
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + body)


def _edit_document(path, **changes):
    header, body = _header(path)
    document = json.loads(header["__metadata__"]["napari_unet"])
    document.update(changes)
    header["__metadata__"]["napari_unet"] = json.dumps(document)
    _write(path, header, body)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _huge_header(path):
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")


def _text_file(path):
    path.write_text("hello, I am not a model")


def _wrong_shape(path):
    header, body = _header(path)
    key = next(k for k in header if k.endswith("head.weight"))
    out, inp = header[key]["shape"][:2]
    header[key]["shape"] = [inp, out] + header[key]["shape"][2:]  # same byte count, wrong layout
    _write(path, header, body)


def _missing_key(path):
    header, body = _header(path)
    del header[next(k for k in header if k.endswith("head.bias"))]
    _write(path, header, body)


def _plain_safetensors(path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(path))


def _nan_weights(path):
    header, body = _header(path)
    key = next(k for k in header if k.endswith("head.bias"))
    start, stop = header[key]["data_offsets"]
    body = body[:start] + np.full((stop - start) // 4, np.nan, dtype=np.float32).tobytes() + body[stop:]
    _write(path, header, body)


@pytest.mark.parametrize("damage, message", [
    (_truncate, "truncated"),
    (_huge_header, "header announces"),
    (_text_file, "not a safetensors"),
    (_wrong_shape, "has shape"),
    (_missing_key, "missing"),
    (_plain_safetensors, "not a napari-unet model"),
    (lambda p: _edit_document(p, config={"arch": "transformer"}), "incompatible architecture"),
    (lambda p: _edit_document(p, config={"arch": "unet", "wings": 2}), "wings"),
    (lambda p: _edit_document(p, format_version=99), "newer napari-unet"),
    (_nan_weights, "NaN"),
    (lambda p: _edit_document(p, diameter=-3), "diameter must be a positive number"),
    (lambda p: _edit_document(p, diameter="big"), "diameter must be a positive number"),
    (lambda p: _edit_document(p, labelling={"foreground": 1.5}), "labelling: foreground must be in"),
    (lambda p: _edit_document(p, labelling={"speed": 2}), "unknown Labelling field"),
    (lambda p: _edit_document(p, labelling=[0.5]), "labelling must be a mapping"),
    (lambda p: _edit_document(p, diameter_rule="largest"), "diameter_rule must be one of confidence, stable"),
])
def test_damaged_files_give_a_clear_error(damage, message, tiny_model_file):
    damage(tiny_model_file)
    with pytest.raises(ModelFileError, match=message) as info:
        nu.load_model(tiny_model_file, device="cpu")
    assert str(tiny_model_file) in str(info.value)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        nu.load_model(tmp_path / "absent.safetensors", device="cpu")
    with pytest.raises(ModelFileError, match="not a shipped model"):
        nu.load_model("no-such-model", device="cpu")


def test_save_refuses_bad_paths(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        nu.save_model(tiny_model, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="does not exist"):
        nu.save_model(tiny_model, tmp_path / "nope" / "model.safetensors")


def test_shipped_models_load_by_name():
    names = nu.list_models()
    assert "nuclei" in names
    for name in names:
        model = nu.load_model(name, device="cpu")
        assert model.name == name
        assert model.history, "a shipped model records how it was trained"
        assert os.path.getsize(model_io._pretrained_dir() / f"{name}.safetensors") <= 20 * 2**20


def test_the_working_diameter_round_trips(tiny_model, tmp_path):
    tiny_model.diameter = 17.5
    assert nu.load_model(nu.save_model(tiny_model, tmp_path / "d.safetensors"), device="cpu").diameter == 17.5
    tiny_model.diameter = None
    assert nu.load_model(nu.save_model(tiny_model, tmp_path / "n.safetensors"), device="cpu").diameter is None


def test_the_diameter_rule_round_trips_and_older_files_read_confidence(tiny_model, tiny_model_file, tmp_path):
    assert nu.load_model(tiny_model_file, device="cpu").diameter_rule == "confidence"
    header, body = _header(tiny_model_file)  # a file written before the rule was stored
    document = json.loads(header["__metadata__"]["napari_unet"])
    del document["diameter_rule"]
    header["__metadata__"]["napari_unet"] = json.dumps(document)
    _write(tiny_model_file, header, body)
    assert nu.load_model(tiny_model_file, device="cpu").diameter_rule == "confidence"
    tiny_model.diameter_rule = "stable"
    assert nu.load_model(nu.save_model(tiny_model, tmp_path / "s.safetensors"), device="cpu").diameter_rule == "stable"


def test_a_header_length_that_starts_like_a_pickle_still_loads(tiny_model, tmp_path):
    """The first byte of a safetensors file is the low byte of its header length: 0x80, the
    first byte of a pickle, must not make a valid model file look like one."""
    for length in range(300):
        tiny_model.name = "n" * length
        path = nu.save_model(tiny_model, tmp_path / "m.safetensors")
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no name length gave a header length ending in 0x80")
    assert nu.load_model(path, device="cpu").name == tiny_model.name


def test_files_from_before_labelling_keep_their_foreground_threshold(tiny_model_file):
    header, body = _header(tiny_model_file)
    document = json.loads(header["__metadata__"]["napari_unet"])
    del document["labelling"]
    document["foreground"] = 0.8
    header["__metadata__"]["napari_unet"] = json.dumps(document)
    _write(tiny_model_file, header, body)
    labelling = nu.load_model(tiny_model_file).labelling
    assert labelling.foreground == 0.8 and labelling.split_depth == Labelling().split_depth
