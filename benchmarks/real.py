"""Real microscopy: the shipped model on the DSB2018 ``val`` split, per modality and scale.

    python benchmarks/real.py --data ../shared/data/dsb2018            # the table in docs/benchmarks.md
    python benchmarks/real.py --data ../shared/data/dsb2018 --limit 5  # a quick look

Methods, each on every image of the split (nothing is set per image or per modality):

- ``nuclei``: the shipped model with every default (diameter estimated, polarity detected);
- ``nuclei, true diameter``: the same, given each image's true median nucleus diameter
  (how much the size estimate costs);
- ``nuclei + flips``: the defaults with test-time augmentation (``flips=True``: every tile
  also predicted mirrored three ways, the four averaged);
- ``synthetic-only v1``: the model shipped before (trained on synthetic images only), as it
  ran then (``tests/data/nuclei-synthetic-v1.safetensors``, no rescaling);
- ``Otsu + watershed``: grey image (inverted when the background is bright, by the same
  rule the models use), Otsu threshold, seeds at the maxima of the smoothed distance
  transform, watershed — a classical baseline with no trained parameters.

Scale robustness: the images (and their labels) rescaled by 0.5 and 2, segmented by
``nuclei`` with every default. AP@tau is TP / (TP + FP + FN) at IoU > tau, the mean over the
images of a group ("per image") and over all objects of the group pooled ("pooled", as the
StarDist paper reports it). Nothing here is asserted; the numbers go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import napari_unet as nu
from napari_unet.datasets import read_annotated
from napari_unet.inference.appearance import bright_background, grey
from napari_unet.inference.rescale import resample, resample_nearest
from napari_unet.metrics import match_instances

PREVIOUS_MODEL = Path(__file__).resolve().parent.parent / "tests" / "data" / "nuclei-synthetic-v1.safetensors"
MODALITIES = ("fluorescence", "brightfield", "stained")


def otsu_watershed(image: np.ndarray) -> np.ndarray:
    """The classical baseline: Otsu foreground, distance-transform seeds, watershed."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    colour = image.ndim == 3
    plane = grey(image, colour)
    if bright_background(image, colour):
        plane = -plane
    plane = ndi.gaussian_filter(plane, 1.0)
    foreground = ndi.binary_opening(plane > threshold_otsu(plane))
    distance = ndi.gaussian_filter(ndi.distance_transform_edt(foreground), 1.0)
    blobs, _ = ndi.label(foreground)
    peaks = peak_local_max(distance, min_distance=3, labels=blobs, exclude_border=False)
    markers = np.zeros(plane.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=foreground)


def rescaled(sample, factor: float):
    image = resample(np.asarray(sample.image, np.float32), factor)
    return image, resample_nearest(sample.labels, factor, image.shape[:2])


def score(labels, truth) -> dict:
    counts = {}
    for tau, key in ((0.5, "50"), (0.75, "75")):
        match = match_instances(labels.astype(np.int64), truth.astype(np.int64), threshold=tau)
        counts[key] = (match.tp, match.fp, match.fn)
    return counts


def run(methods: dict, samples, scales) -> list[dict]:
    rows = []
    for sample in samples:
        for scale in scales:
            image, truth = (sample.image, sample.labels) if scale == 1 else rescaled(sample, scale)
            for name, method in methods.items():
                if scale != 1 and name != "nuclei":
                    continue
                start = time.perf_counter()
                labels = method(image, sample.diameter * scale)
                rows.append({"id": sample.id, "modality": sample.modality, "scale": scale, "method": name,
                             "seconds": time.perf_counter() - start, "pixels": int(np.prod(truth.shape)),
                             "counts": score(labels, truth)})
        print(f"{sample.id} {sample.modality} done", flush=True)
    return rows


def summarise(rows) -> dict:
    groups = defaultdict(list)
    for row in rows:
        for modality in (row["modality"], "all"):
            groups[(row["method"], row["scale"], modality)].append(row)
    table = {}
    for key, members in groups.items():
        entry = {"images": len(members), "seconds": float(np.mean([m["seconds"] for m in members]))}
        for tau in ("50", "75"):
            per_image = [tp / max(1, tp + fp + fn) for tp, fp, fn in (m["counts"][tau] for m in members)]
            tp, fp, fn = np.sum([m["counts"][tau] for m in members], axis=0)
            entry[f"ap{tau}"] = float(np.mean(per_image))
            entry[f"ap{tau}_pooled"] = float(tp / max(1, tp + fp + fn))
        table["|".join(map(str, key))] = entry
    return table


def print_table(table: dict, methods, scales) -> None:
    print("\n| method | scale | modality | images | AP@0.5 | AP@0.75 | AP@0.5 pooled | AP@0.75 pooled | s/image |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scale in scales:
        for method in methods:
            for modality in MODALITIES + ("all",):
                entry = table.get(f"{method}|{scale}|{modality}")
                if entry:
                    print(f"| {method} | x{scale:g} | {modality} | {entry['images']} | {entry['ap50']:.3f} | "
                          f"{entry['ap75']:.3f} | {entry['ap50_pooled']:.3f} | {entry['ap75_pooled']:.3f} | "
                          f"{entry['seconds']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/dsb2018"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", default="nuclei")
    parser.add_argument("--limit", type=int, help="at most this many images per modality")
    parser.add_argument("--scales", default="1,0.5,2")
    parser.add_argument("--methods", nargs="+", help="run only these methods (names as in the table)")
    parser.add_argument("--out", type=Path, help="also write every per-image score as JSON")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = nu.load_model(args.model, device="cpu")
    previous = nu.load_model(PREVIOUS_MODEL, device="cpu")
    samples = [s for modality in MODALITIES
               for s in read_annotated(args.data, split=args.split, modality=modality, limit=args.limit)]
    methods = {
        "nuclei": lambda image, diameter: nu.segment(image, model),
        "nuclei, true diameter": lambda image, diameter: nu.segment(image, model, diameter=diameter),
        "nuclei + flips": lambda image, diameter: nu.segment(image, model, flips=True),
        "synthetic-only v1": lambda image, diameter: nu.segment(image, previous),
        "Otsu + watershed": lambda image, diameter: otsu_watershed(image),
    }
    unknown = set(args.methods or ()) - set(methods)
    if unknown:
        parser.error(f"--methods: unknown {sorted(unknown)}; choose from {list(methods)}")
    methods = {name: method for name, method in methods.items() if not args.methods or name in args.methods}
    scales = [float(s) for s in args.scales.split(",")]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, model {args.model}, {len(samples)} images of the {args.split} split")
    rows = run(methods, samples, scales)
    table = summarise(rows)
    print_table(table, methods, scales)
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "table": table}, indent=1))


if __name__ == "__main__":
    main()
