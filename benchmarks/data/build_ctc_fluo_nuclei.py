"""Build ``data/ctc_fluo_nuclei/``: annotated frames of two Cell Tracking Challenge fluorescence
nuclei time-lapses, Fluo-N2DH-GOWT1 (GFP-transfected GOWT1 mouse embryonic stem cells) and
Fluo-N2DL-HeLa (HeLa cells expressing H2B-GFP), as checked in by a university course project at
github.com/datascience-mobi-2022/2022-topic-01-team-04 under ``data/Otsu_data/``.

``N2DH-GOWT1/img/t<nn>.tif`` and ``N2DL-HeLa/img/t<nn>.tif`` are the CTC frames, ``gt/man_seg<nn>.tif``
their CTC segmentation ground truth (uint16 instance labels). Each folder is one time-lapse, so it is
one group, and only frames at least ten time points apart are kept (:data:`FRAMES`). The repository's
``NIH3T3`` folder (Coelho et al. 2009) is built from its original source by ``build_coelho2009.py``.

    python benchmarks/data/build_ctc_fluo_nuclei.py --git-dir /path/to/2022-topic-01-team-04/.git
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sources import Sample, Source, build_main, to_instances  # noqa: E402

SOURCE = Source(
    name="ctc_fluo_nuclei",
    repository="datascience-mobi-2022/2022-topic-01-team-04",
    commit="0797bd79e1b6ca7ec05b5b12566ed3549407ffc6",
    licence="RESTRICTED: no licence in the repository; the data are Cell Tracking Challenge images, whose "
            "'Conditions of use of the images' (celltrackingchallenge.net/datasets) say: 'Any public "
            "non-CTC-related, scientific use of our datasets does not require permission from the challenge "
            "organizers, but permission must be requested from the data providers' and 'Any commercial use of "
            "our datasets requires explicit permission by the challenge organizers and the data providers'",
    citation="Maska M, Ulman V, Delgado-Rodriguez P, et al. The Cell Tracking Challenge: 10 years of objective "
             "benchmarking. Nature Methods 20, 1010-1020 (2023). doi:10.1038/s41592-023-01879-y; data providers: "
             "Fluo-N2DH-GOWT1 (E. Bartova, Institute of Biophysics, Brno), Fluo-N2DL-HeLa (Mitocheck "
             "consortium), as listed on the CTC dataset pages",
    description="CTC segmentation ground truth of fluorescent nuclei: GOWT1 mouse ES cells (1024 x 1024, "
                "8-bit) and H2B-GFP HeLa cells (700 x 1100, 16-bit); one group per time-lapse.",
    notes=[
        "not for shipped weights without the data providers' permission (CTC conditions of use)",
        "the course repository renamed the CTC files (t<nn>.tif, man_seg<nn>.tif) and does not say which of "
        "the two training sequences they come from; they are treated as one time-lapse per cell type",
        "frames kept: GOWT1 t01, t21, t39, t52, t72 (t31 dropped); HeLa t13, t52, t75 (t79 dropped), so that "
        "kept frames are at least ten time points apart",
        "HeLa frames are dense (up to ~350 nuclei), GOWT1 frames sparse (~25 nuclei) with dim nuclei",
    ],
)

ROOT = "data/Otsu_data"
# folder -> (group, kept frames)
FRAMES = {
    "N2DH-GOWT1": ("Fluo-N2DH-GOWT1", ("01", "21", "39", "52", "72")),
    "N2DL-HeLa": ("Fluo-N2DL-HeLa", ("13", "52", "75")),
}


def samples(tree, limit=None):
    count = 0
    for folder, (group, frames) in FRAMES.items():
        present = set(tree.files(f"{ROOT}/{folder}/"))
        for frame in frames:
            if limit is not None and count >= limit:
                return
            image_path, label_path = f"{ROOT}/{folder}/img/t{frame}.tif", f"{ROOT}/{folder}/gt/man_seg{frame}.tif"
            if image_path not in present or label_path not in present:
                continue
            count += 1
            yield Sample(id=f"{group.split('-')[-1].lower()}_t{frame}", image=tree.read_image(image_path),
                         labels=to_instances(tree.read_image(label_path)), group=group,
                         modality="fluorescence", target="nuclei")


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
