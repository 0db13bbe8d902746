"""Build ``data/isbi2014_cervix/``: nuclei in the 16 real extended-depth-of-field (EDF) images of
Pap-smear cervical cytology of the ISBI 2014 Overlapping Cervical Cytology Image Segmentation
Challenge (Lu et al.), as checked in at github.com/Sukhdip-Sandhu/Overlapping-Cervical-Cell-Segmentation.

At the pinned commit ``Dev/Dataset/Eval/EDF/EDF<nnn>.png`` are the 16 grey EDF images (1024 x 1024)
and ``EDF<nnn>_GT.png`` their nucleus ground truth (the same masks as ``edfsetnuclei.mat`` next to
them): EDF000-003 as 1-px outlines, EDF004-015 as filled binary masks. Outlines are filled here and
every 4-connected piece is one nucleus. The later commits of the repository delete the data, so the
pinned commit is an old one of its history.

The challenge's synthetic images (45 training, 90 test, overlapping cytoplasm masks) are not used:
their image stacks are not in the snapshot (over 4 MiB) and overlapping cells do not fit one label
image.

    python benchmarks/data/build_isbi2014_cervix.py --git-dir /path/to/Overlapping-Cervical-Cell-Segmentation/.git
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from sources import Sample, Source, build_main, to_instances  # noqa: E402

SOURCE = Source(
    name="isbi2014_cervix",
    repository="Sukhdip-Sandhu/Overlapping-Cervical-Cell-Segmentation",
    commit="f7609aba1bafcf139230325ed22fd551db43ea56",
    licence="none stated: the copying repository (a student project) has no LICENSE file and its README "
            "only cites the challenge papers; the ISBI 2014 challenge data are distributed by the organisers "
            "without a licence statement in this copy -- ask before redistributing",
    citation="Lu Z, Carneiro G, Bradley AP. An improved joint optimization of multiple level set functions for "
             "the segmentation of overlapping cervical cells. IEEE Trans Image Process 24(4):1261-1272 (2015); "
             "Lu Z, Carneiro G, Bradley AP, Ushizima D, Nosrati MS, Bianchi AGC, Carneiro CM, Hamarneh G. "
             "Evaluation of three algorithms for the segmentation of overlapping cervical cells. IEEE J Biomed "
             "Health Inform 21(2):441-450 (2017)",
    description="Nuclei of squamous cells in 16 real grey EDF images (1024 x 1024) of Pap-stained cervical "
                "smears, ISBI 2014 challenge ground truth.",
    notes=[
        "labels: EDF<nnn>_GT.png > 0, holes filled (EDF000-003 are outlines), each 4-connected piece one "
        "nucleus",
        "the ground truth outlines the nuclei of the squamous cells; small dark inflammatory cells / debris in "
        "the background are not annotated (visible in EDF000), so a detector that finds them is counted wrong",
        "a few ground-truth masks join two touching nuclei into one blob (e.g. EDF010); they stay one object",
        "split: as the copy's first commit (a6e93cc) filed them, Training/EDF = EDF000-007 'train' and "
        "Testing/EDF = EDF008-015 'test'",
        "group: one group (the repository does not say which slide or patient each EDF image comes from)",
        "modality 'brightfield': grey EDF images of Pap-stained smears (no colour)",
    ],
)

FOLDER = "Dev/Dataset/Eval/EDF"
FIRST_TEST = 8  # EDF008 on were the copy's Testing/EDF folder


def nuclei(truth: np.ndarray) -> np.ndarray:
    """Instance labels from a nucleus ground-truth image (outlines or filled masks)."""
    filled = ndi.binary_fill_holes(np.asarray(truth) > 0)
    return to_instances(ndi.label(filled)[0])


def samples(tree, limit=None):
    files = set(tree.files(f"{FOLDER}/"))
    numbers = sorted(int(m.group(1)) for path in files if (m := re.fullmatch(rf"{FOLDER}/EDF(\d+)_GT\.png", path)))
    count = 0
    for number in numbers:
        image_path = f"{FOLDER}/EDF{number:03d}.png"
        if image_path not in files:
            continue
        if limit is not None and count >= limit:
            return
        truth = np.asarray(tree.read_image(f"{FOLDER}/EDF{number:03d}_GT.png"))
        if truth.ndim == 3:
            truth = truth[..., 0]
        count += 1
        yield Sample(f"edf{number:03d}", tree.read_image(image_path), nuclei(truth), group="isbi2014_edf",
                     modality="brightfield", target="nuclei", split="train" if number < FIRST_TEST else "test")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
