"""Microscopy formats: OME-TIFF / ImageJ axes honoured, OME-Zarr in and out, CZI / ND2 / LIF through bioio."""

import json
import os
import sys
import types

import numpy as np
import pytest
import tifffile

import napari_unet as nu
from napari_unet.cli import main
from napari_unet.io import write_ome_zarr
from napari_unet.io import ImageFile, read_image, read_image_file


@pytest.fixture
def czyx():
    """(C=2, Z=3, Y=40, X=52): two different channels of a small volume."""
    rng = np.random.default_rng(7)
    return (rng.random((2, 3, 40, 52)) * 1000).astype(np.uint16)


def test_ome_tiff_axes_and_pixel_size_are_read(czyx, tmp_path):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, czyx, metadata={"axes": "CZYX", "PhysicalSizeX": 650, "PhysicalSizeXUnit": "nm",
                                           "PhysicalSizeY": 0.65, "PhysicalSizeZ": 2.0})
    file = read_image_file(path)
    assert file.axes == "CZYX" and file.data.shape == czyx.shape
    assert file.pixel_size == pytest.approx({"X": 0.65, "Y": 0.65, "Z": 2.0})
    np.testing.assert_array_equal(file.data, czyx)
    np.testing.assert_array_equal(read_image(path), czyx)  # read_image is unchanged


def test_imagej_hyperstack_axes_and_pixel_size_are_read(czyx, tmp_path):
    path = tmp_path / "hyperstack.tif"
    zcyx = czyx.transpose(1, 0, 2, 3)
    tifffile.imwrite(path, zcyx, imagej=True, resolution=(4.0, 4.0),
                     metadata={"axes": "ZCYX", "unit": "um", "spacing": 1.5})
    file = read_image_file(path)
    assert (file.axes, file.data.shape) == ("ZCYX", zcyx.shape)
    assert file.pixel_size == pytest.approx({"X": 0.25, "Y": 0.25, "Z": 1.5})


@pytest.mark.parametrize("axes, objects", [("TYX", 2), ("ZYX", 4)])
def test_ome_tiff_frames_are_segmented_one_by_one_and_planes_as_a_volume(axes, objects, tiny_model_file, tmp_path,
                                                                        monkeypatch, capsys):
    from test_cli_segment import _predicts_a_soft_cell_and_a_speck

    specks = ((40, 34), (6, 4), (42, 4))
    plane = _predicts_a_soft_cell_and_a_speck(monkeypatch, specks=specks)
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, np.stack([plane] * 3), metadata={"axes": axes})
    assert read_image_file(path).axes == axes
    # the specks are one plane thick: smaller than the ball a Z stack's default minimum size asks for
    assert main(["segment", str(path), "--model", str(tiny_model_file), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--min-size", "10"]) == 0
    labels = tifffile.imread(tmp_path / "out" / "movie_labels.tif")
    assert labels.shape == (3, 48, 40)
    assert [np.unique(frame[frame > 0]).size for frame in labels] == [2, 2, 2]
    # frames restart their ids (T: 2 ids in all); planes are one volume (Z: the disc once, 3 specks)
    assert np.unique(labels[labels > 0]).size == objects
    if axes == "ZYX":
        assert len(set(labels[:, 20, 18].tolist())) == 1  # the disc keeps its id through the planes
        assert len({int(labels[z, y, x]) for z, (y, x) in enumerate(specks)}) == 3


def test_length_one_axes_are_dropped_and_plain_files_say_nothing(czyx, tmp_path):
    tifffile.imwrite(tmp_path / "one_frame.ome.tif", czyx[:, :1], metadata={"axes": "CTYX"})
    file = read_image_file(tmp_path / "one_frame.ome.tif")
    assert (file.axes, file.data.shape) == ("CYX", (2, 40, 52))
    tifffile.imwrite(tmp_path / "plain.tif", czyx, photometric="minisblack")
    np.save(tmp_path / "plain.npy", czyx[0, 0])
    for name in ("plain.tif", "plain.npy"):
        file = read_image_file(tmp_path / name)
        assert isinstance(file, ImageFile) and (file.axes, file.pixel_size) == (None, None)
        np.testing.assert_array_equal(file.data, read_image(tmp_path / name))


def test_a_czyx_ome_tiff_is_segmented_by_channel_never_as_planes(czyx, tiny_model, tiny_model_file, tmp_path,
                                                                 capsys):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, czyx, metadata={"axes": "CZYX"})
    code = main(["segment", str(path), "--model", str(tiny_model_file), "--out", str(tmp_path / "out"),
                 "--channel", "1", "--probabilities", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    probabilities = read_image(tmp_path / "out" / "cells_probabilities.tif")
    labels = read_image(tmp_path / "out" / "cells_labels.tif")
    # channel 1 of a 3-plane volume, not 2 x 3 = 6 planes
    assert labels.shape == (3, 40, 52) and probabilities.shape == (3, 3, 40, 52)
    expected = nu.predict_probabilities(czyx[1], tiny_model, axes="ZYX", device="cpu")
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert "CZYX" in (tmp_path / "out" / "summary.csv").read_text()


def test_axes_given_on_the_command_line_win_over_the_file(czyx, tiny_model_file, tmp_path, capsys):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, czyx[0], metadata={"axes": "ZYX"})
    assert main(["segment", str(path), "--model", str(tiny_model_file), "--out", str(tmp_path / "out"),
                 "--axes", "CYX", "--channel", "0", "--device", "cpu"]) == 0
    assert read_image(tmp_path / "out" / "cells_labels.tif").shape == (40, 52)


@pytest.fixture
def zarr():
    return pytest.importorskip("zarr")


def test_ome_zarr_round_trips_lazily_with_axes_and_pixel_size(czyx, tmp_path, zarr):
    path = write_ome_zarr(tmp_path / "cells.ome.zarr", czyx.transpose(1, 0, 2, 3), "ZCYX",
                          pixel_size={"X": 0.5, "Y": 0.5, "Z": 2.0}, chunk_size=16)
    attributes = json.loads((path / ".zattrs").read_text())
    assert [axis["name"] for axis in attributes["multiscales"][0]["axes"]] == ["c", "z", "y", "x"]  # NGFF order
    file = read_image_file(path)
    assert file.axes == "CZYX" and file.pixel_size == {"Z": 2.0, "Y": 0.5, "X": 0.5}
    assert type(file.data).__module__.startswith("dask") and file.data.chunksize == (1, 1, 16, 16)
    np.testing.assert_array_equal(np.asarray(file.data), czyx)


def test_lazy_data_is_written_one_chunk_at_a_time(tmp_path, zarr):
    import dask.array as da

    blocks = []

    def labels_of(block):
        blocks.append(block.shape)
        return (block > 0.5).astype(np.uint32)

    image = da.from_array(np.random.default_rng(0).random((64, 96)), chunks=16)
    path = write_ome_zarr(tmp_path / "labels.ome.zarr", image.map_blocks(labels_of, dtype=np.uint32), "YX",
                          labels=True, chunk_size=16)
    computed = [shape for shape in blocks if 0 not in shape]  # dask first calls it on an empty block for its type
    assert len(computed) == 4 * 6 and set(computed) == {(16, 16)}  # never the whole image at once
    assert json.loads((path / "0" / ".zarray").read_text())["chunks"] == [16, 16]
    np.testing.assert_array_equal(np.asarray(read_image_file(path).data), (np.asarray(image) > 0.5))


def test_ome_zarr_0_5_metadata_is_read(czyx, tmp_path, zarr):
    group = zarr.open_group(str(tmp_path / "v05.zarr"), mode="w", zarr_format=3)
    group.create_array("s0", data=czyx[0])
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{
        "axes": [{"name": "z", "type": "space", "unit": "micrometer"},
                 {"name": "y", "type": "space", "unit": "micrometer"},
                 {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": [{"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [3.0, 0.2, 0.2]}]}]}]}
    file = read_image_file(tmp_path / "v05.zarr")
    assert (file.axes, file.pixel_size) == ("ZYX", {"Z": 3.0, "Y": 0.2, "X": 0.2})
    np.testing.assert_array_equal(np.asarray(file.data), czyx[0])


def test_a_zarr_folder_that_is_not_ome_is_refused(tmp_path, zarr):
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w").create_array("a", shape=(4, 4), dtype="u1")
    with pytest.raises(ValueError, match=r"plain.zarr: a zarr folder but not an OME-Zarr image"):
        read_image_file(tmp_path / "plain.zarr")


def test_ome_zarr_in_and_labels_out_chunk_by_chunk(tmp_path, zarr, capsys):
    from napari_unet.sample_data import sample_nuclei

    image, _ = sample_nuclei()
    write_ome_zarr(tmp_path / "nuclei.ome.zarr", image[:160, :192], "YX", pixel_size={"X": 0.3, "Y": 0.3},
                   chunk_size=64)
    common = ["--model", "nuclei", "--device", "cpu", "--diameter", "16"]
    assert main(["segment", str(tmp_path / "nuclei.ome.zarr"), "--out", str(tmp_path / "tif"), *common]) == 0
    assert main(["segment", str(tmp_path / "nuclei.ome.zarr"), "--out", str(tmp_path / "zarr"),
                 "--labels-format", "ome-zarr", *common]) == 0
    out = tmp_path / "zarr" / "nuclei_labels.ome.zarr"
    attributes = json.loads((out / ".zattrs").read_text())
    assert "image-label" in attributes
    labels = read_image_file(out)
    assert labels.axes == "YX" and labels.pixel_size == {"Y": 0.3, "X": 0.3}
    chunked, whole = np.asarray(labels.data), read_image(tmp_path / "tif" / "nuclei_labels.tif")
    assert chunked.shape == whole.shape and whole.max() > 20
    # the same cells, numbered differently: every chunked cell overlaps one whole-image cell
    pairs = {(a, b) for a, b in zip(chunked.ravel(), whole.ravel()) if a and b}
    matched = sum(1 for cell in np.unique(chunked[chunked > 0]) if len({b for a, b in pairs if a == cell}) == 1)
    assert matched >= 0.9 * len(np.unique(chunked[chunked > 0]))
    assert abs(len(np.unique(chunked)) - len(np.unique(whole))) <= 0.1 * whole.max()


def test_ome_zarr_output_replaces_an_old_one_only_with_overwrite(tiny_model_file, tmp_path, zarr, capsys):
    np.save(tmp_path / "image.npy", np.random.default_rng(0).random((48, 48)).astype(np.float32))
    argv = ["segment", str(tmp_path / "image.npy"), "--model", str(tiny_model_file), "--out", str(tmp_path / "out"),
            "--labels-format", "ome-zarr", "--probabilities", "--device", "cpu"]
    previous = os.umask(0o022)
    try:
        assert main(argv) == 0
        assert main(argv) == 1 and "exists; pass --overwrite" in capsys.readouterr().err
        assert main(argv + ["--overwrite"]) == 0
    finally:
        os.umask(previous)
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == ["image_labels.ome.zarr", "image_probabilities.ome.zarr", "summary.csv"]  # no leftovers
    assert read_image_file(tmp_path / "out" / "image_probabilities.ome.zarr").axes == "CYX"
    assert (tmp_path / "out" / "image_labels.ome.zarr" / ".zattrs").stat().st_mode & 0o777 == 0o644


def test_ome_zarr_output_refuses_roi_files(tiny_model_file, tmp_path, capsys):
    np.save(tmp_path / "image.npy", np.zeros((48, 48), dtype=np.float32))
    assert main(["segment", str(tmp_path / "image.npy"), "--model", str(tiny_model_file), "--out",
                 str(tmp_path / "out"), "--labels-format", "ome-zarr", "--save-rois"]) == 2
    assert "--save-rois and --save-outlines need the labels in memory" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".czi", ".nd2", ".lif"])
def test_a_missing_formats_extra_is_named(suffix, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bioio", None)  # as if bioio were not installed
    path = tmp_path / f"scan{suffix}"
    path.write_bytes(b"not read")
    with pytest.raises(ValueError, match=rf'scan\{suffix}: reading \{suffix} files needs bioio .*'
                                         r'pip install "napari-unet\[formats\]"'):
        read_image_file(path)
    assert main(["segment", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 1
    assert 'pip install "napari-unet[formats]"' in capsys.readouterr().err


def test_a_missing_zarr_is_named(tiny_model_file, tmp_path, monkeypatch, capsys):
    (tmp_path / "image.zarr").mkdir()
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(ValueError, match=r'image.zarr: OME-Zarr needs the zarr package: .*napari-unet\[zarr\]'):
        read_image_file(tmp_path / "image.zarr")
    np.save(tmp_path / "image.npy", np.zeros((48, 48), dtype=np.float32))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None if name == "zarr" else object())
    assert main(["segment", str(tmp_path / "image.npy"), "--model", str(tiny_model_file), "--out",
                 str(tmp_path / "out"), "--labels-format", "ome-zarr"]) == 2
    assert 'error: --labels-format ome-zarr needs the zarr package: pip install "napari-unet[zarr]"' in \
        capsys.readouterr().err
    assert not (tmp_path / "out" / "image_labels.ome.zarr").exists()


class _FakeBioImage:
    """What bioio gives for a CZI scene: TCZYX dask data, dims and physical pixel sizes."""

    data = np.arange(2 * 3 * 8 * 10, dtype=np.uint16).reshape(1, 2, 3, 8, 10)

    def __init__(self, path):
        import dask.array as da

        self.dask_data = da.from_array(self.data)
        self.dims = types.SimpleNamespace(order="TCZYX")
        self.physical_pixel_sizes = types.SimpleNamespace(Z=1.5, Y=0.2, X=0.2)


def test_bioio_files_are_read_lazily_with_their_axes(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bioio", types.SimpleNamespace(BioImage=_FakeBioImage))
    (tmp_path / "scan.czi").write_bytes(b"stand-in")
    file = read_image_file(tmp_path / "scan.czi")
    assert (file.axes, file.data.shape, file.pixel_size) == ("CZYX", (2, 3, 8, 10), {"Z": 1.5, "Y": 0.2, "X": 0.2})
    np.testing.assert_array_equal(np.asarray(file.data), _FakeBioImage.data[0])


def test_a_reader_that_fails_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    def broken(path):
        raise RuntimeError("no plugin can read this file\nsee the list of plugins")

    monkeypatch.setitem(sys.modules, "bioio", types.SimpleNamespace(BioImage=broken))
    (tmp_path / "scan.nd2").write_bytes(b"stand-in")
    with pytest.raises(ValueError, match=r"scan.nd2: cannot be read by bioio \(no plugin can read this file; see "
                                         r"the list of plugins\); .*napari-unet\[formats\]"):
        read_image_file(tmp_path / "scan.nd2")


def test_folders_list_zarr_images_and_microscopy_files(tmp_path, zarr):
    from napari_unet.jobs.files import expand_inputs

    write_ome_zarr(tmp_path / "b.ome.zarr", np.zeros((8, 8), np.uint8), "YX")
    for name in ("a.czi", "c.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [path.name for path in expand_inputs([tmp_path])] == ["a.czi", "b.ome.zarr", "c.tif"]
    assert expand_inputs([tmp_path / "b.ome.zarr"]) == [tmp_path / "b.ome.zarr"]
