"""The build scripts of the blood-smear WBC nuclei, live-neuron and cervical-cytology sources
(``benchmarks/data/build_{wbc_zheng2018,pfc_neurons,isbi2014_cervix}.py``), run on tiny repositories
written in each source's own file layout, so no real data is needed."""


import imageio.v3 as iio
import numpy as np
import tifffile

from data_builds import build as _build, load_build, make_repository, png_bytes
from napari_unet.datasets import read_annotated




def _mask(out, name):
    return tifffile.imread(out / "masks" / f"{name}.tif")


def _encode(array, extension):
    return iio.imwrite("<bytes>", array, extension=extension)


def test_wbc_keeps_the_nucleus_lobes_as_one_object_and_drops_the_cytoplasm(tmp_path):
    module = load_build("build_wbc_zheng2018")
    rgb = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    truth = np.zeros((30, 40), np.uint8)
    truth[5:25, 5:35] = 128  # cytoplasm
    truth[8:14, 8:16] = 255  # nucleus lobe 1
    truth[16:22, 20:30] = 255  # nucleus lobe 2, not touching lobe 1
    truth[2, 2] = 9  # a stray grey pixel, as in Dataset 2/050.png
    big = np.zeros((50, 50), np.uint8)
    big[10:30, 10:30] = 255
    files = {
        "Dataset 1/001.bmp": _encode(rgb, ".bmp"),
        "Dataset 1/001.png": png_bytes(truth),
        "Dataset 1/002.bmp": _encode(rgb, ".bmp"),  # no ground truth: left out
        "Dataset 2/007.bmp": _encode(np.zeros((50, 50, 3), np.uint8) + 200, ".bmp"),
        "Dataset 2/007.png": png_bytes(big),
        "Dataset 1.png": png_bytes(rgb),  # a figure of the README
        "Class Labels of Dataset 1.csv": b"image ID,class\n1,2\n",
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    out = tmp_path / "out"
    rows = _build(module, git_dir, commit, out)
    assert {key: (row["group"], row["modality"], row["target"], row["n_objects"], row["split"])
            for key, row in rows.items()} == {
        "dataset1_001": ("dataset1_tecom", "stained", "nuclei", "1", ""),
        "dataset2_007": ("dataset2_cellavision", "stained", "nuclei", "1", "")}
    labels = _mask(out, "dataset1_001")
    assert labels.dtype == np.uint16 and labels.shape == (30, 40)
    assert labels[10, 10] == labels[18, 25] == 1  # both lobes: the same nucleus
    assert labels[6, 6] == 0 and labels[2, 2] == 0  # cytoplasm and the stray pixel are background
    assert int((labels > 0).sum()) == 6 * 8 + 6 * 10
    assert np.array_equal(tifffile.imread(out / "images" / "dataset1_001.tif"), rgb)
    assert len(list(module.samples(load_build("sources").GitTree(git_dir, commit), limit=1))) == 1


def test_pfc_neurons_read_the_ground_truth_not_the_dilated_masks(tmp_path):
    module = load_build("build_pfc_neurons")
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[...] = (150, 160, 120)  # brightfield through a colour camera: not grey
    neuron = np.zeros((24, 32), bool)
    neuron[8:14, 6:12] = True  # soma
    neuron[10:12, 12:30] = True  # a neurite
    dilated = np.zeros((24, 32), np.uint8)
    dilated[2:22, 2:31] = 255
    files = {
        "raw/images_jpg/Img (1).jpg": _encode(rgb, ".jpg"),
        "raw/masks_gt_png/Img (1).png": png_bytes(neuron.astype(np.uint8) * 255),
        "raw/images_jpg/Img (12).jpg": _encode(rgb, ".jpg"),
        "raw/masks_gt_png/Img (12).png": png_bytes(neuron.astype(np.uint8)),
        "raw/images_jpg/Img (3).jpg": _encode(rgb, ".jpg"),  # no mask: left out
        "derived/masks_dilated_r5_png/Img (1).png": png_bytes(dilated),
        "README.md": b"PFC-PN",
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    out = tmp_path / "out"
    rows = _build(module, git_dir, commit, out)
    assert sorted(rows) == ["img_001", "img_012"]
    assert {(row["group"], row["modality"], row["target"], row["n_objects"]) for row in rows.values()} == {
        ("pfc_pn", "brightfield", "cells", "1")}
    labels = _mask(out, "img_001")
    assert np.array_equal(labels > 0, neuron) and labels.max() == 1
    back = read_annotated(out)
    assert {sample.image.shape for sample in back} == {(24, 32, 3)}


def test_isbi2014_fills_outlines_and_keeps_the_copys_split(tmp_path):
    module = load_build("build_isbi2014_cervix")
    grey = np.full((40, 40), 200, np.uint8)
    outline = np.zeros((40, 40), np.uint8)
    outline[5, 5:15] = outline[14, 5:15] = outline[5:15, 5] = outline[5:15, 14] = 101  # a 1-px ring
    outline[25, 25] = 131  # a second, one-pixel nucleus
    filled = np.zeros((40, 40), np.uint16)
    filled[2:8, 2:8] = 32896
    filled[20:30, 10:18] = 32896
    filled[20:30, 30:38] = 32896
    folder = "Dev/Dataset/Eval/EDF"
    files = {
        f"{folder}/EDF000.png": png_bytes(grey),
        f"{folder}/EDF000_GT.png": png_bytes(outline),
        f"{folder}/EDF009.png": png_bytes(grey),
        f"{folder}/EDF009_GT.png": png_bytes(filled),
        f"{folder}/EDF005_GT.png": png_bytes(outline),  # no image: left out
        f"{folder}/edfsetnuclei.mat": b"not read",
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    out = tmp_path / "out"
    rows = _build(module, git_dir, commit, out)
    assert {key: (row["split"], row["group"], row["modality"], row["target"], row["n_objects"])
            for key, row in rows.items()} == {
        "edf000": ("train", "isbi2014_edf", "brightfield", "nuclei", "2"),
        "edf009": ("test", "isbi2014_edf", "brightfield", "nuclei", "3")}
    ring = _mask(out, "edf000")
    assert ring[10, 10] == ring[5, 5] != 0 and int((ring == ring[10, 10]).sum()) == 100  # filled inside
    assert ring[25, 25] not in (0, ring[10, 10])
    three = _mask(out, "edf009")
    assert len({three[4, 4], three[25, 12], three[25, 33]}) == 3 and three[0, 0] == 0
