"""The H&E histology data build scripts (benchmarks/data/build_monuseg*.py) on tiny repositories
written in each source's own file layout, so they run without the real data."""

import csv
import dataclasses
import json

import numpy as np
import pytest
import tifffile

from data_builds import load_build, make_repository, png_bytes, tif_bytes

monuseg = load_build("build_monuseg")
monuseg_test = load_build("build_monuseg_test")
sources = load_build("sources")


def _read_folder(out):
    rows = {row["id"]: row for row in csv.DictReader(open(out / "index.csv"))}
    labels = {name: tifffile.imread(out / "masks" / f"{name}.tif") for name in rows}
    images = {name: tifffile.imread(out / "images" / f"{name}.tif") for name in rows}
    return rows, images, labels


def _square(shape, rows, cols):
    mask = np.zeros(shape, np.uint8)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = 255
    return mask


def test_monuseg_merges_one_png_per_nucleus_into_instances(tmp_path):
    shape = (24, 32)
    rgba = np.zeros(shape + (4,), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255  # an alpha channel, as the copy's PNGs have
    breast, lung = "TCGA-A7-A13E-01Z-00-DX1", "TCGA-18-5592-01Z-00-DX1"
    root = "dataset/train"
    files = {
        f"{root}/{breast}/images/{breast}.png": png_bytes(rgba),
        f"{root}/{breast}/masks/mask_0001.png": png_bytes(_square(shape, (2, 8), (3, 9))),
        f"{root}/{breast}/masks/mask_0002.png": png_bytes(_square(shape, (6, 12), (7, 20))),  # overlaps the first
        f"{root}/{breast}/masks/mask_0003.png": png_bytes(_square(shape, (15, 20), (25, 30))),
        f"{root}/{lung}/images/{lung}.png": png_bytes(rgba[..., :3]),
        f"{root}/{lung}/masks/mask_0001.png": png_bytes(_square(shape, (10, 14), (0, 4))),
        "README.md": b"not data",
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    source = dataclasses.replace(monuseg.SOURCE, commit=commit)
    out = tmp_path / "out"
    assert monuseg.build_main(source, monuseg.samples, ["--git-dir", str(git_dir), "--out", str(out)]) == 0

    rows, images, labels = _read_folder(out)
    assert sorted(rows) == sorted([breast, lung])
    assert rows[breast]["group"] == "breast" and rows[lung]["group"] == "lung"  # TCGA-18 is a lung site
    assert {row["split"] for row in rows.values()} == {"train"}
    assert {row["modality"] for row in rows.values()} == {"stained"}
    assert images[breast].shape == shape + (3,) and images[breast].dtype == np.uint8
    first = labels[breast]
    assert first.dtype == np.uint16 and first.shape == shape and first.max() == 3
    assert first[3, 4] != 0 and first[13, 10] == 0
    assert first[7, 8] == first[10, 15] != first[3, 4]  # the later mask keeps the overlap
    assert first[16, 26] not in (0, first[3, 4], first[10, 15])
    assert int(rows[breast]["n_objects"]) == 3 and int(rows[lung]["n_objects"]) == 1
    assert json.loads((out / "SOURCE.json").read_text())["commit"] == commit

    assert len(list(monuseg.samples(sources.GitTree(git_dir, commit), limit=1))) == 1


def test_monuseg_refuses_a_case_without_a_known_organ(tmp_path):
    case = "TCGA-ZZ-0000-01Z-00-DX1"
    files = {f"dataset/train/{case}/images/{case}.png": png_bytes(np.zeros((8, 8, 3), np.uint8)),
             f"dataset/train/{case}/masks/mask_0001.png": png_bytes(_square((8, 8), (1, 4), (1, 4)))}
    git_dir, commit = make_repository(tmp_path / "repo", files)
    with pytest.raises(ValueError, match="no organ known"):
        list(monuseg.samples(sources.GitTree(git_dir, commit)))


def _imagescope_xml(regions):
    """ImageScope XML as the MoNuSeg files have it; regions: lists of (x, y) vertices."""
    parts = ['<Annotations MicronsPerPixel="0.252700"><Annotation Id="1"><Regions>',
             '<RegionAttributeHeaders><AttributeHeader Id="9999" Name="Region"/></RegionAttributeHeaders>']
    for number, vertices in enumerate(regions, start=1):
        parts.append(f'<Region Id="{number}" Type="0"><Attributes/><Vertices>')
        parts += [f'<Vertex X="{x}" Y="{y}"/>' for x, y in vertices]
        parts.append("</Vertices></Region>")
    parts.append("</Regions></Annotation></Annotations>")
    return "\n".join(parts).encode()


def test_monuseg_test_paints_imagescope_polygons_x_as_column(tmp_path):
    shape = (20, 40)  # wider than tall: a transposed polygon would land elsewhere or be cut off
    image = np.zeros(shape + (3,), np.uint8)
    image[...] = (200, 120, 190)  # H&E-like pink, not grey
    kidney, brain, unannotated = "TCGA-2Z-A9J9-01A-01-TS1", "TCGA-FG-A4MU-01B-01-TS1", "TCGA-AC-A2FO-01A-01-TS1"
    folder = "datasets/MoNuSegTestData"
    files = {
        f"{folder}/{kidney}.tif": tif_bytes(image),
        f"{folder}/{kidney}.xml": _imagescope_xml([
            [(30.0, 2.0), (36.0, 2.0), (36.0, 8.0), (30.0, 8.0)],  # columns 30-36, rows 2-8
            [(2.5, 12.0), (8.5, 12.0), (5.5, 18.0)],  # a triangle at the left, low
        ]),
        f"{folder}/{brain}.tif": tif_bytes(image),
        f"{folder}/{brain}.xml": _imagescope_xml([[(10, 10), (14, 10), (14, 14), (10, 14)]]),
        f"{folder}/{unannotated}.tif": tif_bytes(image),  # no XML: left out
    }
    git_dir, commit = make_repository(tmp_path / "repo", files)
    source = dataclasses.replace(monuseg_test.SOURCE, commit=commit)
    out = tmp_path / "out"
    assert monuseg_test.build_main(source, monuseg_test.samples, ["--git-dir", str(git_dir), "--out", str(out)]) == 0

    rows, images, labels = _read_folder(out)
    assert sorted(rows) == sorted([kidney, brain])
    assert rows[kidney]["group"] == "kidney" and rows[brain]["group"] == "brain"
    assert {row["split"] for row in rows.values()} == {"test"}
    painted = labels[kidney]
    assert painted.dtype == np.uint16 and painted.shape == shape and painted.max() == 2
    assert painted[5, 33] == 1 and painted[2:9, 30:37].min() == 1  # the square: rows 2-8, columns 30-36
    assert painted[:, 10:30].max() == 0  # nothing painted where a transposed square would fall
    assert painted[15, 5] == 2 and painted[5, 15] == 0
    assert labels[brain][12, 12] == 1 and int(rows[brain]["n_objects"]) == 1
    assert images[kidney].shape == shape + (3,)


def test_monuseg_test_reads_vertices_in_file_order():
    polygons = monuseg_test.xml_polygons(_imagescope_xml([[(1, 2), (3, 4), (5, 6)], [(7, 8), (9, 10), (11, 12)]]))
    assert len(polygons) == 2
    np.testing.assert_array_equal(polygons[0], [[2, 1], [4, 3], [6, 5]])  # (row, column) = (Y, X)
