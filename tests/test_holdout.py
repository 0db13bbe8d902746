"""Fine-tuning checks itself on held-out cells of the user's own annotation: the split never
shares a cell with training, a run that does not beat the start keeps the start and says so
(API event, CLI line), and the model's history records the held-out scores."""

import numpy as np
import pytest
import torch
import tifffile

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.events import TrainFinished, Validation
from napari_unet.synth import SynthConfig, synth_image
from napari_unet.training import holdout, loop
from napari_unet.training.annotations import check_annotations

CONFIG = TrainConfig(iterations=4, batch_size=2, patch_size=32, device="cpu", validate_every=2)


@pytest.fixture(scope="module")
def annotated():
    image, labels = synth_image(np.random.default_rng(5), SynthConfig(shape=(112, 112), coverage=(0.35, 0.45)))
    assert len(np.unique(labels)) - 1 >= 8
    return image, labels


@pytest.fixture
def trained(tiny_model):
    """A model with a training history: its starting weights are worth keeping."""
    tiny_model.history.append({"kind": "pretrain", "outcome": "completed"})
    return tiny_model


def test_held_out_cells_are_whole_together_and_never_trained_on(annotated):
    image, labels = annotated
    checked = check_annotations(image, labels)
    remaining, held = holdout.split_held_out(checked, 0.25)
    cells = len(np.unique(labels)) - 1
    assert held is not None and held.cells == max(2, round(0.25 * cells))
    held_ids = set(np.unique(held.labels[held.labels > 0]))
    train = remaining[0]
    assert not held_ids & set(np.unique(train.labels[train.labels > 0]))  # no cell on both sides
    full = np.zeros(labels.shape, bool)
    full[held.window] = held.region
    assert not (train.annotated & full).any()  # the held-out region is not annotated for training
    for cell in held_ids:  # whole cells: every pixel of each held-out cell is in the region
        assert full[labels == cell].all() and cell in labels[held.window]
    assert np.array_equal(checked[0].labels, np.where(checked[0].annotated, labels, 0))  # input untouched
    # together: no training cell lies closer to the held-out cells' centre than the farthest of them
    from scipy import ndimage
    centres = dict(zip(np.unique(labels[labels > 0]),
                       ndimage.center_of_mass(labels > 0, labels, np.unique(labels[labels > 0]))))
    middle = np.mean([centres[c] for c in held_ids], axis=0)
    reach = max(np.linalg.norm(np.subtract(centres[c], middle)) for c in held_ids)
    others = [np.linalg.norm(np.subtract(centres[c], middle)) for c in centres if c not in held_ids]
    assert sum(distance < reach for distance in others) <= 1


def test_too_few_cells_hold_nothing_out(annotated):
    image, labels = annotated
    few = np.where(np.isin(labels, [1, 2, 3]), labels, 0)
    checked = check_annotations(image, few)
    assert holdout.split_held_out(checked, 0.25) == (checked, None)
    events = list(loop.iter_finetune(nu.create_model("unet", depth=2, base_channels=8), image, few,
                                     config=CONFIG.replace(iterations=1)))
    assert "fewer than 6 annotated cells" in events[0].message


def scripted_scores(monkeypatch, values):
    """The held-out scores of successive checks (step 0 first) replaced by ``values``."""
    queue = list(values)
    monkeypatch.setattr(loop, "score_held_out", lambda *a, **k: {
        "cells": 2, "found": 1, "false": 0, "ap50": queue.pop(0), "pq": 0.5})


def run(model, annotated, config=CONFIG):
    image, labels = annotated
    return list(loop.iter_finetune(model, image, labels, config=config))


def test_a_run_that_does_not_beat_the_start_keeps_the_start_and_says_so(trained, annotated, monkeypatch, tmp_path):
    start = {k: v.clone() for k, v in trained.network.state_dict().items()}
    scripted_scores(monkeypatch, [0.8, 0.5, 0.6])  # start, step 2, step 4
    events = run(trained, annotated)
    checks = [e for e in events if isinstance(e, Validation)]
    assert [e.step for e in checks] == [0, 2, 4] and checks[0].metrics["ap50"] == 0.8
    finished = events[-1]
    assert isinstance(finished, TrainFinished) and finished.kept_start
    assert "AP@0.5 0.80 -> 0.60, not better: the starting model is kept" in finished.message
    for key, value in finished.model.network.state_dict().items():
        assert (value == start[key]).all(), key
    path = nu.save_model(finished.model, tmp_path / "m.safetensors")
    record = nu.load_model(path).history[-1]["held_out"]
    assert (record["before"]["ap50"], record["after"]["ap50"], record["kept"]) == (0.8, 0.6, "start")


def test_a_better_run_keeps_its_best_checkpoint(trained, annotated, monkeypatch):
    scripted_scores(monkeypatch, [0.4, 0.9, 0.6])
    finished = run(trained, annotated)[-1]
    assert not finished.kept_start and finished.held_out["after"]["step"] == 2
    assert "AP@0.5 0.40 -> 0.90: the fine-tuned model is kept" in finished.message


def test_keep_worse_keeps_the_tuned_weights(trained, annotated, monkeypatch):
    scripted_scores(monkeypatch, [0.8, 0.5, 0.6])
    finished = run(trained, annotated, CONFIG.replace(keep_worse=True))[-1]
    assert not finished.kept_start and finished.held_out["kept"] == "fine-tuned"
    assert "kept anyway" in finished.message


def test_random_starting_weights_are_never_kept(tiny_model, annotated, monkeypatch):
    scripted_scores(monkeypatch, [0.0, 0.0, 0.0])
    finished = run(tiny_model, annotated)[-1]
    assert not finished.kept_start


def test_the_real_score_counts_predictions_in_the_held_out_region(annotated):
    image, labels = annotated
    _, held = holdout.split_held_out(check_annotations(image, labels), 0.25)

    class Perfect:  # a "model" whose segmentation is the truth, through the same scoring path
        pass

    import napari_unet.inference.segment as segment_module
    original = segment_module.segment
    try:
        segment_module.segment = lambda crop, model, **k: labels[held.window]
        score = holdout.score_held_out(Perfect(), held, image, diameter=None, device="cpu", precision="fp32")
    finally:
        segment_module.segment = original
    assert score["ap50"] == 1.0 and score["found"] == held.cells and score["false"] == 0


def test_cli_writes_nothing_when_tuning_is_not_better(trained, annotated, monkeypatch, tmp_path, capsys):
    from napari_unet.cli import main

    image, labels = annotated
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "lbl.tif", labels.astype(np.uint16))
    model = nu.save_model(trained, tmp_path / "start.safetensors")
    out = tmp_path / "tuned.safetensors"
    arguments = ["finetune", "--image", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lbl.tif"), "--model",
                 str(model), "--out", str(out), "--iterations", "2", "--patch-size", "32", "--batch-size", "2",
                 "--device", "cpu", "--keep-collapsed"]
    scripted_scores(monkeypatch, [0.8, 0.5])
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: nothing written: on the") and "pass --keep-worse" in error
    assert not out.exists()
    scripted_scores(monkeypatch, [0.8, 0.5])
    assert main(arguments + ["--keep-worse"]) == 0
    assert nu.load_model(out).history[-1]["held_out"]["kept"] == "fine-tuned"
    assert main(arguments + ["--holdout", "0.9", "--overwrite"]) == 2
    assert "--holdout must be a share" in capsys.readouterr().err


def test_blend_keeps_the_halfway_weights_when_the_held_out_cells_score_them_as_well(trained, annotated, monkeypatch):
    start = {k: v.clone() for k, v in trained.network.state_dict().items()}
    scripted_scores(monkeypatch, [0.4, 0.5, 0.9])  # start, step 2, step 4 (the best)
    tuned = run(trained, annotated)[-1].model.network.state_dict()  # the same seed: the same tuned weights
    scripted_scores(monkeypatch, [0.4, 0.5, 0.9, 0.9])  # ... and the halfway blend, as good
    finished = run(trained, annotated, CONFIG.replace(blend=True))[-1]
    assert finished.held_out["blend"] == 0.5 and finished.held_out["kept"] == "fine-tuned"
    assert "AP@0.5 0.40 -> 0.90: the fine-tuned model, blended 50% of the way from the start, is kept" in finished.message
    moved = 0
    for key, value in finished.model.network.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, (start[key] + tuned[key]) / 2, atol=1e-6), key
            moved += int(not torch.equal(start[key], tuned[key]))
    assert moved  # tuning changed weights, so the blend is neither end


def test_blend_that_scores_lower_leaves_the_tuned_weights(trained, annotated, monkeypatch):
    scripted_scores(monkeypatch, [0.4, 0.5, 0.9])
    tuned = run(trained, annotated)[-1].model.network.state_dict()
    scripted_scores(monkeypatch, [0.4, 0.5, 0.9, 0.7])
    finished = run(trained, annotated, CONFIG.replace(blend=True))[-1]
    assert finished.held_out["blend"] == 1.0 and finished.held_out["after"]["ap50"] == 0.9
    for key, value in finished.model.network.state_dict().items():
        assert torch.equal(value, tuned[key]), key
