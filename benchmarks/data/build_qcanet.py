"""Build ``data/qcanet/``: two 3-D fluorescence stacks of early mouse embryos (8- and 16-cell
stage, nuclei labelled with H2B-mRFP1) with their hand-made nuclear segmentation, as checked in
as example data at github.com/funalab/QCANet under ``example_datasets/``.

``images_raw/<stage>.tif`` is the uint16 stack (Z, Y, X) = 51 x 120 x 122; ``images_nsn/<stage>.tif``
the ground-truth segmentation as a binary mask (0 / 255). The nuclei of these embryos never touch
(the same objects with 6- and 26-connectivity), so 3-D connected components are the instances.
The repository states only the relative voxel spacing, x : y : z = 1 : 1 : 2.18 (its default
``resolution``), so the index's voxel size is in units of the pixel width, not micrometres.

A second, independent 3-D source beside GoNuclear (another organism, stain and microscope),
for evaluation only. Writes the same folder layout as ``build_gonuclear_mini.py``.

    python benchmarks/data/build_qcanet.py --git-dir /path/to/QCANet/.git
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from build_gonuclear_mini import instances_3d, write_stacks  # noqa: E402
from sources import GitTree, Source, build_arguments  # noqa: E402

SOURCE = Source(
    name="qcanet",
    repository="funalab/QCANet",
    commit="d047df5f271390dd06c72a8eb1d599a2ba96b9a0",
    licence="MIT License for the repository (LICENSE: 'Copyright (c) 2018 Funahashi Lab., Keio University'); "
            "README: 'The microscopic images included in this repository is provided by Yamagata Lab., "
            "Kindai University.'",
    citation="Tokuoka Y, Yamada TG, Mashiko D, Ikeda Z, Hiroi NF, Kobayashi TJ, Yamagata K, Funahashi A. "
             "3D convolutional neural networks-based segmentation to acquire quantitative criteria of the "
             "nucleus during mouse embryogenesis. npj Systems Biology and Applications 6, 32 (2020). "
             "doi:10.1038/s41540-020-00152-8",
    description="3-D fluorescence nuclei (mouse embryos at the 8- and 16-cell stage, H2B-mRFP1) with a "
                "hand-made nuclear segmentation; anisotropic voxels (z spacing 2.18 pixel widths).",
    notes=[
        "image: example_datasets/images_raw/<stage>.tif (uint16); labels: 3-D connected components "
        "(6-connectivity) of example_datasets/images_nsn/<stage>.tif (binary 0/255)",
        "voxel size: relative only (1 : 1 : 2.18 for x : y : z, the repository's default resolution); "
        "index values are in pixel widths, not um",
        "group = embryo stage (one embryo each)",
    ],
)

FOLDER = "example_datasets"
STAGES = ("8_cell_stage", "16_cell_stage")
# z : y : x in units of the pixel width (README: resolution 1.0:1.0:2.18 for x, y, z)
VOXEL = (2.18, 1.0, 1.0)


def mask_instances(mask: np.ndarray) -> np.ndarray:
    """A binary mask of non-touching objects -> uint16 instance labels (3-D connected components)."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask of shape {mask.shape}: expected (Z, Y, X)")
    return instances_3d(ndi.label(mask > 0)[0])


def stacks(tree, limit=None):
    """``(id, image, labels, voxel_size, group)`` for each stage."""
    import io

    import tifffile

    present = set(tree.files(f"{FOLDER}/"))
    for count, stage in enumerate(STAGES):
        if limit is not None and count >= limit:
            return
        raw_path, mask_path = f"{FOLDER}/images_raw/{stage}.tif", f"{FOLDER}/images_nsn/{stage}.tif"
        if raw_path not in present or mask_path not in present:
            continue
        image = tifffile.imread(io.BytesIO(tree.read(raw_path)))
        labels = mask_instances(tifffile.imread(io.BytesIO(tree.read(mask_path))))
        if image.shape != labels.shape:
            raise ValueError(f"{raw_path} {image.shape} and {mask_path} {labels.shape} differ")
        name = "embryo_" + stage.split("_")[0] + "cell"
        yield name, image, labels, VOXEL, name


def main(argv=None, source: Source = SOURCE) -> int:
    args = build_arguments(source, "3-D folder", "stacks", argv)
    tree = GitTree(args.git_dir, source.commit)
    rows = write_stacks(args.out, source, stacks(tree, args.limit), unit="pixel")
    print(f"{source.name}: {len(rows)} stacks, {sum(r['n_objects'] for r in rows)} objects -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
