"""Real results to look at: the shipped model on DSB2018 ``val`` images, outlines over the image.

    python benchmarks/gallery.py --data ../shared/data/dsb2018 --out docs/images/real-val.png

For each modality, the image whose AP@0.5 is the median of its modality and the one with the
lowest AP@0.5 (brightfield has one image: shown with the estimated and with the true
diameter). A 256 px window around each image's centre; green: the model's outlines, magenta:
the annotated ones. Every option at its default unless the panel says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import napari_unet as nu
from napari_unet.datasets import read_annotated
from napari_unet.metrics import average_precision

WINDOW = 256


def window(array: np.ndarray) -> np.ndarray:
    height, width = array.shape[:2]
    top, left = max(0, (height - WINDOW) // 2), max(0, (width - WINDOW) // 2)
    return array[top:top + WINDOW, left:left + WINDOW]


def overlay(image: np.ndarray, labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The image as RGB in [0, 1] with the annotated outlines in magenta and the model's in green."""
    from skimage.segmentation import find_boundaries

    rgb = image.astype(np.float32)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    rgb = rgb[..., :3]
    low, high = np.percentile(rgb, (1, 99.8))
    rgb = np.clip((rgb - low) / max(high - low, 1e-6), 0, 1)
    rgb[find_boundaries(truth, mode="inner")] = (1.0, 0.0, 1.0)
    rgb[find_boundaries(labels, mode="inner")] = (0.0, 1.0, 0.0)
    return rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/dsb2018"))
    parser.add_argument("--model", default="nuclei")
    parser.add_argument("--out", type=Path, default=Path("real-val.png"))
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = nu.load_model(args.model, device="cpu")
    panels = []
    for modality in ("fluorescence", "stained", "brightfield"):
        scored = []
        for sample in read_annotated(args.data, split="val", modality=modality):
            labels = nu.segment(sample.image, model)
            scored.append((average_precision(labels, sample.labels, thresholds=(0.5,))[0.5], sample, labels))
        scored.sort(key=lambda item: item[0])
        if len(scored) == 1:
            ap, sample, labels = scored[0]
            given = nu.segment(sample.image, model, diameter=sample.diameter)
            given_ap = average_precision(given, sample.labels, thresholds=(0.5,))[0.5]
            panels += [(f"{modality}, estimated size: AP@0.5 {ap:.2f}", sample, labels),
                       (f"{modality}, true diameter given: {given_ap:.2f}", sample, given)]
        else:
            for which, (ap, sample, labels) in (("median", scored[len(scored) // 2]), ("worst", scored[0])):
                panels.append((f"{modality}, {which} of {len(scored)}: AP@0.5 {ap:.2f}", sample, labels))
        print(modality, "done", flush=True)
    figure, axes = plt.subplots(2, 3, figsize=(12, 8.4))
    for axis, (title, sample, labels) in zip(axes.T.ravel(), panels):
        axis.imshow(overlay(window(sample.image), window(labels), window(sample.labels)))
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    figure.suptitle(f"napari-unet '{args.model}' on DSB2018 val (never seen in training): green = model, "
                    "magenta = annotation", fontsize=11)
    figure.tight_layout()
    figure.savefig(args.out, dpi=80)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
