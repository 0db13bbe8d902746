"""Build ``data/coelho2009/``: the hand-segmented fluorescence nuclei of Coelho, Shariff & Murphy
(ISBI 2009), from github.com/luispedro/Coelho2009_ISBI_NuclearSegmentation.

Two collections of Hoechst/DNA images: ``gnf`` (U2OS cells) and ``ic100`` (NIH3T3 cells). The
repository's ``data/preprocessed-data/<collection>/dna-<n>.png`` are the instance labels (0 =
background, 1..N nuclei) that its ``extract-data.py`` derived from the hand-drawn outlines; the
images are ``data/images/dna-images/<collection>/dna-<n>.png`` (grey, stored as RGB with equal
channels). Images without a label file (two blank ``gnf`` fields) are left out.

    python benchmarks/data/build_coelho2009.py --git-dir /path/to/Coelho2009_ISBI_NuclearSegmentation/.git
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sources import Sample, Source, build_main, to_instances  # noqa: E402

SOURCE = Source(
    name="coelho2009",
    repository="luispedro/Coelho2009_ISBI_NuclearSegmentation",
    commit="9629f3a8829982726327802af55ab6ae7a2b5316",
    licence="no licence stated in the repository (README: 'Full citation (use this if you use this "
            "code/dataset in a paper)'); treat as research use with citation",
    citation="Coelho LP, Shariff A, Murphy RF. Nuclear segmentation in microscope cell images: a hand-segmented "
             "dataset and comparison of algorithms. Proc. IEEE ISBI 2009, 518-521. doi:10.1109/ISBI.2009.5193098",
    description="Hand-segmented nuclei in widefield fluorescence (Hoechst/DNA) images of U2OS (gnf) and "
                "NIH3T3 (ic100) cells; one group per collection.",
    notes=[
        "labels: data/preprocessed-data/<collection>/dna-<n>.png (instance labels made by the repository's "
        "extract-data.py from the hand-drawn red outlines: outline pixels are background, so touching "
        "nuclei are separated by a thin gap, and objects under 32 px were dropped)",
        "ic100 (NIH3T3) images are dim with bright debris and out-of-focus nuclei; some faint nuclei are "
        "not outlined",
        "group = collection (gnf = U2OS, ic100 = NIH3T3): each is one experiment / cell line",
    ],
)

COLLECTIONS = {"gnf": "U2OS", "ic100": "NIH3T3"}
LABELS = "data/preprocessed-data"
IMAGES = "data/images/dna-images"


def _number(path: str) -> int:
    return int(re.search(r"dna-(\d+)\.png$", path).group(1))


def samples(tree, limit=None):
    count = 0
    for collection, cell_line in COLLECTIONS.items():
        label_paths = [p for p in tree.files(f"{LABELS}/{collection}/") if re.search(r"dna-\d+\.png$", p)]
        images = set(tree.files(f"{IMAGES}/{collection}/"))
        for label_path in sorted(label_paths, key=_number):
            if limit is not None and count >= limit:
                return
            number = _number(label_path)
            image_path = f"{IMAGES}/{collection}/dna-{number}.png"
            if image_path not in images:
                continue
            image = tree.read_image(image_path)  # grey stored as RGB: write_dataset keeps one channel
            labels = to_instances(tree.read_image(label_path))
            count += 1
            yield Sample(id=f"{collection}_dna-{number:02d}", image=image, labels=labels,
                         group=f"{collection}-{cell_line}", modality="fluorescence", target="nuclei")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
