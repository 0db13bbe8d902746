"""The shared part of the data build scripts: pinned-commit reads and the folder they write."""

import dataclasses
import json

import numpy as np
import pytest

from data_builds import load_build, make_repository, png_bytes
from napari_unet.datasets import read_annotated

sources = load_build("sources")


def test_reads_the_pinned_commit_not_a_later_one(tmp_path):
    git_dir, first = make_repository(tmp_path / "repo", {"a/x.png": png_bytes(np.full((4, 5), 7, np.uint8))})
    (tmp_path / "repo" / "a" / "x.png").write_bytes(png_bytes(np.full((4, 5), 9, np.uint8)))
    import subprocess
    subprocess.run(["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@e",
                    "commit", "-qam", "later"], check=True)
    tree = sources.GitTree(git_dir, first)
    assert tree.files("a") == ["a/x.png"]
    assert int(tree.read_image("a/x.png")[0, 0]) == 7


def test_an_unknown_commit_is_one_readable_error(tmp_path):
    git_dir, _ = make_repository(tmp_path / "repo", {"x.txt": b"1"})
    with pytest.raises(SystemExit, match="commit 0{40} is not in this repository"):
        sources.GitTree(git_dir, "0" * 40)
    with pytest.raises(SystemExit, match="no such folder"):
        sources.GitTree(tmp_path / "missing", "0" * 40)


def test_instances_from_semantic_masks_and_polygons():
    semantic = np.zeros((10, 10), np.uint8)
    semantic[1:3, 1:3] = 255
    semantic[6:9, 6:9] = 255
    labels = sources.to_instances(semantic, split_components=True)
    assert labels.dtype == np.uint16 and labels.max() == 2
    assert len(np.unique(labels[1:3, 1:3])) == 1 and labels[7, 7] not in (0, labels[1, 1])
    painted = sources.paint_polygons((20, 20), [np.array([[2, 2], [2, 8], [8, 8], [8, 2]]), [[0, 0], [1, 1]]])
    assert painted.max() == 1 and painted[5, 5] == 1 and painted[15, 15] == 0


def test_grey_rgb_is_stored_as_one_channel_and_alpha_dropped():
    grey = np.random.default_rng(0).integers(0, 255, (6, 7), dtype=np.uint8)
    assert sources.as_rgb_or_grey(np.stack([grey] * 3 + [np.full_like(grey, 255)], -1)).shape == (6, 7)
    colour = np.stack([grey, grey // 2, grey], -1)
    assert sources.as_rgb_or_grey(colour).shape == (6, 7, 3)


def test_written_folder_reads_back_with_source_and_group(tmp_path):
    source = sources.Source("demo", "owner/name", "a" * 40, "CC0", "nobody")
    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 2:6] = 5
    labels[9:14, 9:14] = 9
    samples = [sources.Sample("one", np.zeros((16, 16), np.uint8), labels, "g1", "fluorescence", "nuclei", "train"),
               sources.Sample("empty", np.zeros((16, 16), np.uint8), np.zeros((16, 16)), "g2", "fluorescence",
                             "nuclei")]
    rows = sources.write_dataset(tmp_path / "out", source, samples)
    assert [row["id"] for row in rows] == ["one"] and rows[0]["n_objects"] == 2
    back = read_annotated(tmp_path / "out")
    assert len(back) == 1 and sorted(np.unique(back[0].labels)) == [0, 1, 2]
    meta = json.loads((tmp_path / "out" / "SOURCE.json").read_text())
    assert meta["commit"] == "a" * 40 and meta["skipped_without_objects"] == 1
    bad = dataclasses.replace(samples[0], modality="xray")
    with pytest.raises(ValueError, match="modality 'xray'"):
        sources.write_dataset(tmp_path / "bad", source, [bad])
