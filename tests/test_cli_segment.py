"""`napari-unet segment / models / demo`: outputs, and one-line errors for every bad input."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_unet as nu
from napari_unet.cli import main
from napari_unet.io import output_stem, read_image

SCRIPT = Path(sys.executable).parent / "napari-unet"


def _run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    return code, captured.out, captured.err


def _errors(stderr: str) -> list[str]:
    """The error lines (an untrained tiny model's results also draw plausibility warnings, and
    the noise images here are noted as smoothed)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("warning: ", "note: "))]


def _written(stdout: str) -> list[str]:
    """The files each "<input>: <summary> -> <file>, <file>" line names."""
    return [name for line in stdout.splitlines() if " -> " in line for name in line.split(" -> ")[1].split(", ")]


@pytest.fixture
def good_image(tmp_path, rng):
    path = tmp_path / "good.tif"
    tifffile.imwrite(path, rng.random((40, 52)).astype(np.float32))
    return path


def _missing(folder, rng):
    return folder / "missing.tif"


def _corrupt_tiff(folder, rng):
    path = folder / "corrupt.tif"
    path.write_bytes(rng.bytes(600))
    return path


def _truncated_tiff(folder, rng):
    whole = folder / "whole.tif"
    tifffile.imwrite(whole, rng.random((64, 64)).astype(np.float32))
    path = folder / "truncated.tif"
    path.write_bytes(whole.read_bytes()[:4000])
    whole.unlink()
    return path


def _four_d(folder, rng):
    path = folder / "four_d.tif"
    tifffile.imwrite(path, rng.random((6, 6, 16, 16)).astype(np.float32), photometric="minisblack")
    return path


def _five_d(folder, rng):
    path = folder / "five_d.tif"
    tifffile.imwrite(path, rng.random((2, 2, 2, 16, 16)).astype(np.float32))
    return path


def _empty(folder, rng):
    path = folder / "empty.tif"
    path.touch()
    return path


def _directory(folder, rng):
    path = folder / "folder.tif"
    path.mkdir()
    return path


def _unreadable_extension(folder, rng):
    path = folder / "notes.txt"
    path.write_text("not an image")
    return path


def _junk_png(folder, rng):
    path = folder / "junk.png"
    path.write_bytes(rng.bytes(300))
    return path


def _pickled_npy(folder, rng):
    path = folder / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return path


def _complex_tiff(folder, rng):
    path = folder / "complex.tif"
    tifffile.imwrite(path, np.zeros((16, 16), dtype=np.complex64))
    return path


BAD_INPUTS = [
    (_missing, "no such file"),
    (_corrupt_tiff, "not a TIFF file"),
    (_truncated_tiff, "cannot be read as TIFF"),
    (_four_d, r"image shape \(6, 6, 16, 16\) is not .* cannot be guessed: pass axes="),
    (_five_d, r"image shape \(2, 2, 2, 16, 16\) is not"),
    (_empty, r"empty file \(0 bytes\)"),
    (_directory, "a folder with no image files"),
    (_unreadable_extension, r"unsupported file type '.txt' \(use .tif"),
    (_junk_png, "not a PNG file"),
    (_pickled_npy, "cannot be read as NPY"),
    (_complex_tiff, "image dtype must be bool, integer or float, got complex64"),
]


@pytest.mark.parametrize("make_bad, message", BAD_INPUTS, ids=[case[0].__name__.strip("_") for case in BAD_INPUTS])
def test_a_bad_input_is_one_error_line_and_the_others_are_still_written(
        make_bad, message, good_image, tiny_model_file, tmp_path, rng, capsys):
    bad = make_bad(tmp_path, rng)
    later = tmp_path / "later.tif"
    tifffile.imwrite(later, rng.integers(0, 255, (24, 20), dtype=np.uint8))
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, "segment", good_image, bad, later, "--model", tiny_model_file,
                                "--out", out, "--device", "cpu")
    assert code != 0
    (line,) = _errors(stderr)
    assert line.startswith(f"error: {bad}: ")
    assert re.search(message, line), line
    assert sorted(p.name for p in out.iterdir()) == ["good_labels.tif", "later_labels.tif", "summary.csv"]
    assert _written(stdout) == [str(out / "good_labels.tif"), str(out / "later_labels.tif")]


def test_every_bad_input_in_one_call_gives_one_line_each(good_image, tiny_model_file, tmp_path, rng, capsys):
    bad = [make(tmp_path, rng) for make, _ in BAD_INPUTS]
    code, _, stderr = _run(capsys, "segment", *bad, good_image, "--model", tiny_model_file,
                           "--out", tmp_path / "out", "--device", "cpu")
    assert code == 1
    lines = _errors(stderr)
    assert [line.split(": ")[0] for line in lines] == ["error"] * len(bad)
    assert [line.split(": ")[1] for line in lines] == [str(path) for path in bad]
    assert (tmp_path / "out" / "good_labels.tif").is_file()


@pytest.mark.parametrize("shape, dtype, labels_shape", [
    ((40, 52), np.float32, (40, 52)),
    ((6, 40, 52), np.uint16, (6, 40, 52)),  # Z, Y, X stack: labels per plane
    ((2, 40, 52), np.uint16, (40, 52)),  # C, Y, X: one channel segmented
    ((40, 52, 3), np.uint8, (40, 52)),  # RGB: one label image
    ((1, 1), np.float32, (1, 1)),
])
def test_outputs_have_the_image_shape(shape, dtype, labels_shape, tiny_model_file, tmp_path, rng, capsys):
    path = tmp_path / "cells.tif"
    data = (rng.random(shape) * 200).astype(dtype)
    tifffile.imwrite(path, data, photometric="rgb" if shape[-1] == 3 else "minisblack")
    code, _, stderr = _run(capsys, "segment", path, "--model", tiny_model_file, "--out", tmp_path / "out",
                           "--device", "cpu", "--probabilities")
    assert code == 0 and _errors(stderr) == []
    labels = tifffile.imread(tmp_path / "out" / "cells_labels.tif")
    probabilities = tifffile.imread(tmp_path / "out" / "cells_probabilities.tif")
    assert labels.shape == labels_shape and labels.dtype == np.uint8
    assert probabilities.shape == (3,) + labels_shape and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=0), 1, atol=1e-5)
    for name in ("cells_labels.tif", "cells_probabilities.tif"):
        # a (3, ...) result is planes, not colour, for every TIFF reader
        with tifffile.TiffFile(tmp_path / "out" / name) as written:
            assert written.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK


def test_labels_match_the_python_api(tiny_model, tiny_model_file, tmp_path, rng, capsys):
    image = rng.random((48, 40)).astype(np.float32)
    np.save(tmp_path / "cells.npy", image)
    code, _, _ = _run(capsys, "segment", tmp_path / "cells.npy", "--model", tiny_model_file,
                      "--out", tmp_path / "out", "--device", "cpu", "--tile-size", "16", "--probabilities")
    assert code == 0
    expected = nu.predict_probabilities(image, tiny_model, device="cpu")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out" / "cells_probabilities.tif"), expected, atol=1e-5)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "cells_labels.tif"),
                                  nu.segment(image, tiny_model, device="cpu"))


@pytest.mark.parametrize("seeds, cells", [("distance", 2), ("interior", 1)])
def test_the_seeds_option_reaches_the_labels(seeds, cells, tiny_model_file, tmp_path, monkeypatch, capsys):
    from test_labels import _predicts_two_overlapping_discs

    image = _predicts_two_overlapping_discs(monkeypatch)  # one blob with a neck, no predicted boundary
    np.save(tmp_path / "cells.npy", image)
    code, _, _ = _run(capsys, "segment", tmp_path / "cells.npy", "--model", tiny_model_file,
                      "--out", tmp_path / "out", "--device", "cpu", "--seeds", seeds)
    assert code == 0
    assert tifffile.imread(tmp_path / "out" / "cells_labels.tif").max() == cells


def test_the_probabilities_option_only_adds_a_file(tiny_model_file, good_image, tmp_path, capsys):
    _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", tmp_path / "plain", "--device", "cpu")
    _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", tmp_path / "both", "--device", "cpu",
         "--probabilities")
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["good_labels.tif", "summary.csv"]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "plain" / "good_labels.tif"),
                                  tifffile.imread(tmp_path / "both" / "good_labels.tif"))


@pytest.mark.parametrize("name, stem", [
    ("cells.tif", "cells"), ("cells.v2.tiff", "cells.v2"), ("scan.ome.tif", "scan"), ("a.b.npy", "a.b"),
])
def test_output_names_keep_all_but_the_image_suffix(name, stem):
    assert output_stem(Path("folder") / name) == stem


def test_inputs_that_would_share_an_output_name_do_not_overwrite(tiny_model_file, tmp_path, rng, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "img.tif", tmp_path / "b" / "img.tif"
    tifffile.imwrite(first, np.zeros((16, 16), np.uint8))
    tifffile.imwrite(second, rng.random((20, 24)).astype(np.float32))
    code, _, stderr = _run(capsys, "segment", first, second, "--model", tiny_model_file,
                           "--out", tmp_path / "out", "--device", "cpu")
    assert code == 1
    (line,) = _errors(stderr)
    assert line.startswith(f"error: {second}: its results would overwrite those of {first}")
    assert tifffile.imread(tmp_path / "out" / "img_labels.tif").shape == (16, 16)


def _text_file(folder):
    path = folder / "model.safetensors"
    path.write_text("hello")
    return path


def _tiff_as_model(folder):
    path = folder / "image.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    return path


def _model_folder(folder):
    path = folder / "models"
    path.mkdir()
    return path


@pytest.mark.parametrize("make_model, message", [
    (lambda folder: folder / "absent.safetensors", "no such file, and not a shipped model name"),
    (_text_file, r"not a model file \(only 5 bytes\)"),
    (_tiff_as_model, "not a safetensors model file"),
    (_model_folder, "is a folder, not a model file"),
])
def test_a_bad_model_is_one_error_line_and_nothing_is_written(make_model, message, good_image, tmp_path, capsys):
    model = make_model(tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, "segment", good_image, "--model", model, "--out", out)
    assert code == 2 and stdout == ""
    (line,) = _errors(stderr)
    assert line.startswith(f"error: --model {model}: ") and re.search(message, line)
    assert not out.exists()


def test_out_that_is_a_file_is_refused_and_kept(good_image, tiny_model_file, tmp_path, capsys):
    out = tmp_path / "results"
    out.write_text("keep me")
    for target, message in ((out, f"error: --out {out}: is a file, not a folder"),
                            (out / "sub", f"error: --out {out / 'sub'}: {out} is a file, not a folder")):
        code, _, stderr = _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", target)
        assert code == 2 and _errors(stderr) == [message]
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("options, message", [
    (["--prune-level", "5"], "error: --prune-level: only a UNet++ trained with deep supervision can be pruned"),
    (["--device", "quantum"], "error: device 'quantum' is not a device name"),
])
def test_bad_options_are_one_line_before_any_file_is_read(options, message, good_image, tiny_model_file,
                                                          tmp_path, capsys):
    code, _, stderr = _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", tmp_path / "out",
                           *options)
    assert code == 2 and len(_errors(stderr)) == 1 and _errors(stderr)[0].startswith(message)
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_with_two(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["segment", "--out", "x"])
    assert raised.value.code == 2 and "the following arguments are required: INPUT" in capsys.readouterr().err


def test_models_lists_every_shipped_model(capsys):
    code, stdout, stderr = _run(capsys, "models")
    assert code == 0
    assert [line.split("\t")[0] for line in stdout.splitlines()] == nu.list_models()
    if not nu.list_models():
        assert "no shipped models" in stderr


def test_models_says_so_when_none_are_shipped(monkeypatch, capsys):
    monkeypatch.setattr("napari_unet.models.list_models", lambda: [])
    code, stdout, stderr = _run(capsys, "models")
    assert code == 0 and stdout == ""
    assert _errors(stderr) == ["no shipped models are installed; pass a .safetensors file to --model"]


def test_demo_segments_and_scores_the_sample(tiny_model_file, tmp_path, capsys):
    code, stdout, _ = _run(capsys, "demo", "--model", tiny_model_file, "--out", tmp_path / "demo", "--device", "cpu")
    assert code == 0 and "AP@0.5 = " in stdout
    labels = read_image(tmp_path / "demo" / "sample_nuclei_labels.tif")
    assert labels.shape == read_image(tmp_path / "demo" / "sample_nuclei.tif").shape


def test_demo_with_a_bad_model_writes_nothing(tmp_path, capsys):
    code, _, stderr = _run(capsys, "demo", "--model", tmp_path / "absent.safetensors", "--out", tmp_path / "demo")
    assert code == 2 and _errors(stderr)[0].startswith("error: --model ")
    assert not (tmp_path / "demo").exists()


def test_the_console_script_runs(tiny_model_file, good_image, tmp_path):
    environment = dict(os.environ, PYTHONWARNINGS="ignore")
    listed = subprocess.run([SCRIPT, "models"], capture_output=True, text=True, env=environment, timeout=300)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == nu.list_models()
    missing = tmp_path / "missing.tif"
    run = subprocess.run([SCRIPT, "segment", good_image, missing, "--model", tiny_model_file, "--out", tmp_path / "out",
                          "--device", "cpu"], capture_output=True, text=True, env=environment, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert _errors(run.stderr.strip()) == [f"error: {missing}: no such file"]
    assert _written(run.stdout) == [str(tmp_path / "out" / "good_labels.tif")]
    assert tifffile.imread(tmp_path / "out" / "good_labels.tif").shape == (40, 52)


@pytest.mark.parametrize("module", ["napari_unet", "napari_unet.cli"])
def test_the_command_runs_as_a_module(module):
    environment = dict(os.environ, PYTHONWARNINGS="ignore")
    listed = subprocess.run([sys.executable, "-m", module, "models"], capture_output=True, text=True,
                            env=environment, timeout=300)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == nu.list_models()


def test_rois_and_outlines_are_written_on_request(tiny_model_file, good_image, tmp_path, capsys):
    from roifile import roiread

    code, stdout, _ = _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", tmp_path / "out",
                           "--device", "cpu", "--save-rois", "--save-outlines")
    assert code == 0
    labels = tifffile.imread(tmp_path / "out" / "good_labels.tif")
    objects = np.unique(labels[labels > 0]).size
    assert objects and len(roiread(tmp_path / "out" / "good_rois.zip")) == objects
    lines = (tmp_path / "out" / "good_outlines.txt").read_text().splitlines()
    assert len(lines) == objects
    assert str(tmp_path / "out" / "good_rois.zip") in _written(stdout)


def test_existing_results_are_kept_unless_overwrite(tiny_model_file, good_image, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", out, "--device", "cpu")[0] == 0
    (out / "good_labels.tif").write_bytes(b"keep")
    code, _, stderr = _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", out, "--device", "cpu")
    assert code == 1 and "exists; pass --overwrite to replace it" in stderr
    assert (out / "good_labels.tif").read_bytes() == b"keep"
    code, _, _ = _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", out, "--device", "cpu",
                      "--overwrite")
    assert code == 0 and tifffile.imread(out / "good_labels.tif").shape == (40, 52)


def test_folders_and_quoted_globs_are_inputs_and_a_summary_is_written(tiny_model_file, tmp_path, rng, capsys):
    import csv

    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("a.tif", "b.tif", "c.png"):
        tifffile.imwrite(folder / name, rng.integers(0, 200, (24, 30), dtype=np.uint8)) if name.endswith(".tif") \
            else (folder / name).write_bytes(b"junk")
    (folder / "notes.txt").write_text("not an image")
    code, stdout, stderr = _run(capsys, "segment", folder, str(folder / "a*.tif"), "--model", tiny_model_file,
                                "--out", tmp_path / "out", "--device", "cpu", "--overwrite")
    rows = list(csv.DictReader(open(tmp_path / "out" / "summary.csv")))
    assert [Path(row["file"]).name for row in rows] == ["a.tif", "b.tif", "c.png", "a.tif"]
    assert [row["status"] for row in rows][:2] == ["ok", "ok"] and rows[2]["status"].startswith("error:")
    assert rows[0]["objects"].isdigit() and float(rows[0]["seconds"]) >= 0
    assert code == 1  # c.png is not a PNG; the repeated a.tif would overwrite its own results
    assert "notes.txt" not in stdout + stderr


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_results_follow_the_umask(umask, mode, tiny_model_file, good_image, tmp_path, capsys):
    previous = os.umask(umask)
    try:
        _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", tmp_path / "out", "--device", "cpu",
             "--save-rois")
    finally:
        os.umask(previous)
    written = list((tmp_path / "out").iterdir())
    assert len(written) == 3  # labels, ROIs, summary
    for path in written:
        assert path.stat().st_mode & 0o777 == mode, path


def _predicts_a_soft_cell_and_a_speck(monkeypatch, specks=((40, 34),)):
    """Every prediction: a disc whose probabilities fade from its centre to its rim, and a
    20 px speck (so thresholds move the outline and a minimum size removes the speck); the
    n-th plane predicted has its speck at ``specks[n % len(specks)]``."""
    from napari_unet.inference import segment

    yy, xx = np.mgrid[:48, :40]
    radius = np.hypot(yy - 20, xx - 18)
    boundary = np.where(radius < 16, 0.05, 0.0)
    planes = []
    for y, x in specks:
        interior = np.clip(1.0 - radius / 16, 0, 1) * 0.9
        interior[np.hypot(yy - y, xx - x) < 2.6] = 0.95
        planes.append(np.stack([1 - interior - boundary, interior, boundary]).astype(np.float32))
    calls = []

    def predicted(source, runner, tiles, geometry):
        probabilities = planes[len(calls) % len(planes)]
        calls.append(1)
        for tile in tiles:
            yield tile, probabilities[:, tile.y, tile.x]

    monkeypatch.setattr(segment, "predict_plane_tiles", predicted)
    return np.zeros((48, 40), np.float32)


@pytest.mark.parametrize("options, fields", [
    (["--min-size", "30"], dict(min_size=30)),
    (["--threshold", "0.92"], dict(threshold=0.92)),
    (["--foreground", "0.6"], dict(foreground=0.6)),
])
def test_post_processing_options_reach_the_labels(options, fields, tiny_model, tiny_model_file, tmp_path,
                                                  monkeypatch, capsys):
    image = _predicts_a_soft_cell_and_a_speck(monkeypatch)
    np.save(tmp_path / "cells.npy", image)
    code, _, _ = _run(capsys, "segment", tmp_path / "cells.npy", "--model", tiny_model_file, "--out",
                      tmp_path / "out", "--device", "cpu", *options)
    assert code == 0
    expected = nu.segment(image, tiny_model, device="cpu", **fields)
    assert not np.array_equal(expected, nu.segment(image, tiny_model, device="cpu"))  # the option matters here
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "cells_labels.tif"), expected)


def test_split_depth_option_decides_whether_a_dumbbell_is_split(tiny_model_file, tmp_path, monkeypatch, capsys):
    from napari_unet.inference import segment

    yy, xx = np.mgrid[:40, :60]
    cell = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 100) | ((yy - 20) ** 2 + (xx - 36) ** 2 <= 64)
    probabilities = np.stack([~cell, cell, np.zeros_like(cell)]).astype(np.float32)
    monkeypatch.setattr(segment, "predict_plane_tiles", lambda source, runner, tiles, geometry: (
        (tile, probabilities[:, tile.y, tile.x]) for tile in tiles))
    np.save(tmp_path / "cells.npy", np.zeros((40, 60), np.float32))
    counts = {}
    for depth in ("0.5", "6"):
        code, _, _ = _run(capsys, "segment", tmp_path / "cells.npy", "--model", tiny_model_file, "--out",
                          tmp_path / depth, "--device", "cpu", "--split-depth", depth)
        assert code == 0
        counts[depth] = int(tifffile.imread(tmp_path / depth / "cells_labels.tif").max())
    assert counts == {"0.5": 2, "6": 1}


def test_flips_option_averages_mirrored_predictions(tiny_model, tiny_model_file, tmp_path, capsys):
    image = np.random.default_rng(3).normal(size=(40, 48)).astype(np.float32)
    np.save(tmp_path / "cells.npy", image)
    code, _, _ = _run(capsys, "segment", tmp_path / "cells.npy", "--model", tiny_model_file, "--out", tmp_path / "out",
                      "--device", "cpu", "--precision", "fp32", "--flips", "--probabilities")
    assert code == 0
    written = tifffile.imread(tmp_path / "out" / "cells_probabilities.tif")
    expected = nu.predict_probabilities(image, tiny_model, device="cpu", precision="fp32", flips=True)
    plain = nu.predict_probabilities(image, tiny_model, device="cpu", precision="fp32")
    np.testing.assert_allclose(written, expected, atol=1e-5)
    assert np.abs(written - plain).max() > 1e-3


def test_every_option_has_help_text():
    from napari_unet.cli.parser import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


def test_a_slow_or_inexact_precision_is_noted(tiny_model_file, good_image, tmp_path, capsys):
    code, _, stderr = _run(capsys, "segment", good_image, "--model", tiny_model_file, "--out", tmp_path / "out",
                           "--device", "cpu", "--precision", "fp16")
    assert code == 0 and "note: --precision fp16: fp16 on the CPU is emulated" in stderr
