"""Build ``data/pfc_neurons/``: whole-cell outlines (soma and neurites) of live rat prefrontal
pyramidal neurons in brightfield images, from github.com/Erendiravp/pfc-pn-microscopy-dataset.

``raw/images_jpg/Img (<n>).jpg`` are 109 RGB images (1280 x 960, inverted microscope, 40x) and
``raw/masks_gt_png/Img (<n>).png`` the expert-annotated binary masks; each mask is one neuron (one
8-connected piece in every file). ``derived/masks_dilated_r5_png/`` holds masks dilated by 5 px
for the authors' training, which the README says are not ground truth; they are not used.

    python benchmarks/data/build_pfc_neurons.py --git-dir /path/to/pfc-pn-microscopy-dataset/.git
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from sources import Sample, Source, build_main, to_instances  # noqa: E402

SOURCE = Source(
    name="pfc_neurons",
    repository="Erendiravp/pfc-pn-microscopy-dataset",
    commit="d8982397676b57507c0198987c6cae65de995958",
    licence="CC0 1.0 Universal (the repository's LICENSE file: 'Creative Commons Legal Code / CC0 1.0 "
            "Universal')",
    citation="Erendiravp/pfc-pn-microscopy-dataset (GitHub, 2026): 'Microscopy images and segmentation masks "
             "of live rat prefrontal pyramidal neurons (PFC-PN) acquired by inverted microscopy (40x)'; the "
             "README refers to a manuscript but gives no reference",
    description="One live rat prefrontal pyramidal neuron per brightfield image (RGB JPEG, 1280 x 960, 40x), "
                "soma and neurites outlined by an expert as a binary mask.",
    notes=[
        "labels: raw/masks_gt_png (binary, one neuron per file) as one object; the dilated masks in derived/ "
        "are not ground truth (README) and are not used",
        "only the one neuron in focus is outlined: out-of-focus blobs and debris in the background are not "
        "cells of the annotation, so the set suits whole-cell shape (long thin neurites) more than counting",
        "group: one group (one lab, one set-up); the repository does not say which culture or dish an image "
        "comes from. split: none given (the README's 70/30 split and 5-fold CV are not listed per file)",
        "images are JPEG (lossy), as the source stores them",
    ],
)

IMAGES = "raw/images_jpg"
MASKS = "raw/masks_gt_png"


def samples(tree, limit=None):
    masks = set(tree.files(f"{MASKS}/"))
    numbers = sorted(int(m.group(1)) for path in tree.files(f"{IMAGES}/")
                     if (m := re.fullmatch(rf"{IMAGES}/Img \((\d+)\)\.jpg", path)))
    count = 0
    for number in numbers:
        mask = f"{MASKS}/Img ({number}).png"
        if mask not in masks:
            continue
        if limit is not None and count >= limit:
            return
        image = np.asarray(tree.read_image(f"{IMAGES}/Img ({number}).jpg"))[..., :3]
        binary = np.asarray(tree.read_image(mask))
        if binary.ndim == 3:
            binary = binary[..., 0]
        count += 1
        yield Sample(f"img_{number:03d}", image, to_instances(binary > 0, split_components=True),
                     group="pfc_pn", modality="brightfield", target="cells")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
