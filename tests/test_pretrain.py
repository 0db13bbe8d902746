"""Pretraining from an annotated folder (DSB2018 layout) plus synthetic images, on a tiny
recipe: the real data's val split is never read, and the model keeps its diameter."""

import csv
import dataclasses

import numpy as np
import pytest
import tifffile
import torch

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.datasets import median_diameter, read_annotated
from napari_unet.training.calibrate import LABELLING_GRID, calibrate_labelling
from napari_unet.training.pretrain import (PretrainRecipe, parse_shares,
                                          pretrain, sampling_weights, to_model_scale, training_images)
from napari_unet.synth import SynthConfig, synth_image

TINY = PretrainRecipe(depth=2, base_channels=8, synthetic_images=2, synthetic_diameter=(10.0, 14.0),
                      train=TrainConfig(iterations=4, batch_size=2, patch_size=32, validate_every=2))


@pytest.fixture
def annotated_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rows = []
    for index, (modality, split) in enumerate([("fluorescence", "train"), ("fluorescence", "train"),
                                               ("stained", "train"), ("stained", "train"),
                                               ("fluorescence", "val")]):
        synth = "fluorescence" if modality == "fluorescence" else "stained"
        image, labels = synth_image(np.random.default_rng(index), SynthConfig(shape=(72, 72), modality=synth))
        name = f"img{index}"
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", image.astype(np.float32),
                         photometric="rgb" if image.ndim == 3 else "minisblack")
        tifffile.imwrite(tmp_path / "masks" / f"{name}.tif", labels.astype(np.uint16))
        rows.append({"id": name, "modality": modality, "split": split})
    with open(tmp_path / "index.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["id", "modality", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return tmp_path


def test_read_annotated_selects_by_split_and_measures_diameters(annotated_folder):
    train = read_annotated(annotated_folder, split="train")
    assert [s.id for s in train] == ["img0", "img1", "img2", "img3"]
    assert [s.id for s in read_annotated(annotated_folder, split="val")] == ["img4"]
    assert all(s.diameter == pytest.approx(median_diameter(s.labels)) for s in train)


def test_read_annotated_needs_images_and_masks(tmp_path):
    with pytest.raises(ValueError, match="images/ and masks/"):
        read_annotated(tmp_path)


def test_median_diameter_of_discs():
    labels = np.zeros((100, 100), np.int32)
    yy, xx = np.mgrid[:100, :100]
    for k, (y, x) in enumerate([(20, 20), (60, 70), (75, 20)], start=1):
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= 10**2] = k
    assert median_diameter(labels) == pytest.approx(20, rel=0.05)


def test_training_images_reach_the_model_diameter(annotated_folder):
    data = training_images(TINY, annotated_folder)
    fit, held_out, description = data.fit, data.held_out, data.description
    source = annotated_folder.name  # a folder whose index has no source column
    assert [f"{source}/{s.id}" for s in data.held_out_raw] == description["held_out_ids"]
    assert f"{source}/img4" not in description["fit_ids"] + description["held_out_ids"]
    assert len(held_out) == 2  # one per modality of the train split
    for image in fit + held_out:
        assert image.image.ndim == 3 and image.image.shape[-1] == 3
        assert median_diameter(image.labels) == pytest.approx(TINY.diameter, rel=0.2)
    weights = sampling_weights(fit)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[[i for i, t in enumerate(fit) if t.group == "synthetic"]].sum() == pytest.approx(0.3 / 0.9)
    # other shares move the patches between the groups (no brightfield image here: 0.2 + 0.3 + 0.5)
    shares = parse_shares("fluorescence=0.2,stained=0.3,synthetic=0.5")
    weights = sampling_weights(fit, shares)
    for group, share in (("fluorescence", 0.2), ("stained", 0.3), ("synthetic", 0.5)):
        assert weights[[i for i, t in enumerate(fit) if t.group == group]].sum() == pytest.approx(share)


def test_parse_shares_keeps_the_groups_left_out_and_names_mistakes():
    assert dict(parse_shares("stained=0.35")) == {"fluorescence": 0.4, "stained": 0.35, "brightfield": 0.1,
                                                  "synthetic": 0.3}
    for text, message in (("bogus=1", "unknown group 'bogus'"), ("stained", "not GROUP=NUMBER"),
                          ("stained=-0.1", "share of stained must be a number >= 0"),
                          ("fluorescence=0,stained=0,brightfield=0,synthetic=0", "every group at 0")):
        with pytest.raises(ValueError, match=message):
            parse_shares(text)


def test_to_model_scale_inverts_bright_backgrounds():
    image, labels = synth_image(np.random.default_rng(1), SynthConfig(shape=(64, 64), modality="brightfield"))
    scaled, scaled_labels = to_model_scale(image, labels, median_diameter(labels), 2 * median_diameter(labels), 3)
    assert scaled.shape == (128, 128, 3) and scaled_labels.shape == (128, 128)
    assert np.median(scaled[scaled_labels > 0]) > np.median(scaled[scaled_labels == 0])


def test_pretrain_writes_a_model_with_its_diameter_and_data(annotated_folder, tmp_path):
    out = tmp_path / "nuclei.safetensors"
    model = pretrain(out, annotated_folder, recipe=TINY)
    loaded = nu.load_model(out, device="cpu")
    assert loaded.diameter == TINY.diameter == model.diameter
    assert loaded.config.in_channels == 3
    assert loaded.diameter_bias == model.diameter_bias > 0
    assert loaded.labelling == model.labelling
    assert model.labelling.foreground in LABELLING_GRID["foreground"]
    entry = loaded.history[-1]
    assert entry["kind"] == "pretrain" and entry["outcome"] == "completed"
    assert entry["data"]["split"] == "train" and "img4" not in entry["data"]["fit_ids"]
    assert entry["augmentation"]["zoom"] == list(TINY.augmentation.zoom)
    assert entry["recipe"]["group_shares"] == dict(TINY.group_shares)
    assert "--shares" not in entry["command"]  # the recipe's own shares


def test_pretrain_stores_the_calibrated_labelling(annotated_folder, tmp_path, monkeypatch):
    from napari_unet.training import pretrain as pretraining

    calibrated = nu.Labelling(threshold=0.35, foreground=0.9, split_depth=3.0, min_size=40)
    seen = []
    monkeypatch.setattr(pretraining, "calibrate_labelling", lambda model, samples: seen.append(samples) or calibrated)
    pretrain(tmp_path / "nuclei.safetensors", annotated_folder, recipe=TINY)
    assert nu.load_model(tmp_path / "nuclei.safetensors", device="cpu").labelling == calibrated
    assert seen and all(sample.labels.any() for sample in seen[0])


def test_pretrain_records_other_shares_in_its_command(annotated_folder, tmp_path):
    recipe = dataclasses.replace(TINY, group_shares=parse_shares("stained=0.5"))
    pretrain(tmp_path / "n.safetensors", annotated_folder, recipe=recipe)
    entry = nu.load_model(tmp_path / "n.safetensors").history[-1]
    assert entry["recipe"]["group_shares"]["stained"] == 0.5
    assert "--shares fluorescence=0.4,stained=0.5,brightfield=0.1,synthetic=0.3" in entry["command"]


def test_a_time_budget_ends_pretraining_by_the_clock_and_is_recorded(annotated_folder, tmp_path):
    # a cap far beyond what the budget allows: the clock must end the run, as on a lent GPU
    train = dataclasses.replace(TINY.train, iterations=100_000, minutes=0.05, validate_every=10_000, batch_size=2)
    model = pretrain(tmp_path / "n.safetensors", annotated_folder, recipe=dataclasses.replace(TINY, train=train))
    entry = nu.load_model(tmp_path / "n.safetensors").history[-1]
    assert entry["outcome"] == "completed" and 0 < entry["steps"] < 100_000
    assert "--minutes 0.05 --iterations 100000" in entry["command"] and "--batch-size 2" in entry["command"]
    assert model.labelling is not None


def test_pretrain_refuses_a_folder_without_a_train_split(annotated_folder, tmp_path):
    rows = list(csv.DictReader(open(annotated_folder / "index.csv")))
    with open(annotated_folder / "index.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["id", "modality", "split"])
        writer.writeheader()
        writer.writerows([dict(row, split="val") for row in rows])
    with pytest.raises(ValueError, match="no nuclei images outside the val/test splits"):
        pretrain(tmp_path / "x.safetensors", annotated_folder, recipe=dataclasses.replace(TINY))


def _source_folder(folder, source, rows):
    """An annotated folder of a built source: rows of (id, group, target, split)."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for index, (name, _, _, _) in enumerate(rows):
        image, labels = synth_image(np.random.default_rng(index), SynthConfig(shape=(64, 64)))
        tifffile.imwrite(folder / "images" / f"{name}.tif", image.astype(np.float32))
        tifffile.imwrite(folder / "masks" / f"{name}.tif", labels.astype(np.uint16))
    with open(folder / "index.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["id", "source", "group", "modality", "target", "split"])
        writer.writeheader()
        writer.writerows({"id": name, "source": source, "group": group, "modality": "fluorescence",
                          "target": target, "split": split} for name, group, target, split in rows)
    return folder


def test_several_sources_hold_out_whole_groups_and_never_read_test_or_excluded(annotated_folder, tmp_path):
    from napari_unet.training.pretrain import read_training_sources

    other = _source_folder(tmp_path / "lab", "lab", [
        ("a1", "liver", "nuclei", "train"), ("a2", "liver", "nuclei", "train"), ("b1", "lung", "nuclei", ""),
        ("b2", "lung", "nuclei", "train"), ("c1", "colon", "nuclei", "test"), ("d1", "brain", "cells", "train"),
        ("e1", "kidney", "nuclei", "train")])
    recipe = dataclasses.replace(TINY, excluded=("lab/kidney",))
    read = read_training_sources(recipe, [annotated_folder, other])
    keys = {f"{s.source}/{s.id}" for s in read}
    assert {"lab/a1", "lab/a2", "lab/b1", "lab/b2"} <= keys
    assert not keys & {"lab/c1", "lab/d1", "lab/e1", f"{annotated_folder.name}/img4"}  # test, cells, excluded, val
    data = training_images(recipe, [annotated_folder, other])
    held = {key for key in data.description["held_out_ids"] if key.startswith("lab/")}
    # one of the two groups (liver, lung) is held out whole, never a part of one
    assert held in ({"lab/a1", "lab/a2"}, {"lab/b1", "lab/b2"})
    assert data.description["sources"] == {annotated_folder.name: 4, "lab": 4}
    cells = read_training_sources(dataclasses.replace(TINY, target="cells"), [annotated_folder, other])
    assert [s.id for s in cells] == ["d1"]
    with pytest.raises(ValueError, match="no nuclei images"):
        read_training_sources(dataclasses.replace(TINY, excluded=("lab", annotated_folder.name)),
                              [annotated_folder, other])


def test_pretrain_goes_on_from_a_checkpoint(annotated_folder, tmp_path):
    first = tmp_path / "first.safetensors"
    start = pretrain(first, annotated_folder, recipe=TINY)
    # a vanishing learning rate: the second run's convolutions stay those of the checkpoint
    still = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, learning_rate=1e-12))
    second = pretrain(tmp_path / "second.safetensors", annotated_folder, recipe=still, init=first)
    fresh = pretrain(tmp_path / "fresh.safetensors", annotated_folder, recipe=still)
    before, after, scratch = (dict(m.network.named_parameters()) for m in (start, second, fresh))
    convolutions = [name for name, value in before.items() if value.ndim == 4]
    assert convolutions and all(torch.allclose(before[n], after[n], atol=1e-6) for n in convolutions)
    assert not all(torch.allclose(before[n], scratch[n], atol=1e-6) for n in convolutions)
    kinds = [entry["kind"] for entry in nu.load_model(tmp_path / "second.safetensors").history]
    assert kinds == ["pretrain", "pretrain"]
    entry = nu.load_model(tmp_path / "second.safetensors").history[-1]
    assert entry["data"]["init"].startswith("first.safetensors")
    # the recorded command repeats the continuation: its start, steps and learning rate
    assert "--init first.safetensors" in entry["command"] and "--learning-rate 1e-12" in entry["command"]
    assert f"--iterations {TINY.train.iterations}" in entry["command"]


def test_pretrain_command_passes_the_schedule_on(monkeypatch, tmp_path, capsys):
    from napari_unet.cli import main
    from napari_unet.events import TrainFinished
    from napari_unet.training import pretrain as module

    seen = {}

    def fake(out, data, *, recipe, init=None):
        seen.update(recipe=recipe, init=init, data=data)
        yield TrainFinished(model="model", steps=recipe.train.iterations, reason="completed", message="")

    monkeypatch.setattr(module, "iter_pretrain", fake)
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "n.safetensors"), "--init",
                 str(tmp_path / "start.safetensors"), "--iterations", "30", "--learning-rate", "5e-4",
                 "--seed", "3", "--shares", "stained=0.35,synthetic=0.15", "--data", str(tmp_path / "more"),
                 "--exclude", "lab/liver", "--exclude", "other"]) == 0
    assert seen["data"] == [tmp_path, tmp_path / "more"]
    assert seen["recipe"].excluded == ("lab/liver", "other")
    assert "--exclude lab/liver --exclude other" in module._command(seen["recipe"])
    assert dict(seen["recipe"].group_shares)["stained"] == 0.35
    assert dict(seen["recipe"].group_shares)["synthetic"] == 0.15
    train = seen["recipe"].train
    assert (train.iterations, train.learning_rate, train.seed) == (30, 5e-4, 3)
    assert seen["init"] == tmp_path / "start.safetensors"
    assert train.batch_size == module.PretrainRecipe().train.batch_size  # the rest stays the recipe's
    assert train.minutes is None
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "n.safetensors"), "--minutes", "8",
                 "--batch-size", "16", "--patch-size", "256"]) == 0
    train = seen["recipe"].train
    assert (train.minutes, train.batch_size, train.patch_size) == (8.0, 16, 256)
    assert "--batch-size 16 --patch-size 256" in module._command(seen["recipe"])
    assert train.iterations >= 100_000  # the clock ends it, not the recipe's step count
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "n.safetensors"), "--minutes", "8",
                 "--iterations", "500"]) == 0
    assert seen["recipe"].train.iterations == 500
    with pytest.raises(SystemExit) as exit:
        main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "n.safetensors"), "--learning-rate", "0"])
    assert exit.value.code == 2
    assert "--learning-rate" in capsys.readouterr().err
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "n.safetensors"),
                 "--shares", "blue=1"]) == 2
    assert "--shares: unknown group 'blue'" in capsys.readouterr().err


def test_pretrain_init_must_be_the_recipes_network(annotated_folder, tmp_path):
    other = tmp_path / "other.safetensors"
    nu.save_model(nu.create_model("unet", depth=3, base_channels=8, in_channels=3), other)
    with pytest.raises(ValueError, match="init .*other.safetensors.*not the recipe's"):
        pretrain(tmp_path / "x.safetensors", annotated_folder, recipe=TINY, init=other)
    with pytest.raises(ValueError, match="same file as init"):
        pretrain(other, annotated_folder, recipe=TINY, init=other)
    assert not (tmp_path / "x.safetensors").exists()


def test_calibrate_labelling_undoes_cells_drawn_too_large_and_drops_specks(tiny_model, monkeypatch):
    from napari_unet.config import Labelling
    from napari_unet.datasets import AnnotatedImage
    from napari_unet.inference import runner
    from napari_unet.inference.labels import probabilities_to_labels
    from napari_unet.metrics import average_precision

    truth = np.zeros((64, 64), np.int32)
    yy, xx = np.mgrid[:64, :64]
    for index, (y, x) in enumerate([(14, 14), (14, 46), (46, 14), (46, 46)], start=1):
        truth[(yy - y) ** 2 + (xx - x) ** 2 <= 49] = index
    # the network's habits: cells painted 2 px too large (at foreground 0.7), 5x5 specks of "cells"
    from scipy import ndimage as ndi
    drawn = ndi.binary_dilation(truth > 0, iterations=2)
    probabilities = np.zeros((3, 64, 64), np.float32)
    probabilities[0] = np.where(truth > 0, 0.0, np.where(drawn, 0.3, 1.0))
    probabilities[1] = ndi.binary_erosion(truth > 0)
    probabilities[1, 28:33, 28:33], probabilities[0, 28:33, 28:33] = 1.0, 0.0
    probabilities[2] = 1 - probabilities[0] - probabilities[1]
    monkeypatch.setattr(runner, "predict_plane", lambda *args: probabilities.copy())
    sample = AnnotatedImage(id="a", image=np.zeros((64, 64), np.float32), labels=truth, modality="fluorescence",
                            diameter=median_diameter(truth))
    calibrated = calibrate_labelling(tiny_model, [sample])
    assert calibrated.foreground >= 0.7 and calibrated.min_size >= 30
    before = probabilities_to_labels(probabilities, **dataclasses.asdict(Labelling()))
    after = probabilities_to_labels(probabilities, **dataclasses.asdict(calibrated))
    assert average_precision(before, truth, thresholds=(0.75,))[0.75] < 0.5
    assert average_precision(after, truth, thresholds=(0.75,))[0.75] == 1.0


def test_the_cells_recipe_reads_whole_cells_and_makes_synthetic_cells(annotated_folder, tmp_path):
    from napari_unet.training.pretrain import RECIPES, _command, read_training_sources, synthetic_training_images

    cells = dataclasses.replace(RECIPES["cells"], synthetic_images=3, synthetic_diameter=(40.0, 50.0))
    other = _source_folder(tmp_path / "lab", "lab", [("n1", "a", "nuclei", ""), ("c1", "a", "cells", ""),
                                                      ("c2", "b", "cells", "test")])
    assert [s.id for s in read_training_sources(cells, [annotated_folder, other])] == ["c1"]
    kinds = [kind for kind, *_ in synthetic_training_images(cells)]
    assert kinds == ["cytoplasm", "membrane", "phase"]
    assert "--recipe cells" in _command(cells) and "--shares" not in _command(cells)
    assert dict(parse_shares("phase=0.6", cells.group_shares))["phase"] == 0.6
    with pytest.raises(ValueError, match="unknown group 'stained'"):
        parse_shares("stained=0.6", cells.group_shares)
    # its models measure sizes with the whole-cell rule, the nuclei recipe's with the default
    from napari_unet.training.pretrain import initial_model

    tiny = dict(depth=2, base_channels=8)
    assert initial_model(dataclasses.replace(cells, **tiny)).diameter_rule == "stable"
    assert initial_model(dataclasses.replace(RECIPES["nuclei"], **tiny)).diameter_rule == "confidence"
