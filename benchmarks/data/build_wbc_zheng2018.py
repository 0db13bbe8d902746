"""Build ``data/wbc_zheng2018/``: the nuclei of white blood cells in stained blood-smear images, from
the two WBC image sets of Zheng et al. (2018), as checked in at github.com/zxaoyou/segmentation_WBC.

``Dataset 1/<nnn>.bmp`` (300 RGB images, 120 x 120, Jiangxi Tecom, rapid WBC stain) and
``Dataset 2/<nnn>.bmp`` (100 RGB images, 300 x 300, from the CellaVision blog) each show one
white blood cell among red blood cells; ``<nnn>.png`` is the expert ground truth: nucleus 255,
cytoplasm 128, background (red blood cells included) 0.

Only the nuclei are written (target "nuclei"): red blood cells and platelets carry no nucleus, so
the one nucleus per image is every nucleus there is. The whole-cell outline (nucleus + cytoplasm)
is not written as a "cells" target because the red blood cells around the white one are not
outlined. A nucleus seen in two or three lobes (neutrophils, eosinophils) stays one object.

    python benchmarks/data/build_wbc_zheng2018.py --git-dir /path/to/segmentation_WBC/.git
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from sources import Sample, Source, build_main  # noqa: E402

SOURCE = Source(
    name="wbc_zheng2018",
    repository="zxaoyou/segmentation_WBC",
    commit="fa9c01622f52bccb9aeb8a6f2628f564e377767d",
    licence="GNU General Public License v3.0 (the repository's LICENSE file, 'GNU GENERAL PUBLIC LICENSE "
            "Version 3, 29 June 2007'; it is the only licence in the repository, which holds nothing but the "
            "data). README.rst: 'If you use Dataset 1 in your paper, please acknowledge Jiangxi Tecom Science "
            "Corporation, China'; 'If you use Dataset 2 in your paper, please acknowledge the CellaVision blog "
            "(http://blog.cellavision.com/)'; and cite Zheng et al. 2018",
    citation="Zheng X, Wang Y, Wang G, Liu J. Fast and robust segmentation of white blood cell images by "
             "self-supervised learning. Micron 107, 55-71 (2018). doi:10.1016/j.micron.2018.01.010",
    description="White-blood-cell nuclei in RGB images of stained blood smears (brightfield): 300 images of "
                "120 x 120 px (Motic Moticam Pro 252A camera on a N800-D microscope, rapid WBC stain) and 100 "
                "images of 300 x 300 px (CellaVision), one white blood cell per image, nucleus and cytoplasm "
                "'manually sketched by domain experts'.",
    notes=[
        "labels: ground-truth PNG >= 192 (white, 255) = the nucleus, one object per image even where the "
        "nucleus shows as separate lobes; cytoplasm (128) is not written",
        "group: the image set (dataset1_tecom / dataset2_cellavision): different sources, stains, cameras "
        "and magnifications",
        "images: the .bmp files as they are (RGB uint8); the .png files with the same number are the ground "
        "truth; 'Dataset 1.png' / 'Dataset 2.png' at the top level are figures",
        "split: none given by the source",
        "a few images of Dataset 1 (crops of about 120 px) show a piece of a neighbouring white blood cell at "
        "the image border; its nucleus is not annotated",
        "the class label CSVs (neutrophil, lymphocyte, monocyte, eosinophil, basophil) are not used; their "
        "README warns some were added by the authors without expert check",
    ],
)

GROUPS = {"Dataset 1": "dataset1_tecom", "Dataset 2": "dataset2_cellavision"}
NUCLEUS = 192  # ground-truth grey level above which a pixel is nucleus (255); cytoplasm is 128


def samples(tree, limit=None):
    count = 0
    for folder, group in GROUPS.items():
        files = set(tree.files(f"{folder}/"))
        numbers = sorted(int(m.group(1)) for path in files
                         if (m := re.fullmatch(rf"{re.escape(folder)}/(\d+)\.bmp", path)))
        for number in numbers:
            truth = f"{folder}/{number:03d}.png"
            if truth not in files:
                continue
            if limit is not None and count >= limit:
                return
            image = np.asarray(tree.read_image(f"{folder}/{number:03d}.bmp"))[..., :3]
            grey = np.asarray(tree.read_image(truth))
            if grey.ndim == 3:
                grey = grey[..., 0]
            labels = (grey >= NUCLEUS).astype(np.uint16)  # one nucleus per image, lobes included
            count += 1
            yield Sample(f"{group.split('_')[0]}_{number:03d}", image, labels, group,
                         modality="stained", target="nuclei")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
