"""The build scripts of the whole-cell and fluorescence-nuclei sources (``benchmarks/data/``), run on
tiny repositories written in each source's file layout, so no real data is needed."""

import csv
import dataclasses
import json

import numpy as np
import pytest
import tifffile

from data_builds import build as _build, load_build, make_repository, png_bytes, tif_bytes
from napari_unet.datasets import read_annotated


def _blobs(shape, boxes, values=None, dtype=np.uint16):
    labels = np.zeros(shape, dtype)
    for index, (y0, y1, x0, x1) in enumerate(boxes):
        labels[y0:y1, x0:x1] = index + 1 if values is None else values[index]
    return labels




def test_coelho2009_pairs_images_with_labels_per_collection(tmp_path):
    module = load_build("build_coelho2009")
    grey = np.random.default_rng(0).integers(0, 200, (24, 30), dtype=np.uint8)
    labels = _blobs((24, 30), [(2, 8, 2, 8), (10, 20, 12, 25)], dtype=np.uint8)
    files = {
        "data/images/dna-images/gnf/dna-3.png": png_bytes(np.stack([grey] * 3, -1)),
        "data/images/dna-images/gnf/dna-31.png": png_bytes(np.zeros((24, 30, 3), np.uint8)),  # no labels: left out
        "data/preprocessed-data/gnf/dna-3.png": png_bytes(labels),
        "data/images/dna-images/ic100/dna-0.png": png_bytes(np.stack([grey] * 3, -1)),
        "data/preprocessed-data/ic100/dna-0.png": png_bytes(labels[:, ::-1].copy()),
        "data/preprocessed-data/ic100/dna-0.xcf": b"gimp",
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    rows = _build(module, git_dir, commit, tmp_path / "out")
    assert set(rows) == {"gnf_dna-03", "ic100_dna-00"}
    assert rows["gnf_dna-03"]["group"] == "gnf-U2OS" and rows["ic100_dna-00"]["group"] == "ic100-NIH3T3"
    assert {row["n_objects"] for row in rows.values()} == {"2"}
    image = tifffile.imread(tmp_path / "out" / "images" / "gnf_dna-03.tif")
    assert image.shape == (24, 30) and np.array_equal(image, grey)  # grey RGB stored as one channel


def test_usiigaci_keeps_split_and_drops_stray_pixels(tmp_path):
    module = load_build("build_usiigaci")
    raw = np.random.default_rng(1).integers(0, 60000, (40, 50), dtype=np.uint16)
    ids = _blobs((40, 50), [(2, 12, 2, 12), (20, 35, 20, 45)], values=[7, 9], dtype=np.uint8)
    ids[30, 5] = 7  # a stray pixel of cell 7 far from it
    ids[2:12, 14:20] = 7  # a second, large piece of cell 7 (kept)
    files = {
        "Mask R-CNN/train/set2/raw.tif": tif_bytes(raw),
        "Mask R-CNN/train/set2/instances_ids.png": png_bytes(ids),
        "Mask R-CNN/train/set2/labeled.png": png_bytes(np.zeros((40, 50, 3), np.uint8)),
        "Mask R-CNN/val/set46/raw.tif": tif_bytes(raw),
        "Mask R-CNN/val/set46/instances_ids.png": png_bytes(ids),
        "Mask R-CNN/train.py": b"",
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    rows = _build(module, git_dir, commit, tmp_path / "out")
    assert {key: (row["split"], row["group"], row["modality"], row["target"]) for key, row in rows.items()} == {
        "set02": ("train", "usiigaci", "phase", "cells"), "set46": ("val", "usiigaci", "phase", "cells")}
    masks = tifffile.imread(tmp_path / "out" / "masks" / "set02.tif")
    assert masks.dtype == np.uint16 and masks.max() == 2
    assert masks[30, 5] == 0 and masks[5, 16] == masks[5, 5] != 0
    assert np.array_equal(tifffile.imread(tmp_path / "out" / "images" / "set02.tif"), raw)


def test_kromp_gnb_reads_the_s_biad634_folder(tmp_path):
    module = load_build("build_kromp_gnb")
    grey = np.random.default_rng(2).integers(0, 255, (20, 22), dtype=np.uint8)
    labels = _blobs((20, 22), [(1, 6, 1, 6), (8, 15, 8, 15), (16, 19, 2, 20)], values=[300, 12, 5])
    files = {
        "example_data/S-BIAD634/images/Ganglioneuroblastoma_0.tif": tif_bytes(np.stack([grey] * 3, -1)),
        "example_data/S-BIAD634/groundtruth/Ganglioneuroblastoma_0.tif": tif_bytes(labels),
        "example_data/S-BIAD634/images_and_stuff/Ganglioneuroblastoma_8.tif": tif_bytes(grey),
        "example_data/S-BIAD634/readme.md": b"Source: S-BIAD634",
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    rows = _build(module, git_dir, commit, tmp_path / "out")
    assert list(rows) == ["ganglioneuroblastoma_0"]
    assert rows["ganglioneuroblastoma_0"]["n_objects"] == "3"
    assert rows["ganglioneuroblastoma_0"]["group"] == "ganglioneuroblastoma"
    back = read_annotated(tmp_path / "out")
    assert back[0].image.shape == (20, 22) and sorted(np.unique(back[0].labels)) == [0, 1, 2, 3]


def test_ctc_fluo_nuclei_keeps_only_spaced_frames_one_group_per_sequence(tmp_path):
    module = load_build("build_ctc_fluo_nuclei")
    image = np.random.default_rng(3).integers(0, 200, (16, 16), dtype=np.uint8)
    labels = _blobs((16, 16), [(1, 5, 1, 5), (8, 14, 8, 14)])
    files = {}
    for frame in ("01", "21", "31"):
        files[f"data/Otsu_data/N2DH-GOWT1/img/t{frame}.tif"] = tif_bytes(image)
        files[f"data/Otsu_data/N2DH-GOWT1/gt/man_seg{frame}.tif"] = tif_bytes(labels)
    files["data/Otsu_data/N2DL-HeLa/img/t13.tif"] = tif_bytes(image.astype(np.uint16) + 33000)
    files["data/Otsu_data/N2DL-HeLa/gt/man_seg13.tif"] = tif_bytes(labels)
    files["data/Otsu_data/N2DL-HeLa/img/t52.tif"] = tif_bytes(image)  # no ground truth: left out
    git_dir, commit = make_repository(tmp_path / "repo", files)
    rows = _build(module, git_dir, commit, tmp_path / "out")
    assert {key: row["group"] for key, row in rows.items()} == {
        "gowt1_t01": "Fluo-N2DH-GOWT1", "gowt1_t21": "Fluo-N2DH-GOWT1", "hela_t13": "Fluo-N2DL-HeLa"}
    assert tifffile.imread(tmp_path / "out" / "images" / "hela_t13.tif").dtype == np.uint16


def test_deepcell2016_rebuilds_instances_from_edge_and_interior_masks(tmp_path):
    module = load_build("build_deepcell2016")
    interior = np.zeros((30, 30), np.uint8)
    interior[3:10, 3:10] = 255
    interior[3:10, 12:20] = 255  # a second cell, separated from the first by an edge line
    interior[25, 25] = 255  # a speck under MIN_PX: dropped
    edge = np.zeros_like(interior)
    edge[2, 2:21] = edge[10, 2:21] = 255
    edge[2:11, 2] = edge[2:11, 11] = edge[2:11, 20] = 255
    phase = np.random.default_rng(4).integers(100, 30000, (30, 30), dtype=np.uint16)
    files = {
        "training_data/HeLa_joint/set1/phase.png": png_bytes(phase),
        "training_data/HeLa_joint/set1/nuclear.png": png_bytes(phase),
        "training_data/HeLa_joint/set1/feature_0.png": png_bytes(edge),
        "training_data/HeLa_joint/set1/feature_1.png": png_bytes(interior),
        "training_data/RAW40X/set5/farred.png": png_bytes(phase),
        "training_data/RAW40X/set5/feature_0.png": png_bytes(edge),
        "training_data/RAW40X/set5/feature_1.png": png_bytes(interior),
        "training_data/3T3/set2/phase.png": png_bytes(phase),  # not in SETS
        "training_data/3T3/set2/feature_0.png": png_bytes(edge),
        "training_data/3T3/set2/feature_1.png": png_bytes(interior),
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    rows = _build(module, git_dir, commit, tmp_path / "out")
    assert {key: (row["group"], row["modality"], row["target"]) for key, row in rows.items()} == {
        "hela_joint_set1_cells": ("HeLa-S3", "phase", "cells"),
        "raw40x_set5_cells": ("RAW264.7", "fluorescence", "cells")}
    masks = tifffile.imread(tmp_path / "out" / "masks" / "hela_joint_set1_cells.tif")
    assert masks.max() == 2 and masks[25, 25] == 0
    assert masks[5, 5] != masks[5, 15] and masks[5, 5] and masks[5, 15]
    assert masks[2, 5] == masks[5, 5]  # the outline belongs to the cell it bounds
    assert masks[5, 11] in (masks[5, 5], masks[5, 15])  # a shared edge goes to one of its cells


def _gonuclear_content():
    raw = np.random.default_rng(5).integers(0, 120, (6, 12, 14), dtype=np.uint8)
    label = np.zeros((6, 12, 14), np.uint8)
    label[1:4, 1:5, 1:5] = 9
    label[2:6, 6:11, 7:13] = 3
    return {"raw": raw, "label": label, "voxel_size": (0.28, 0.127, 0.127)}


def test_gonuclear_mini_writes_zyx_stacks_with_voxel_size(tmp_path, monkeypatch):
    module = load_build("build_gonuclear_mini")
    content = _gonuclear_content()
    monkeypatch.setattr(module, "read_h5", lambda data: content)  # the test needs no h5py
    files = {f"stardist/tests/data/{name}_mini.h5": b"h5" for name in ("1135", "1136", "1137")}
    git_dir, commit = make_repository(tmp_path / "repo", files)
    source = dataclasses.replace(module.SOURCE, commit=commit)
    out = tmp_path / "out"
    assert module.main(["--git-dir", str(git_dir), "--out", str(out)], source=source) == 0
    with open(out / "index.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["id"], row["group"], row["n_objects"]) for row in rows] == [
        ("ovule_1135", "ovule-1135", "2"), ("ovule_1136", "ovule-1136", "2")]  # 1137 is not used
    assert rows[0]["voxel_size_zyx_um"] == "0.2800 0.1270 0.1270"
    masks = tifffile.imread(out / "masks" / "ovule_1135.tif")
    assert masks.shape == (6, 12, 14) and masks.dtype == np.uint16 and sorted(np.unique(masks)) == [0, 1, 2]
    with tifffile.TiffFile(out / "images" / "ovule_1135.tif") as handle:
        assert handle.series[0].axes == "ZYX" and handle.imagej_metadata["spacing"] == pytest.approx(0.28)
        assert np.array_equal(handle.asarray(), content["raw"])
    assert json.loads((out / "SOURCE.json").read_text())["commit"] == commit


def test_qcanet_labels_the_binary_masks_as_3d_objects_with_the_relative_spacing(tmp_path):
    module = load_build("build_qcanet")
    raw = np.random.default_rng(6).integers(0, 900, (5, 10, 12), dtype=np.uint16)
    mask = np.zeros((5, 10, 12), np.uint8)
    mask[0:3, 1:4, 1:4] = 255  # one nucleus over three planes
    mask[2:5, 5:9, 6:11] = 255  # another, apart from it in every plane
    files = {f"example_datasets/images_{kind}/8_cell_stage.tif": tif_bytes(data)
             for kind, data in (("raw", raw), ("nsn", mask))}
    files["example_datasets/images_raw/16_cell_stage.tif"] = tif_bytes(raw)  # no mask: skipped
    git_dir, commit = make_repository(tmp_path / "repo", files)
    out = tmp_path / "out"
    assert module.main(["--git-dir", str(git_dir), "--out", str(out)],
                       source=dataclasses.replace(module.SOURCE, commit=commit)) == 0
    with open(out / "index.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["id"], row["n_objects"], row["voxel_size_zyx_um"]) for row in rows] == [
        ("embryo_8cell", "2", "2.1800 1.0000 1.0000")]
    masks = tifffile.imread(out / "masks" / "embryo_8cell.tif")
    assert masks.dtype == np.uint16 and sorted(np.unique(masks)) == [0, 1, 2]
    assert len(np.unique(masks[0:3, 1:4, 1:4])) == 1 and masks[1, 2, 2] != masks[3, 6, 7]  # one id per object
    with tifffile.TiffFile(out / "images" / "embryo_8cell.tif") as handle:
        assert handle.imagej_metadata["unit"] == "pixel" and handle.imagej_metadata["spacing"] == pytest.approx(2.18)
        assert np.array_equal(handle.asarray(), raw)


def test_gonuclear_mini_reads_the_checked_in_hdf5_layout():
    h5py = pytest.importorskip("h5py")
    import io

    module = load_build("build_gonuclear_mini")
    content = _gonuclear_content()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        for key in ("raw", "label"):
            data = handle.create_dataset(key, data=content[key], compression="gzip")
            data.attrs["element_size_um"] = np.array(content["voxel_size"])
    back = module.read_h5(buffer.getvalue())
    assert np.array_equal(back["label"], content["label"]) and back["voxel_size"] == pytest.approx((0.28, 0.127, 0.127))
