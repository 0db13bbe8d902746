"""Build ``data/kromp_gnb/``: five annotated fluorescence nuclei images of ganglioneuroblastoma
tissue sections from the Kromp et al. (2020) dataset (BioImage Archive S-BIAD634, also
BioStudies S-BSST265), as checked in at github.com/haesleinhuepf/human-eval-bia under
``example_data/S-BIAD634/``.

``images/Ganglioneuroblastoma_<n>.tif`` are 8-bit grey images stored as RGB with equal channels;
``groundtruth/Ganglioneuroblastoma_<n>.tif`` are uint16 instance labels. The three files in
``images_and_stuff/`` (no ground truth) are not used.

    python benchmarks/data/build_kromp_gnb.py --git-dir /path/to/human-eval-bia/.git
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sources import Sample, Source, build_main, to_instances  # noqa: E402

SOURCE = Source(
    name="kromp_gnb",
    repository="haesleinhuepf/human-eval-bia",
    commit="6157140297270a89cee58606df888202466265cf",
    licence="data: CC0 (the dataset authors' readme of S-BSST265: 'The dataset is assigned with an open data "
            "license (CC0)'); the copy's repository is MIT-licensed and its example_data/S-BIAD634/readme.md "
            "names only the source (https://www.ebi.ac.uk/biostudies/BioImages/studies/S-BIAD634)",
    citation="Kromp F, Bozsaky E, Rifatbegovic F, et al. An annotated fluorescence image dataset for training "
             "nuclear segmentation methods. Scientific Data 7, 262 (2020). doi:10.1038/s41597-020-00608-w",
    description="Expert-annotated nuclei (DAPI) in fluorescence images of ganglioneuroblastoma tissue "
                "sections; 5 of the 79 images of the full dataset.",
    notes=[
        "only the ganglioneuroblastoma tissue-section images 0-4 of the dataset are in this repository; the "
        "dataset's own train/test split (image_description.csv) is not, so split is empty",
        "group: one group (tissue sections of one diagnosis, one imaging set-up); the repository does not say "
        "which patient or slide each image comes from",
        "images: grey 8-bit (RGB with equal channels in the source)",
    ],
)

FOLDER = "example_data/S-BIAD634"


def samples(tree, limit=None):
    names = []
    for path in tree.files(f"{FOLDER}/groundtruth/"):
        match = re.fullmatch(rf"{FOLDER}/groundtruth/([A-Za-z]+)_(\d+)\.tif", path)
        if match:
            names.append((match.group(1), int(match.group(2))))
    images = set(tree.files(f"{FOLDER}/images/"))
    count = 0
    for kind, number in sorted(names):
        if limit is not None and count >= limit:
            return
        image_path = f"{FOLDER}/images/{kind}_{number}.tif"
        if image_path not in images:
            continue
        image = tree.read_image(image_path)  # grey stored as RGB: write_dataset keeps one channel
        labels = to_instances(tree.read_image(f"{FOLDER}/groundtruth/{kind}_{number}.tif"))
        count += 1
        yield Sample(id=f"{kind.lower()}_{number}", image=image, labels=labels, group=kind.lower(),
                     modality="fluorescence", target="nuclei")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
