"""Build ``data/deepcell2016/``: the hand-segmented training images of DeepCell (Van Valen et al.
2016), from github.com/CovertLab/DeepCell ``training_data/``.

Each set folder holds the raw channels (``phase.png`` / ``phase.tif``, a nuclear-marker image
``nuclear.png`` or ``img_..._Far-red_000.png``) and two binary masks drawn from hand-made ImageJ
outlines: ``feature_0`` (cell edges) and ``feature_1`` (cell interiors). Instances are rebuilt from
them: every 4-connected interior region is one object, grown by up to :data:`GROW_PX` pixels into
the adjacent edge pixels (so the object keeps its outline), and interior regions under
:data:`MIN_PX` pixels are dropped.

Only sets whose masks were checked to be dense, cell-by-cell annotations are used (:data:`SETS`):
whole cells in the phase channel of HeLa-S3, NIH/3T3, MCF10A, bone-marrow-derived macrophages,
RAW 264.7 macrophages and two E. coli experiments, whole RAW 264.7 cells in a far-red fluorescence
channel, and nuclei in the nuclear channel of fields whose cell line is known. The
``MCF10A_3T3_semantic`` folder repeats the 3T3 / MCF10A fields and is skipped.

    python benchmarks/data/build_deepcell2016.py --git-dir /path/to/DeepCell/.git
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from sources import Sample, Source, build_main, to_instances  # noqa: E402

SOURCE = Source(
    name="deepcell2016",
    repository="CovertLab/DeepCell",
    commit="b72ee72e972192ceba43b1997b4543dfeb24b568",
    licence="NO LICENCE STATED: the repository has no licence file and its README says only '# DeepCell2'; "
            "the data are the supplementary training data of the paper below -- ask the authors before "
            "using them in shipped weights",
    citation="Van Valen DA, Kudo T, Lane KM, et al. Deep learning automates the quantitative analysis of "
             "individual cells in live-cell imaging experiments. PLoS Computational Biology 12(11), e1005177 "
             "(2016). doi:10.1371/journal.pcbi.1005177",
    description="Hand-segmented whole cells in phase-contrast images of five mammalian cell types and of "
                "E. coli (plus RAW 264.7 cells in far-red fluorescence), and hand-segmented nuclei in the "
                "matching nuclear-marker images of HeLa-S3, NIH/3T3 and MCF10A fields.",
    notes=[
        "masks: rebuilt from the binary edge (feature_0) and interior (feature_1) images; each 4-connected "
        "interior region is one object, grown up to 3 px into adjacent edge pixels; regions under 8 px dropped",
        "target 'cells': image = phase channel; the HeLa, 3T3 and MCF10A fields also have a nuclear-marker "
        "channel (nuclear.png) whose hand-segmented nuclei are stored here as separate 'nuclei' samples",
        "RAW 264.7 sets 4/5: hand outlines of whole cell bodies in the far-red fluorescence channel of the "
        "set1/set2 fields (the folder names the file nuclear.png / farred.png, but the outlines include the dim "
        "cytoplasm around the bright centre); stored as fluorescence 'cells' samples",
        "group = cell type (one experiment each, per the folder layout); E. coli 'ecoli' (300 x 300 crops) and "
        "'ecoli_kc' (1002 x 1004, higher magnification) are separate experiments and separate groups",
        "left out: 3T3 set2/set3 (their interior masks are thin outlines, not filled cells), "
        "MCF10A_3T3_semantic (duplicates), nuclei sets 2-5, 7, 8 (cell line of the field not recorded; set3 "
        "also reuses the edge mask of set1), theriot_nuclear (one semantic blob)",
        "HeLa phase images look DIC-like (relief shading); the folder calls them phase",
    ],
)

GROW_PX = 3
MIN_PX = 8
ROOT = "training_data"

# (folder, image file stem, group, modality, target)
SETS = [
    *[(f"HeLa_joint/set{i}", "phase", "HeLa-S3", "phase", "cells") for i in range(1, 6)],
    ("3T3/set1", "phase", "NIH3T3", "phase", "cells"),
    ("MCF10A", "phase", "MCF10A", "phase", "cells"),
    ("BMDM", "phase", "BMDM", "phase", "cells"),
    *[(f"RAW40X/set{i}", "phase", "RAW264.7", "phase", "cells") for i in range(1, 4)],
    *[(f"ecoli/set{i}", "phase", "E.coli", "phase", "cells") for i in range(1, 3)],
    *[(f"ecoli_kc/set{i}", "phase", "E.coli-kc", "phase", "cells") for i in range(1, 3)],
    # nuclei in the nuclear channel; each is the field of a whole-cell set above
    ("nuclei/set1", "nuclear", "HeLa-S3", "fluorescence", "nuclei"),  # = HeLa_joint/set1
    ("nuclei/set6", "nuclear", "NIH3T3", "fluorescence", "nuclei"),  # = 3T3 set2 field
    ("nuclei/set9", "nuclear", "MCF10A", "fluorescence", "nuclei"),  # = MCF10A field
]
# RAW 264.7 sets 4 and 5 outline whole cell bodies in the far-red channel (named nuclear.png / farred.png):
# the outlines follow the dim cytoplasm around the bright centre, so they are cells, not nuclei
SETS += [
    ("RAW40X/set4", "nuclear", "RAW264.7", "fluorescence", "cells"),  # far-red of the RAW40X/set1 field
    ("RAW40X/set5", "farred", "RAW264.7", "fluorescence", "cells"),  # far-red of the RAW40X/set2 field
]


def features_to_instances(edge, interior, *, grow=GROW_PX, min_size=MIN_PX):
    """Instance labels from a binary edge mask and a binary interior mask."""
    from skimage.segmentation import expand_labels

    interior = np.asarray(interior) > 0
    edge = np.asarray(edge) > 0
    labels, count = ndi.label(interior)
    if count:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
    grown = expand_labels(labels, distance=grow)
    grown[~(interior | edge)] = 0
    return to_instances(grown)


def _find(tree, folder, stem):
    for path in tree.files(f"{ROOT}/{folder}/"):
        name = path.rsplit("/", 1)[-1]
        if name.rsplit(".", 1)[0] == stem and name.lower().endswith((".png", ".tif", ".tiff")):
            return path
    return None


def samples(tree, limit=None):
    count = 0
    for folder, stem, group, modality, target in SETS:
        if limit is not None and count >= limit:
            return
        paths = [_find(tree, folder, name) for name in (stem, "feature_0", "feature_1")]
        if None in paths:
            continue
        image, edge, interior = (tree.read_image(path) for path in paths)
        count += 1
        name = folder.replace("/", "_").lower()
        yield Sample(id=f"{name}_{target}", image=image, labels=features_to_instances(edge, interior),
                     group=group, modality=modality, target=target)


if __name__ == "__main__":
    raise SystemExit(build_main(SOURCE, samples))
