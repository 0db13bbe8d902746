"""Build ``data/usiigaci/``: the 50 hand-annotated phase-contrast whole-cell images that train the
Usiigaci Mask R-CNN, from github.com/oist/Usiigaci.

Each ``Mask R-CNN/{train,val}/set<n>/`` holds ``raw.tif`` (the 16-bit phase-contrast image,
1022 x 1024) and ``instances_ids.png`` (8-bit instance labels, one value per cell, exported from
ImageJ freehand ROIs). The source's own split (sets 1-45 train, 46-50 val) is kept.

    python benchmarks/data/build_usiigaci.py --git-dir /path/to/Usiigaci/.git
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from sources import Sample, Source, build_main, to_instances  # noqa: E402

# ImageJ's ROI map leaves stray pixels of a cell where a later, overlapping ROI was drawn over it
FRAGMENT_PX = 16

SOURCE = Source(
    name="usiigaci",
    repository="oist/Usiigaci",
    commit="9501d80c747cf82870dd596818fcf5c28c94d733",
    licence="MIT License (LICENSE: 'Copyright (c) 2018 Okinawa Institute of Science & Technology Graduate "
            "University'; README: 'Usiigaci is released under MIT License.')",
    citation="Tsai H-F, Gajda J, Sloan TFW, Rares A, Shen AQ. Usiigaci: Instance-aware cell tracking in "
             "stain-free phase contrast microscopy enabled by machine learning. SoftwareX 9, 230-237 (2019). "
             "doi:10.1016/j.softx.2019.02.007",
    description="Whole-cell outlines of fibroblasts in 10x phase-contrast images (Nikon Ti-E, 10x Ph-1, 1.5x "
                "intermediate magnification, Orca Flash 4.0 with 2x2 binning), drawn by hand in ImageJ.",
    notes=[
        "image: raw.tif (uint16, as acquired); labels: instances_ids.png (8-bit instance ids)",
        "cell line: NIH/3T3 according to the paper and to torch-em's loader; the repository itself does "
        "not name the cell line of the training sets",
        "group: one group for the whole source -- the sets are frames from the authors' time-lapse "
        "experiments and the repository does not say which set comes from which experiment, so no "
        "finer leave-out unit can be given",
        "split: the repository's train (sets 1-45) / val (sets 46-50) folders",
        f"pieces of a cell under {FRAGMENT_PX} px that are not its largest piece (stray pixels that ImageJ's "
        "ROI map leaves where ROIs overlap) are set to background",
        "a few cells / debris in the images carry no outline, and thin protrusions are mostly left out",
        "ExampleData/T98G_sample_mask* are Mask R-CNN outputs, not hand annotations, and are not used",
    ],
)

ROOT = "Mask R-CNN"


def drop_fragments(labels, min_size=FRAGMENT_PX):
    """Background for the pieces of an object smaller than ``min_size`` px that are not its largest
    8-connected piece (an object cut in two larger parts keeps both)."""
    labels = np.array(labels, copy=True)
    for value, box in enumerate(ndi.find_objects(labels), 1):
        if box is None:
            continue
        parts, count = ndi.label(labels[box] == value, structure=np.ones((3, 3)))
        if count < 2:
            continue
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        largest = int(sizes.argmax())
        drop = [i for i in range(1, count + 1) if i != largest and sizes[i] < min_size]
        view = labels[box]
        view[np.isin(parts, drop)] = 0
    return labels


def samples(tree, limit=None):
    found = []
    for split in ("train", "val"):
        for path in tree.files(f"{ROOT}/{split}/"):
            match = re.fullmatch(rf"{re.escape(ROOT)}/{split}/set(\d+)/instances_ids\.png", path)
            if match:
                found.append((int(match.group(1)), split))
    for count, (number, split) in enumerate(sorted(found)):
        if limit is not None and count >= limit:
            return
        folder = f"{ROOT}/{split}/set{number}"
        image = tree.read_image(f"{folder}/raw.tif")
        labels = tree.read_image(f"{folder}/instances_ids.png")
        if labels.ndim == 3:
            labels = labels[..., 0]
        yield Sample(id=f"set{number:02d}", image=image, labels=to_instances(drop_fragments(labels)),
                     group="usiigaci", modality="phase", target="cells", split=split)


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
