"""What every data build script shares: reading a git repository at a pinned commit and
writing an annotated folder in the layout :func:`napari_unet.datasets.read_annotated` reads.

A build script is ``python benchmarks/data/build_<source>.py --git-dir DIR [--out data/<source>]``
where ``DIR`` is the git directory of a clone of the source repository (``git clone
https://github.com/OWNER/NAME``, then ``NAME/.git``; a bare clone works too). The script
reads only the commit it pins (``COMMIT``), so the folder it writes is the same on every
machine, and it never downloads anything itself.

The folder written: ``images/<id>.tif`` (``(Y, X)`` grey or ``(Y, X, 3)`` RGB, uint8 or
uint16), ``masks/<id>.tif`` (``(Y, X)`` uint16 instance labels, 0 = background, 1..N),
``index.csv`` (columns :data:`INDEX_COLUMNS`) and ``SOURCE.json`` (repository, commit,
licence, citation as the source states them).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
# where the build scripts write by default (ignored by git: data stays out of the repository)
DATA_ROOT = ROOT / "data"

INDEX_COLUMNS = ("id", "source", "group", "modality", "target", "height", "width", "n_objects",
                 "median_eq_diameter_px", "split")
# modality: how the image looks (the groups the pretraining recipe draws patches from);
# target: what the masks outline
MODALITIES = ("fluorescence", "brightfield", "stained", "phase")
TARGETS = ("nuclei", "cells")


@dataclass(frozen=True)
class Source:
    """Where a data set comes from and under which terms (as the source states them)."""

    name: str
    repository: str  # OWNER/NAME on GitHub
    commit: str  # 40 hex digits
    licence: str
    citation: str
    description: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sample:
    """One annotated image of a source.

    ``group``: the experiment / organ / patient / lab the image comes from, the unit a
    leave-source-out evaluation holds out (images of one group are never split apart).
    ``split``: the source's own train/test split when it has one, else "".
    """

    id: str
    image: np.ndarray
    labels: np.ndarray
    group: str
    modality: str
    target: str
    split: str = ""


class GitTree:
    """Read-only access to one commit of a git repository (no work tree needed)."""

    def __init__(self, git_dir, commit: str):
        self.git_dir = Path(git_dir)
        self.commit = commit
        if not self.git_dir.exists():
            raise SystemExit(f"--git-dir {git_dir}: no such folder (clone the source repository first)")
        kind = self._git("cat-file", "-t", commit, check=False)
        if kind.strip() != b"commit":
            raise SystemExit(f"--git-dir {git_dir}: commit {commit} is not in this repository "
                             "(fetch it, or clone the repository again)")

    def _git(self, *args: str, check: bool = True) -> bytes:
        result = subprocess.run(["git", f"--git-dir={self.git_dir}", *args], capture_output=True)
        if check and result.returncode != 0:
            raise SystemExit(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout

    def files(self, prefix: str = "") -> list[str]:
        """Paths of the files under ``prefix`` at the pinned commit, sorted."""
        out = self._git("ls-tree", "-r", "--name-only", "-z", self.commit, "--", prefix)
        return sorted(path for path in out.decode().split("\0") if path)

    def read(self, path: str) -> bytes:
        """The bytes of one file at the pinned commit."""
        return self._git("cat-file", "blob", f"{self.commit}:{path}")

    def read_image(self, path: str) -> np.ndarray:
        """A PNG / TIFF / JPEG / BMP file of the commit as an array."""
        data = self.read(path)
        if path.lower().endswith((".tif", ".tiff")):
            import tifffile

            return tifffile.imread(io.BytesIO(data))
        import imageio.v3 as iio

        return iio.imread(data, extension=Path(path).suffix.lower())


def as_rgb_or_grey(image: np.ndarray) -> np.ndarray:
    """``(Y, X)`` for grey images (RGB with equal channels included), ``(Y, X, 3)`` for colour;
    an alpha channel is dropped."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (2, 4):
        image = image[..., :3] if image.shape[-1] == 4 else image[..., :1]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 3 and np.array_equal(image[..., 0], image[..., 1]) \
            and np.array_equal(image[..., 0], image[..., 2]):
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"image of shape {image.shape}: expected (Y, X) or (Y, X, 3)")
    return image


def to_instances(labels: np.ndarray, *, split_components: bool = False) -> np.ndarray:
    """Sequential uint16 instance labels 1..N (0 = background).

    ``split_components``: the masks are semantic (one value for all objects) or reuse a
    value for several objects; each 8-connected component becomes its own object.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential

    labels = np.asarray(labels)
    if labels.ndim == 3:
        raise ValueError(f"labels of shape {labels.shape}: expected one (Y, X) plane")
    if split_components:
        out = np.zeros(labels.shape, np.int64)
        count = 0
        for value in np.unique(labels[labels > 0]):
            parts, n = ndi.label(labels == value, structure=np.ones((3, 3)))
            out[parts > 0] = parts[parts > 0] + count
            count += n
        labels = out
    relabelled = relabel_sequential(labels.astype(np.int64))[0]
    if relabelled.max() > np.iinfo(np.uint16).max:
        raise ValueError(f"{relabelled.max()} objects do not fit uint16 labels")
    return relabelled.astype(np.uint16)


def paint_polygons(shape: tuple[int, int], polygons: Iterable[np.ndarray]) -> np.ndarray:
    """Instance labels from polygons (each ``(N, 2)`` of (row, column) vertices), painted in
    order (a later polygon wins where two overlap), uint16."""
    from skimage.draw import polygon as fill

    labels = np.zeros(shape, np.int64)
    count = 0
    for vertices in polygons:
        vertices = np.asarray(vertices, float)
        if len(vertices) < 3:
            continue
        rows, cols = fill(vertices[:, 0], vertices[:, 1], shape)
        if rows.size:
            count += 1
            labels[rows, cols] = count
    return to_instances(labels)


def median_diameter(labels: np.ndarray) -> float:
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    return float(2 * np.sqrt(np.median(areas) / np.pi)) if areas.size else float("nan")


def write_dataset(out, source: Source, samples: Iterable[Sample], *, min_objects: int = 1) -> list[dict]:
    """Write ``samples`` as an annotated folder at ``out`` (images, masks, index.csv,
    SOURCE.json); returns the index rows. Images with fewer than ``min_objects`` objects
    are left out (counted in SOURCE.json)."""
    import tifffile

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows, skipped, seen = [], 0, set()
    for sample in samples:
        if sample.modality not in MODALITIES or sample.target not in TARGETS:
            raise ValueError(f"{sample.id}: modality {sample.modality!r} / target {sample.target!r} "
                             f"not in {MODALITIES} / {TARGETS}")
        if sample.id in seen:
            raise ValueError(f"{source.name}: id {sample.id!r} twice")
        seen.add(sample.id)
        image = as_rgb_or_grey(sample.image)
        labels = to_instances(sample.labels)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"{sample.id}: labels {labels.shape} and image {image.shape} differ")
        count = int(labels.max())
        if count < min_objects:
            skipped += 1
            continue
        tifffile.imwrite(out / "images" / f"{sample.id}.tif", image, compression="zlib")
        tifffile.imwrite(out / "masks" / f"{sample.id}.tif", labels, compression="zlib")
        rows.append({"id": sample.id, "source": source.name, "group": sample.group, "modality": sample.modality,
                     "target": sample.target, "height": image.shape[0], "width": image.shape[1],
                     "n_objects": count, "median_eq_diameter_px": round(median_diameter(labels), 1),
                     "split": sample.split})
    with open(out / "index.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    meta = {"name": source.name, "repository": source.repository, "commit": source.commit,
            "licence": source.licence, "citation": source.citation, "description": source.description,
            "notes": source.notes, "images": len(rows), "objects": sum(r["n_objects"] for r in rows),
            "skipped_without_objects": skipped}
    (out / "SOURCE.json").write_text(json.dumps(meta, indent=1) + "\n")
    return rows


def build_arguments(source: Source, what: str, items: str, argv=None) -> argparse.Namespace:
    """``--git-dir DIR [--out FOLDER] [--limit N]``, the options of every build script."""
    parser = argparse.ArgumentParser(description=f"Build the {source.name} {what} from "
                                                 f"github.com/{source.repository} at commit {source.commit[:10]}")
    parser.add_argument("--git-dir", required=True, help="git directory of a clone of the source repository")
    parser.add_argument("--out", default=str(DATA_ROOT / source.name), help="folder to write (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help=f"at most this many {items} (a quick look)")
    return parser.parse_args(argv)


def build_main(source: Source, samples, argv=None) -> int:
    """The command line of a build script: ``--git-dir DIR [--out FOLDER] [--limit N]``;
    ``samples(tree, limit)`` yields the source's :class:`Sample` objects."""
    args = build_arguments(source, "annotated folder", "images", argv)
    tree = GitTree(args.git_dir, source.commit)
    rows = write_dataset(args.out, source, samples(tree, args.limit))
    groups = sorted({row["group"] for row in rows})
    print(f"{source.name}: {len(rows)} images, {sum(r['n_objects'] for r in rows)} objects, "
          f"{len(groups)} groups -> {args.out}")
    return 0
