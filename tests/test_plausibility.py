"""Never silently absurd: implausible results are named with the next step, in the API
(a warning), on the command line (one line) and in the widget (its status line); the size
estimate does not run off on a dense image."""

import numpy as np
import pytest
import tifffile

import napari_unet as nu
from napari_unet.datasets import median_diameter
from napari_unet.inference import plausibility
from napari_unet.inference.diameter import ScaleProbe, rival_diameter
from napari_unet.synth import SynthConfig, synth_image


def fragments(shape=(200, 200), step=6) -> np.ndarray:
    """A texture cut into pieces: one 3 x 3 object every ``step`` pixels."""
    labels = np.zeros(shape, np.int32)
    count = 0
    for y in range(0, shape[0] - 3, step):
        for x in range(0, shape[1] - 3, step):
            count += 1
            labels[y:y + 3, x:x + 3] = count
    return labels


def test_fragments_coverage_and_crowding_are_named_with_the_next_step():
    (message,) = plausibility.implausibilities(fragments(), diameter=20.0)
    assert "objects with a median diameter of 3 px, far below the 20 px" in message
    assert "give the cell diameter" in message and "fine-tune" in message
    full = np.ones((100, 100), np.int32)
    (message,) = plausibility.implausibilities(full, diameter=None)
    assert "cover 100% of the image" in message
    assert plausibility.implausibilities(full, diameter=None, target="cells") == []  # confluent cells are fine
    crowded = fragments((200, 200), step=5)
    (message,) = plausibility.implausibilities(crowded, diameter=8.0)  # 3 px objects are not below 0.4 x 8
    assert "objects where about" in message
    stack = np.stack([fragments()] * 3)
    assert "far below" in plausibility.implausibilities(stack, diameter=20.0)[0]


def test_ordinary_nuclei_raise_nothing():
    image, labels = synth_image(np.random.default_rng(0), SynthConfig(shape=(192, 192)))
    assert plausibility.implausibilities(labels, diameter=median_diameter(labels)) == []


def test_probes_that_disagree_make_the_estimate_uncertain():
    near = [ScaleProbe(1.0, 40, 20.0, 0.8, 0.5), ScaleProbe(0.125, 5, 160.0, 0.8, 0.5)]
    assert rival_diameter(near, 20.0) == pytest.approx(160.0)
    apart = [ScaleProbe(1.0, 40, 20.0, 0.8, 0.5), ScaleProbe(0.125, 5, 160.0, 0.6, 0.5)]
    assert rival_diameter(apart, 20.0) is None
    # the stable rule: two pairs of probes, 4x apart, whose sizes both hold within 0.1 octave
    pairs = [ScaleProbe(0.25, 40, 62.0, 0.5), ScaleProbe(0.5, 50, 58.0, 0.5), ScaleProbe(2.0, 60, 14.0, 0.6),
             ScaleProbe(4.0, 70, 13.5, 0.7)]
    assert rival_diameter(pairs, 30.0, rule="stable") == pytest.approx(np.sqrt(62.0 * 58.0))
    assert rival_diameter(pairs[:3] + [ScaleProbe(4.0, 70, 7.0, 0.7)], 30.0, rule="stable") is None
    message = plausibility.implausibilities(np.zeros((10, 10), int), diameter=20.0, rival=160.0)[0]
    assert "20 px was chosen, but 160 px fitted almost as well" in message


def test_the_model_target_comes_from_its_pretraining_recipe(tiny_model):
    assert plausibility.model_target(tiny_model) == "nuclei"
    tiny_model.history.append({"kind": "pretrain", "recipe": {"target": "cells"}})
    assert plausibility.model_target(tiny_model) == "cells"


@pytest.fixture
def texture_result(monkeypatch):
    """Every plane is labelled as fragments, whatever the network says."""
    from napari_unet.inference import segment

    monkeypatch.setattr(segment, "label_plane", lambda probabilities, reading, config: fragments(
        reading.layout.plane_shape))


def test_the_api_warns(tiny_model, texture_result):
    tiny_model.diameter = 20.0
    with pytest.warns(RuntimeWarning, match="far below the 20 px"):
        nu.segment(np.random.default_rng(0).random((200, 200)), tiny_model, diameter=20.0, device="cpu")


def test_the_cli_prints_one_line(tiny_model, texture_result, tmp_path, capsys):
    from napari_unet.cli import main

    tiny_model.diameter = 20.0
    model = nu.save_model(tiny_model, tmp_path / "m.safetensors")
    tifffile.imwrite(tmp_path / "x.tif", np.random.default_rng(0).random((200, 200)).astype(np.float32))
    assert main(["segment", str(tmp_path / "x.tif"), "--out", str(tmp_path / "out"), "--model", str(model),
                 "--diameter", "20", "--device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("warning: x.tif: ") and "far below" in lines[0]


def test_a_dense_fluorescence_image_keeps_its_size_estimate():
    """Densely packed small nuclei: the estimate stays near their size (not that of clusters)."""
    config = SynthConfig(shape=(384, 512), radius=(5.0, 7.0), coverage=(0.6, 0.8), touching_fraction=(0.6, 0.9))
    image, labels = synth_image(np.random.default_rng(1), config)
    estimate = nu.estimate_diameter(image, "nuclei", device="cpu")
    truth = median_diameter(labels)
    assert estimate.diameter is not None and 1 / 1.5 < estimate.diameter / truth < 1.5
