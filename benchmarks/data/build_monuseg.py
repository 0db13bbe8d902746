"""MoNuSeg 2018 training set (Kumar et al.): 30 H&E tiles of 1000 x 1000 px at 40x from 30 TCGA
patients, 7 organs, every nucleus outlined.

The copy read here is the one in github.com/bruceyang2012/Miccai_challenge_MONUSEG (a
challenge entry), where the challenge's XML polygons were rasterised to one PNG per nucleus
(``dataset/train/<case>/masks/mask_NNNN.png``, DSB-2018 layout) next to the tile as PNG
(``dataset/train/<case>/images/<case>.png``). The original XML files are too large for the
snapshots this project reads (17 of 30 exceed 4 MiB), the per-nucleus PNGs are not; their
counts per tile match the XML region counts (checked on the 13 XMLs that are available in
github.com/ykrmm/monuseg: equal, or one fewer).

``python benchmarks/data/build_monuseg.py --git-dir DIR`` (DIR: a clone's git directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sources import Sample, Source, build_main  # noqa: E402

SOURCE = Source(
    name="monuseg",
    repository="bruceyang2012/Miccai_challenge_MONUSEG",
    commit="50be9414d61e5c7046c4b6224ed0182923774075",
    licence="CC BY-NC-SA 4.0 (the MoNuSeg data licence, e.g. 'License: CC BY-NC-SA 4.0' on the Hugging Face "
            "mirror card Angelou0516/MoNuSeg; the copying repository's LICENSE is Matterport's MIT licence for "
            "its Mask R-CNN code and says nothing about the data)",
    citation="Kumar N, Verma R, Sharma S, Bhargava S, Vahadane A, Sethi A. A dataset and a technique for "
             "generalized nuclear segmentation for computational pathology. IEEE Trans Med Imaging "
             "36(7):1550-1560, 2017; Kumar N et al. A multi-organ nucleus segmentation challenge. IEEE Trans "
             "Med Imaging 39(5):1380-1391, 2020",
    description="MoNuSeg 2018 training set: 30 H&E tiles (1000 x 1000 px, 40x, 0.2527 um/px) of 30 TCGA "
                "patients and 7 organs; one binary PNG per nucleus, merged here into instance labels.",
    notes=[
        "group = organ. MoNuSeg's own table calls the TCGA-18/-21/-38/-49/-50 tiles 'liver'; their TCGA "
        "barcodes are lung (LUSC/LUAD) slides, so they are grouped as 'lung' (the test set's lung tiles "
        "are lung too).",
        "every tile is from a different patient/slide; TCGA tissue-source-site codes nest inside organs.",
        "the per-nucleus masks were rasterised from the XML polygons by the copying repository; where two "
        "masks overlap the later one (higher mask number) keeps the pixel.",
        "split 'train': the challenge's training set (its 14 test tiles: build_monuseg_test.py).",
    ],
)

# case (TCGA patient barcode, first 12 characters) -> organ
ORGANS = {
    **{case: "breast" for case in ("TCGA-A7-A13E", "TCGA-A7-A13F", "TCGA-AR-A1AK", "TCGA-AR-A1AS",
                                    "TCGA-E2-A1B5", "TCGA-E2-A14V")},
    **{case: "kidney" for case in ("TCGA-B0-5698", "TCGA-B0-5710", "TCGA-B0-5711", "TCGA-HE-7128",
                                    "TCGA-HE-7129", "TCGA-HE-7130")},
    **{case: "lung" for case in ("TCGA-18-5592", "TCGA-21-5784", "TCGA-21-5786", "TCGA-38-6178",
                                  "TCGA-49-4488", "TCGA-50-5931")},
    **{case: "prostate" for case in ("TCGA-CH-5767", "TCGA-G9-6336", "TCGA-G9-6348", "TCGA-G9-6356",
                                      "TCGA-G9-6362", "TCGA-G9-6363")},
    **{case: "bladder" for case in ("TCGA-DK-A2I6", "TCGA-G2-A2EK")},
    **{case: "colon" for case in ("TCGA-AY-A8YK", "TCGA-NH-A8F7")},
    **{case: "stomach" for case in ("TCGA-KB-A93J", "TCGA-RD-A8N9")},
}

ROOT = "dataset/train"


def organ(case: str) -> str:
    try:
        return ORGANS[case[:12]]
    except KeyError:
        raise ValueError(f"{case}: no organ known for this TCGA case") from None


def samples(tree, limit=None):
    files = tree.files(ROOT)
    cases = sorted({path.split("/")[2] for path in files if "/images/" in path and path.endswith(".png")})
    for number, case in enumerate(cases):
        if limit is not None and number >= limit:
            break
        image = np.asarray(tree.read_image(f"{ROOT}/{case}/images/{case}.png"))[..., :3]
        masks = [path for path in files if path.startswith(f"{ROOT}/{case}/masks/") and path.endswith(".png")]
        labels = np.zeros(image.shape[:2], np.int32)
        for value, path in enumerate(sorted(masks), start=1):
            mask = np.asarray(tree.read_image(path))
            if mask.ndim == 3:
                mask = mask[..., 0]
            labels[mask > 0] = value
        yield Sample(case, image, labels, organ(case), modality="stained", target="nuclei", split="train")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
