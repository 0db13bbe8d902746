"""``napari-unet finetune / evaluate / weights``: outputs, one-line errors, nothing written on error."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import napari_unet as nu
from napari_unet.training import annotations, loop
from napari_unet.cli import main
from napari_unet.config import TrainConfig
from napari_unet.synth import SynthConfig, synth_dataset

# two steps teach a tiny model nothing: keep its (collapsed) result so file handling can be tested;
# no cells held out (the held-out check has tests of its own)
FAST = ["--iterations", "2", "--patch-size", "32", "--batch-size", "2", "--device", "cpu", "--keep-collapsed",
        "--holdout", "0"]


@pytest.fixture
def files(tmp_path, tiny_model_file):
    """Two synthetic training images with labels, plus the tiny model, in ``tmp_path``."""
    (image, labels), (image2, labels2) = synth_dataset(2, seed=3, config=SynthConfig(shape=(64, 64)))
    paths = {"model": str(tiny_model_file)}
    for name, data in (("img", image), ("lbl", labels), ("img2", image2), ("lbl2", labels2),
                       ("short", labels[:32]), ("zeros", np.zeros_like(labels)), ("fraction", labels + 0.5),
                       ("stack", np.stack([labels, labels]))):
        paths[name] = str(tmp_path / f"{name}.tif")
        tifffile.imwrite(paths[name], data)
    return paths


def listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------------------
# finetune


def test_finetune_writes_exactly_the_model_file_and_it_segments(files, tmp_path, capsys):
    before = listing(tmp_path)
    out = tmp_path / "tuned.safetensors"
    code = main(["finetune", "--image", files["img"], "--labels", files["lbl"], "--region", "8:48,8:48",
                 "--image", files["img2"], "--labels", files["lbl2"], "--model", files["model"],
                 "--out", str(out), "--anchor", "42", *FAST])
    assert code == 0
    assert listing(tmp_path) == before | {"tuned.safetensors"}
    assert capsys.readouterr().out.startswith(f"wrote {out}: 2 steps")
    model = nu.load_model(out, device="cpu")
    assert model.name == "tuned"
    assert (model.history[-1]["kind"], model.history[-1]["steps"]) == ("finetune", 2)
    assert model.history[-1]["config"]["anchor"] == 42.0
    assert main(["segment", files["img"], "--model", str(out), "--out", str(tmp_path / "seg"), "--device", "cpu"]) == 0
    assert tifffile.imread(tmp_path / "seg" / "img_labels.tif").shape == (64, 64)


def test_each_region_applies_to_the_image_before_it(files, tmp_path, monkeypatch):
    seen = {}
    real = loop.iter_finetune

    def spy(model, images, labels, *, regions=None, config=None, **options):
        seen.update(images=images, regions=regions, config=config)
        return real(model, images, labels, regions=regions, config=config, **options)

    monkeypatch.setattr(loop, "iter_finetune", spy)
    code = main(["finetune", "--image", files["img"], "--region", "8:48,8:48", "--labels", files["lbl"],
                 "--region", " 0:10 , 0:64 ", "--image", files["img2"], "--labels", files["lbl2"],
                 "--model", files["model"], "--out", str(tmp_path / "m.safetensors"), "--seed", "7", *FAST])
    assert code == 0
    assert seen["regions"] == [[(8, 48, 8, 48), (0, 10, 0, 64)], None]
    np.testing.assert_array_equal(seen["images"][1], tifffile.imread(files["img2"]))
    assert seen["config"] == TrainConfig(iterations=2, patch_size=32, batch_size=2, seed=7, device="cpu", holdout=0)


def test_finetune_help_says_a_region_belongs_to_the_preceding_image(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["finetune", "--help"])
    assert exit_.value.code == 0
    assert "PRECEDING --image" in capsys.readouterr().out


def test_an_existing_model_file_is_only_replaced_with_overwrite(files, tmp_path, capsys):
    out = tmp_path / "tuned.safetensors"
    out.write_bytes(b"precious")
    arguments = ["finetune", "--image", files["img"], "--labels", files["lbl"], "--model", files["model"],
                 "--out", str(out), *FAST]
    assert main(arguments) != 0
    assert one_error_line(capsys) == f"error: --out {out}: exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"precious"
    assert main([*arguments, "--overwrite"]) == 0
    assert nu.load_model(out, device="cpu").history[-1]["steps"] == 2


def test_a_model_file_written_meanwhile_by_someone_else_is_kept(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "tuned.safetensors"
    real = loop.iter_finetune

    def racing(*args, **options):
        out.write_bytes(b"theirs")
        return real(*args, **options)

    monkeypatch.setattr(loop, "iter_finetune", racing)
    assert main(["finetune", "--image", files["img"], "--labels", files["lbl"], "--model", files["model"],
                 "--out", str(out), *FAST]) != 0
    assert one_error_line(capsys) == f"error: --out {out}: appeared during training; pass --overwrite to replace it"
    assert out.read_bytes() == b"theirs"


FINETUNE_ERRORS = {
    "missing image": (["--image", "{tmp}/nope.tif", "--labels", "{lbl}"],
                      "error: --image {tmp}/nope.tif: no such file"),
    "missing labels": (["--image", "{img}", "--labels", "{tmp}/nope.tif"],
                       "error: --labels {tmp}/nope.tif: no such file"),
    "count mismatch": (["--image", "{img}", "--image", "{img2}", "--labels", "{lbl}"],
                       "error: give one --labels per --image (got 2 --image and 1 --labels)"),
    "region syntax": (["--image", "{img}", "--labels", "{lbl}", "--region", "0:10:0:10"],
                      "error: --region '0:10:0:10': expected Y0:Y1,X0:X1 in pixels (ends exclusive), "
                      "e.g. 0:128,64:256"),
    "region outside": (["--image", "{img}", "--labels", "{lbl}", "--region", "0:10,0:65"],
                       "error: --region 0:10,0:65 (for --image {img}): empty or outside the image of 64x64 pixels"),
    "region empty": (["--image", "{img}", "--labels", "{lbl}", "--region", "5:5,0:10"], "error: --region 5:5,0:10 "),
    "region first": (["--region", "0:10,0:10", "--image", "{img}", "--labels", "{lbl}"],
                     "error: --region 0:10,0:10: give it after the --image it applies to"),
    "label shape": (["--image", "{img}", "--labels", "{short}"],
                    "error: --labels {short}: shape (32, 64), but --image {img} is (64, 64)"),
    "fractional labels": (["--image", "{img}", "--labels", "{fraction}"],
                          "error: --labels {fraction} must hold integers"),
    "stacked image": (["--image", "{stack}", "--labels", "{lbl}"],
                      "error: --image {stack}: shape (2, 64, 64) is a stack"),
    "no cell": (["--image", "{img}", "--labels", "{zeros}"], "error: labels: no annotated cell"),
    "no cell in region": (["--image", "{img}", "--labels", "{lbl}", "--region", "0:2,0:2"],
                          "error: labels: no annotated cell"),
    "suffix": (["--image", "{img}", "--labels", "{lbl}", "--out", "{tmp}/model.pt"],
               "error: --out {tmp}/model.pt: model files end in .safetensors"),
    "out folder": (["--image", "{img}", "--labels", "{lbl}", "--out", "{tmp}/new/m.safetensors"],
                   "error: --out {tmp}/new/m.safetensors: folder {tmp}/new does not exist"),
    "missing model": (["--image", "{img}", "--labels", "{lbl}", "--model", "{tmp}/nope.safetensors"],
                      "error: --model {tmp}/nope.safetensors: no such file"),
    "learning rate": (["--image", "{img}", "--labels", "{lbl}", "--learning-rate", "0"],
                      "error: --learning-rate must be a positive number, got 0.0"),
    "anchor": (["--image", "{img}", "--labels", "{lbl}", "--anchor", "-5"],
               "error: --anchor must be a number >= 0, got -5.0"),
}


@pytest.mark.parametrize("case", sorted(FINETUNE_ERRORS))
def test_finetune_errors_are_one_line_and_write_nothing(files, tmp_path, capsys, case):
    arguments, expected = FINETUNE_ERRORS[case]
    names = {**files, "tmp": str(tmp_path)}
    arguments = [argument.format(**names) for argument in arguments]
    if "--out" not in arguments:
        arguments += ["--out", str(tmp_path / "m.safetensors")]
    if "--model" not in arguments:
        arguments += ["--model", files["model"]]
    before = listing(tmp_path)
    assert main(["finetune", *arguments, *FAST]) in (1, 2)
    assert one_error_line(capsys).startswith(expected.format(**names))
    assert listing(tmp_path) == before


def test_a_diverged_run_is_an_error_and_writes_nothing(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(loop, "weighted_loss", lambda heads, classes, weights: heads[0].sum() * float("nan"))
    before = listing(tmp_path)
    code = main(["finetune", "--image", files["img"], "--labels", files["lbl"], "--model", files["model"],
                 "--out", str(tmp_path / "m.safetensors"), *FAST])
    assert code != 0
    assert one_error_line(capsys).startswith("error: training diverged, nothing written: loss became nan at step 1")
    assert listing(tmp_path) == before


def test_notices_are_printed_and_training_goes_on(files, tmp_path, capsys, monkeypatch):
    original, calls = loop._Training._forward_backward, []

    def step(*args):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return original(*args)

    monkeypatch.setattr(loop._Training, "_forward_backward", step)
    out = tmp_path / "m.safetensors"
    assert main(["finetune", "--image", files["img"], "--labels", files["lbl"], "--model", files["model"],
                 "--out", str(out), *FAST]) == 0
    assert "note: out of memory: continuing with batch size 1" in capsys.readouterr().err
    assert out.is_file()


# --------------------------------------------------------------------------------------
# evaluate


def scores_of(text: str) -> dict[str, str]:
    return {line[:12].strip(): line[12:].strip() for line in text.strip().splitlines()}


def test_evaluate_prints_the_scores(files, tmp_path, capsys):
    truth = tifffile.imread(files["lbl"])
    pred = np.where(truth == truth.max(), 0, truth)  # one cell missed
    tifffile.imwrite(tmp_path / "pred.tif", pred)
    n = np.unique(truth[truth > 0]).size
    assert main(["evaluate", str(tmp_path / "pred.tif"), files["lbl"]]) == 0
    scores = scores_of(capsys.readouterr().out)
    assert scores["objects"] == f"{n - 1} predicted, {n} true"
    assert float(scores["AP@0.5"]) == pytest.approx((n - 1) / n, abs=1e-4)
    assert float(scores["F1@0.5"]) == pytest.approx(2 * (n - 1) / (2 * n - 1), abs=1e-4)
    assert set(scores) == {"objects", "AP@0.5", "AP@0.75", "F1@0.5", "IoU", "Dice", "pixel error", "Rand error"}
    assert main(["evaluate", files["lbl"], files["lbl"], "--json"]) == 0
    perfect = json.loads(capsys.readouterr().out)
    assert perfect["ap50"] == perfect["ap75"] == perfect["iou"] == 1.0
    assert perfect["pixel_error"] == perfect["rand_error"] == 0.0


def test_evaluate_warns_when_pred_looks_like_a_raw_image(files, tmp_path, capsys, rng):
    image = rng.integers(0, 60000, size=tifffile.imread(files["lbl"]).shape).astype(np.uint16)
    tifffile.imwrite(tmp_path / "raw.tif", image)
    assert main(["evaluate", str(tmp_path / "raw.tif"), files["lbl"]]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: PRED {tmp_path / 'raw.tif'} holds ")
    assert "looks like an image, not instance labels" in warnings[0]
    assert "AP@0.5" in captured.out  # still scored: the warning informs, it does not refuse


def test_evaluate_does_not_warn_about_real_labels(files, capsys):
    assert main(["evaluate", files["lbl"], files["lbl"]]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("pred, truth, expected", [
    ("lbl", "short", "error: PRED {lbl} has shape (64, 64), TRUTH {short} has (32, 64)"),
    ("{tmp}/nope.tif", "lbl", "error: PRED {tmp}/nope.tif: no such file"),
    ("fraction", "lbl", "error: PRED {fraction} must hold integers"),
])
def test_evaluate_errors_are_one_line(files, tmp_path, capsys, pred, truth, expected):
    names = {**files, "tmp": str(tmp_path)}
    paths = [files.get(name) or name.format(**names) for name in (pred, truth)]
    assert main(["evaluate", *paths]) in (1, 2)
    assert one_error_line(capsys).startswith(expected.format(**names))


def test_the_console_script_runs(files):
    script = Path(sys.executable).with_name("napari-unet")
    result = subprocess.run([str(script), "evaluate", files["lbl"], files["lbl"]],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "AP@0.5       1.0000" in result.stdout


# --------------------------------------------------------------------------------------
# weights


def test_weights_writes_the_training_weight_map(files, tmp_path, capsys):
    out = tmp_path / "w.tif"
    assert main(["weights", files["lbl"], "--out", str(out), "--w0", "5", "--sigma", "3",
                 "--region", "0:32,0:64"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    weights = tifffile.imread(out)
    labels = tifffile.imread(files["lbl"])
    expected = annotations.training_weight_map(labels, regions=[(0, 32, 0, 64)], config=TrainConfig(w0=5, sigma=3))
    np.testing.assert_array_equal(weights, expected)
    assert (weights[32:] == 0).all() and (weights[:31] > 0).all()


@pytest.mark.parametrize("arguments, expected", [
    (["{lbl}", "--out", "{tmp}/w.png"], "error: --out {tmp}/w.png: weight maps are written as .tif"),
    (["{lbl}", "--out", "{tmp}/new/w.tif"], "error: --out {tmp}/new/w.tif: folder {tmp}/new does not exist"),
    (["{lbl}", "--out", "{tmp}/w.tif", "--sigma", "0"], "error: sigma must be a positive number, got 0.0"),
    (["{lbl}", "--out", "{tmp}/w.tif", "--w0", "-1"], "error: w0 must be a number >= 0, got -1.0"),
    (["{stack}", "--out", "{tmp}/w.tif"], "error: LABELS {stack}: shape (2, 64, 64); weight maps need 2-D"),
    (["{tmp}/nope.tif", "--out", "{tmp}/w.tif"], "error: LABELS {tmp}/nope.tif: no such file"),
    (["{lbl}", "--out", "{tmp}/w.tif", "--region", "0:99,0:10"],
     "error: --region 0:99,0:10 (for LABELS {lbl}): empty or outside"),
])
def test_weights_errors_are_one_line_and_write_nothing(files, tmp_path, capsys, arguments, expected):
    names = {**files, "tmp": str(tmp_path)}
    before = listing(tmp_path)
    assert main(["weights", *(argument.format(**names) for argument in arguments)]) in (1, 2)
    assert one_error_line(capsys).startswith(expected.format(**names))
    assert listing(tmp_path) == before


def test_a_collapsed_model_is_not_written_silently(files, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    arguments = ["finetune", "--image", files["img"], "--labels", files["lbl"], "--model", files["model"],
                 "--out", str(out), *[a for a in FAST if a != "--keep-collapsed"]]
    assert main(arguments) != 0
    line = one_error_line(capsys)
    assert line.startswith("error: nothing written: after 2 steps the model finds none of the") and "--keep-collapsed" in line
    assert not out.exists()


def test_finetune_runs_for_a_time_budget(files, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    code = main(["finetune", "--image", files["img"], "--labels", files["lbl"], "--model", files["model"],
                 "--out", str(out), "--minutes", "0.02", "--patch-size", "32", "--batch-size", "2", "--device", "cpu",
                 "--keep-collapsed"])
    assert code == 0
    entry = nu.load_model(out, device="cpu").history[-1]
    assert entry["config"]["minutes"] == 0.02 and entry["config"]["iterations"] == 100_000
    assert 1 <= entry["steps"] < 100_000
