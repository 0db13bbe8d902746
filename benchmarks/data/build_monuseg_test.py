"""MoNuSeg 2018 test set (Kumar et al. 2020): 14 H&E tiles of 1000 x 1000 px at 40x from 14 TCGA
patients, 7 organs (brain among them, which the training set lacks), nuclei as XML polygons.

The copy read here is the one in github.com/ykrmm/monuseg (``datasets/MoNuSegTestData/<case>.tif``
and ``<case>.xml``, the challenge's files as distributed). The XML is the Aperio ImageScope format:
``Region`` elements with ``Vertex X=... Y=...`` in pixels of the tile (X = column, Y = row).

``python benchmarks/data/build_monuseg_test.py --git-dir DIR`` (DIR: a clone's git directory).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sources import Sample, Source, build_main, paint_polygons  # noqa: E402

SOURCE = Source(
    name="monuseg_test",
    repository="ykrmm/monuseg",
    commit="93a696d5b608b963ff7083a059c93d5addbd985a",
    licence="CC BY-NC-SA 4.0 (the MoNuSeg data licence, e.g. 'License: CC BY-NC-SA 4.0' on the Hugging Face "
            "mirror card Angelou0516/MoNuSeg; the copying repository has no LICENSE file)",
    citation="Kumar N et al. A multi-organ nucleus segmentation challenge. IEEE Trans Med Imaging "
             "39(5):1380-1391, 2020",
    description="MoNuSeg 2018 test set: 14 H&E tiles (1000 x 1000 px, 40x, 0.2527 um/px) of 14 TCGA "
                "patients and 7 organs; XML nucleus polygons painted into instance labels.",
    notes=[
        "group = organ (same names as build_monuseg.py); every tile is from a different patient/slide.",
        "polygons are painted in file order; where two overlap the later one keeps the pixel.",
        "split 'test': the challenge's test set. The repository's training XMLs are incomplete in the "
        "snapshot (17 of 30 over 4 MiB), so the training set is built from another copy (build_monuseg.py).",
    ],
)

FOLDER = "datasets/MoNuSegTestData"

ORGANS = {
    "TCGA-2Z-A9J9": "kidney", "TCGA-GL-6846": "kidney", "TCGA-IZ-8196": "kidney",
    "TCGA-44-2665": "lung", "TCGA-69-7764": "lung",
    "TCGA-A6-6782": "colon",
    "TCGA-AC-A2FO": "breast", "TCGA-AO-A0J2": "breast",
    "TCGA-CU-A0YN": "bladder", "TCGA-ZF-A9R5": "bladder",
    "TCGA-EJ-A46H": "prostate", "TCGA-HC-7209": "prostate",
    "TCGA-FG-A4MU": "brain", "TCGA-HT-8564": "brain",
}


def organ(case: str) -> str:
    try:
        return ORGANS[case[:12]]
    except KeyError:
        raise ValueError(f"{case}: no organ known for this TCGA case") from None


def xml_polygons(data: bytes) -> list[np.ndarray]:
    """The regions of an ImageScope XML as ``(N, 2)`` arrays of (row, column) vertices."""
    root = ElementTree.fromstring(data)
    polygons = []
    for region in root.iter("Region"):
        vertices = [(float(v.get("Y")), float(v.get("X"))) for v in region.iter("Vertex")]
        if vertices:
            polygons.append(np.asarray(vertices))
    return polygons


def samples(tree, limit=None):
    files = set(tree.files(FOLDER))
    cases = sorted(Path(path).stem for path in files if path.endswith(".tif"))
    for number, case in enumerate(cases):
        if limit is not None and number >= limit:
            break
        if f"{FOLDER}/{case}.xml" not in files:
            continue
        image = np.asarray(tree.read_image(f"{FOLDER}/{case}.tif"))[..., :3]
        labels = paint_polygons(image.shape[:2], xml_polygons(tree.read(f"{FOLDER}/{case}.xml")))
        yield Sample(case, image, labels, organ(case), modality="stained", target="nuclei", split="test")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
