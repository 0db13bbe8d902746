"""Z stacks: 3-D objects scored in 3-D, on real annotated stacks.

    python benchmarks/stacks.py --data data/gonuclear_mini            # the table in docs/benchmarks.md
    python benchmarks/stacks.py --data data/qcanet                    # its second source
    python benchmarks/stacks.py --data data/gonuclear_mini --model checkpoints/nuclei-v2.safetensors

A folder of ``images/<id>.tif`` and ``masks/<id>.tif`` (Z, Y, X) with 3-D instance labels
(``benchmarks/data/build_gonuclear_mini.py`` and ``build_qcanet.py`` write one). Each stack is segmented as a Z
stack (``axes="ZYX"``) and scored with 3-D objects: AP@tau = TP / (TP + FP + FN) at a 3-D
IoU > tau. Methods: the planes' probabilities labelled as one volume (the default,
``z_labelling="volume"``, with the z step of the index's voxel size) with the diameter
estimated and given, as two true sizes: the median equivalent diameter of the objects'
largest plane sections, and their 3-D equivalent diameter (the index's, the ball of the
same volume); each plane labelled and its cells linked by overlap (``z_labelling="link"``);
and the planes on their own (``stitch=False``) as the floor: each plane's outline a
separate object. Every method smooths the stacks as the default does (they are very noisy:
``napari_unet.inference.denoise``) except the two rows marked "not smoothed" (``denoise=0``).
Nothing is asserted; the numbers go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

import napari_unet as nu
from napari_unet.metrics import average_precision


def xy_diameter(labels: np.ndarray) -> float:
    """Median over the objects of the equivalent diameter of their largest plane section."""
    largest = {}
    for plane in labels:
        ids, counts = np.unique(plane[plane > 0], return_counts=True)
        for index, count in zip(ids, counts):
            largest[index] = max(largest.get(index, 0), count)
    return float(np.median(2 * np.sqrt(np.array(list(largest.values())) / np.pi)))


def outline_figure(image: np.ndarray, truth: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """Planes at 30, 50 and 70 % of the stack and an x-z section through its middle row: the
    image with the true outlines (green) beside it with the predicted ones (magenta)."""
    from skimage.io import imsave
    from skimage.segmentation import find_boundaries

    low, high = np.percentile(image, (1, 99.8))
    grey = np.clip((image.astype(np.float32) - low) / (high - low), 0, 1)
    depth, rows = image.shape[0], image.shape[1]
    views = [(lambda a, z=int(f * depth): a[z]) for f in (0.3, 0.5, 0.7)] + [lambda a: a[:, rows // 2]]
    panels = []
    for view in views:
        pair = []
        for labels_, colour in ((truth, (0, 1, 0)), (labels, (1, 0, 1))):
            rgb = np.repeat(view(grey)[..., None], 3, axis=-1)
            rgb[find_boundaries(view(labels_), mode="inner")] = colour
            pair.append(rgb)
        panels.append(np.concatenate(pair, axis=1))
    width = max(panel.shape[1] for panel in panels)
    figure = np.concatenate([np.pad(p, ((0, 2), (0, width - p.shape[1]), (0, 0))) for p in panels], axis=0)
    figure = np.kron(figure, np.ones((2, 2, 1)))  # 2x: outlines visible at docs width
    imsave(path, (figure * 255).astype(np.uint8), check_contrast=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/gonuclear_mini"))
    parser.add_argument("--model", default="nuclei")
    parser.add_argument("--figure", type=Path, help="also draw the first stack's default labelling here (.png)")
    args = parser.parse_args()
    model = nu.load_model(args.model, device="cpu")
    rows = list(csv.DictReader(open(args.data / "index.csv")))
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, model {args.model}, "
          f"{len(rows)} stacks")
    results = []
    for row in rows:
        image = tifffile.imread(args.data / "images" / f"{row['id']}.tif")
        truth = tifffile.imread(args.data / "masks" / f"{row['id']}.tif")
        diameter = xy_diameter(truth)
        voxel = [float(v) for v in row.get("voxel_size_zyx_um", "").split()] or [1.0, 1.0, 1.0]
        z_step = voxel[0] / voxel[2]
        # the nuclei's 3-D equivalent diameter (the index's, in um) in pixels of the planes
        ball = float(row["median_eq_diameter_um"]) / voxel[2] if row.get("median_eq_diameter_um") else diameter
        methods = {
            "planes on their own (largest section)": dict(stitch=False, diameter=diameter),
            "linked planes (largest section)": dict(z_labelling="link", diameter=diameter),
            "volume (estimated size, not smoothed)": dict(z_step=z_step, denoise=0),
            "volume (3-D equivalent diameter, not smoothed)": dict(z_step=z_step, diameter=ball, denoise=0),
            "volume (estimated size)": dict(z_step=z_step),
            "volume (largest section)": dict(z_step=z_step, diameter=diameter),
            "volume (3-D equivalent diameter)": dict(z_step=z_step, diameter=ball),
        }
        for name, options in methods.items():
            start = time.perf_counter()
            labels = nu.segment(image, model, axes="ZYX", device="cpu", **options)
            seconds = time.perf_counter() - start
            objects = len(np.unique(labels)) - 1
            ap = average_precision(labels.astype(np.int64), truth.astype(np.int64))
            results.append((row["id"], name, ap, objects, int(truth.max()), seconds))
            if args.figure and row is rows[0] and name == "volume (estimated size)":
                outline_figure(image, truth, labels, args.figure)
            print(f"{row['id']} {name}: AP@0.5 {results[-1][2][0.5]:.3f}, {objects} objects "
                  f"({int(truth.max())} true), {seconds:.1f} s", flush=True)
    print("\n| method | " + " | ".join(row["id"] for row in rows) + " | mean AP@0.5 | mean AP@0.75 |")
    print("|---|" + "---|" * (len(rows) + 2))
    for name in dict.fromkeys(r[1] for r in results):
        mine = [r for r in results if r[1] == name]
        cells = " | ".join(f"{r[2][0.5]:.3f} ({r[3]}/{r[4]})" for r in mine)
        print(f"| {name} | {cells} | {np.mean([r[2][0.5] for r in mine]):.3f} | "
              f"{np.mean([r[2][0.75] for r in mine]):.3f} |")


if __name__ == "__main__":
    main()
