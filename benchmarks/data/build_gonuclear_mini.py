"""Build ``data/gonuclear_mini/``: small 3-D crops of hand-proofread ("gold") nuclei labels from the
GoNuclear training data (Arabidopsis ovules, confocal), as checked in as test data at
github.com/kreshuklab/go-nuclear under ``stardist/tests/data/<n>_mini.h5``.

Each HDF5 file holds ``raw`` and ``label`` (both (Z, Y, X) = 100^3 uint8, gzip) with the voxel size
in the ``element_size_um`` attribute (z, y, x). The checked-in crops were cast to uint8 without
rescaling; for 1137, 1139 and 1170 that wrapped the 16-bit raw values round and destroyed the image
(median ~125 and noise everywhere), so only the crops in :data:`STACKS` are used.

This does not fit :func:`sources.write_dataset` (2-D only); the folder it writes is
``images/<id>.tif`` (Z, Y, X) uint8 and ``masks/<id>.tif`` (Z, Y, X) uint16 instance labels, both
ImageJ TIFFs carrying the voxel size, plus ``index.csv`` and ``SOURCE.json``.

Needs ``h5py`` (not a napari-unet dependency: ``pip install h5py``).

    python benchmarks/data/build_gonuclear_mini.py --git-dir /path/to/go-nuclear/.git
"""

import csv
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from sources import GitTree, Source, build_arguments  # noqa: E402

SOURCE = Source(
    name="gonuclear_mini",
    repository="kreshuklab/go-nuclear",
    commit="00a2a3bc0113e6cc2214ff7b0bc7685ea360841c",
    licence="MIT License for the repository (LICENSE: 'Copyright (c) 2024 Qin Yu and Anna Kreshuk, EMBL'); the "
            "crops come from the GoNuclear training data deposited at BioImage Archive S-BIAD1026, whose own "
            "licence was not checked here",
    citation="Vijayan A, Mody TA, Yu Q, Wolny A, Cerrone L, Strauss S, Tsiantis M, Smith RS, Hamprecht FA, "
             "Kreshuk A, Schneitz K. A deep learning-based toolkit for 3D nuclei segmentation and quantitative "
             "analysis in cellular and tissue context. Development 151(14), dev202800 (2024). "
             "doi:10.1242/dev.202800",
    description="3-D fluorescence nuclei (Arabidopsis ovule primordia, confocal) with proofread 3-D instance "
                "labels: 100 x 100 x 100 voxel crops, anisotropic voxels (~0.28 um in z, ~0.127 um in y/x).",
    notes=[
        "crops made by the repository's stardist/tests/auxiliary/test_data.ipynb: raw[100:200, 500:600, 500:600] "
        "of 'raw/noisy' and of 'label/gold', labels relabelled, both cast to uint8",
        "1137, 1139 and 1170 are left out: their uint8 cast wrapped the raw intensities (the image is noise)",
        "in 1135 / 1136 about 0.2-0.5 % of the voxels inside nuclei read below 5, probably a few bright voxels "
        "wrapped by the same cast",
        "the image is the files' 'raw' = the source's 'raw/noisy' dataset; the repository does not say whether "
        "that is the acquired stack or a noise-added copy of it (it looks strongly shot-noise limited)",
        "nuclei cut by the crop faces are kept as the partial objects they are",
        "group = ovule stack (one specimen each)",
    ],
)

FOLDER = "stardist/tests/data"
STACKS = ("1135", "1136")
INDEX_COLUMNS = ("id", "source", "group", "modality", "target", "depth", "height", "width", "n_objects",
                 "median_eq_diameter_um", "voxel_size_zyx_um", "split")


def read_h5(data: bytes) -> dict:
    """``{"raw": array, "label": array, "voxel_size": (z, y, x)}`` from the bytes of one mini file."""
    try:
        import h5py
    except ImportError as error:  # not a napari-unet dependency
        raise SystemExit("build_gonuclear_mini needs h5py: pip install h5py") from error
    with h5py.File(io.BytesIO(data), "r") as handle:
        voxel = handle["raw"].attrs.get("element_size_um", (1.0, 1.0, 1.0))
        return {"raw": handle["raw"][()], "label": handle["label"][()],
                "voxel_size": tuple(float(v) for v in voxel)}


def instances_3d(labels: np.ndarray) -> np.ndarray:
    from skimage.segmentation import relabel_sequential

    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels of shape {labels.shape}: expected (Z, Y, X)")
    return relabel_sequential(labels.astype(np.int64))[0].astype(np.uint16)


def median_diameter_um(labels: np.ndarray, voxel_size) -> float:
    """Median diameter of the sphere with each object's volume, in micrometres."""
    volumes = np.bincount(labels.ravel())[1:]
    volumes = volumes[volumes > 0] * float(np.prod(voxel_size))
    return float((6 * np.median(volumes) / np.pi) ** (1 / 3)) if volumes.size else float("nan")


def stacks(tree, limit=None):
    """``(id, image, labels, voxel_size, group)`` for each usable crop."""
    present = set(tree.files(f"{FOLDER}/"))
    for count, name in enumerate(STACKS):
        if limit is not None and count >= limit:
            return
        path = f"{FOLDER}/{name}_mini.h5"
        if path not in present:
            continue
        content = read_h5(tree.read(path))
        image = np.asarray(content["raw"])
        labels = instances_3d(content["label"])
        if image.shape != labels.shape or image.ndim != 3:
            raise ValueError(f"{path}: raw {image.shape} and label {labels.shape} differ or are not 3-D")
        yield f"ovule_{name}", image, labels, content["voxel_size"], f"ovule-{name}"


def write_stacks(out, source: Source, items, unit: str = "um") -> list[dict]:
    """The stacks as ImageJ TIFFs (voxel size in ``unit``), ``index.csv`` and ``SOURCE.json``."""
    import tifffile

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, image, labels, voxel, group in items:
        z, y, x = voxel
        options = {"imagej": True, "resolution": (1 / x, 1 / y), "metadata": {"spacing": z, "unit": unit,
                                                                             "axes": "ZYX"}}
        tifffile.imwrite(out / "images" / f"{name}.tif", image, **options)
        tifffile.imwrite(out / "masks" / f"{name}.tif", labels, **options)
        rows.append({"id": name, "source": source.name, "group": group, "modality": "fluorescence",
                     "target": "nuclei", "depth": image.shape[0], "height": image.shape[1],
                     "width": image.shape[2], "n_objects": int(labels.max()),
                     "median_eq_diameter_um": round(median_diameter_um(labels, voxel), 2),
                     "voxel_size_zyx_um": " ".join(f"{v:.4f}" for v in voxel), "split": ""})
    with open(out / "index.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    meta = {"name": source.name, "repository": source.repository, "commit": source.commit,
            "licence": source.licence, "citation": source.citation, "description": source.description,
            "notes": source.notes, "images": len(rows), "objects": sum(r["n_objects"] for r in rows),
            "axes": "ZYX"}
    (out / "SOURCE.json").write_text(json.dumps(meta, indent=1) + "\n")
    return rows


def main(argv=None, source: Source = SOURCE) -> int:
    args = build_arguments(source, "3-D folder", "stacks", argv)
    tree = GitTree(args.git_dir, source.commit)
    rows = write_stacks(args.out, source, stacks(tree, args.limit))
    print(f"{source.name}: {len(rows)} stacks, {sum(r['n_objects'] for r in rows)} objects -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
