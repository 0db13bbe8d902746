"""Fine-tuning the shipped model on a dozen annotated cells of an unseen style.

    python benchmarks/finetune.py                    # 2-minute budget, 12 cells
    python benchmarks/finetune.py --scratch          # also the same budget from random weights
    python benchmarks/finetune.py --style dim-rods   # the stress-test style
    python benchmarks/finetune.py --style cells --cells 20 --scratch   # whole cells, 2 channels

The images come from ``napari_unet.synth.out_of_distribution_config(kind=--style)``; the
default "magnified" style has large, coarsely textured nuclei with dim rims in an
oversampled bright image, outside the ranges the ``nuclei`` model was pretrained on. One
training image is annotated sparsely: a rectangle holding at most
``--cells`` cells is fully labelled and everything outside it is ignored (not background).
Training stops at ``--budget`` seconds of wall-clock time (cancelling the run keeps the last
weights). AP@0.5 is the DSB2018 / StarDist convention TP / (TP + FP + FN), averaged over
held-out images of the same style.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.metrics import average_precision
from napari_unet.config import SEEDS
from napari_unet.synth import synth_dataset
from common import OUT_OF_DISTRIBUTION, out_of_distribution_config
from napari_unet.events import TrainStep
from napari_unet.training.loop import iter_finetune


def annotated_rectangle(labels: np.ndarray, cells: int) -> tuple[int, int, int, int]:
    """The largest square from the image centre outwards that touches at most ``cells`` cells."""
    height, width = labels.shape
    cy, cx = height // 2, width // 2
    best = None
    for half in range(8, min(cy, cx) + 1, 4):
        y0, y1, x0, x1 = cy - half, cy + half, cx - half, cx + half
        touched = np.unique(labels[y0:y1, x0:x1])
        if np.count_nonzero(touched) > cells:
            break
        best = (y0, y1, x0, x1)
    return best


def score(model, pairs) -> dict[str, float]:
    """Mean AP@0.5 over ``pairs`` of ``nu.segment`` for each way of splitting touching cells
    (``seeds=...``), every other option at its default (the model's labelling)."""
    return {seeds: float(np.mean([average_precision(nu.segment(image, model, device="cpu", seeds=seeds), truth,
                                                    thresholds=(0.5,))[0.5]
                                  for image, truth in pairs]))
            for seeds in SEEDS}


def fine_tune(start, image, labels, region, budget: float, config: TrainConfig):
    began = time.perf_counter()
    model, steps = start, 0
    events = iter_finetune(start, image, labels, regions=[[region]], config=config)
    for event in events:
        if isinstance(event, TrainStep):
            model, steps = event.model, event.step
            if time.perf_counter() - began > budget:
                events.close()  # the user pressed Cancel: the last weights are kept
                break
        elif hasattr(event, "reason"):
            model = event.model
    return model, steps, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=12)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of fine-tuning")
    parser.add_argument("--held-out", type=int, default=6)
    parser.add_argument("--scratch", action="store_true", help="also train from random weights, same budget")
    parser.add_argument("--style", choices=OUT_OF_DISTRIBUTION, default="magnified")
    parser.add_argument("--seed", type=int, default=0, help="training seed (patches, augmentation)")
    args = parser.parse_args()

    style = out_of_distribution_config(shape=(320, 320), kind=args.style)
    (image, truth), = synth_dataset(1, seed=100, config=style)
    held_out = synth_dataset(args.held_out, seed=200, config=style)
    y0, y1, x0, x1 = annotated_rectangle(truth, args.cells)
    inside = np.zeros(truth.shape, bool)
    inside[y0:y1, x0:x1] = True
    annotated = np.where(inside, truth, 0)
    cells = np.count_nonzero(np.unique(annotated))
    config = TrainConfig(iterations=600, learning_rate=1e-3, batch_size=4, patch_size=128, precision="bf16",
                         device="cpu", seed=args.seed)
    print(f"# {torch.get_num_threads()} CPU threads; {cells} annotated cells in a {y1 - y0}x{x1 - x0} px region of "
          f"one 320x320 image; {args.held_out} held-out {args.style} images; budget {args.budget:.0f} s; "
          f"training seed {args.seed}\n")
    nuclei = nu.load_model("nuclei", device="cpu")
    rows = [("nuclei, zero-shot", score(nuclei, held_out), "-", "-")]
    tuned, steps, seconds = fine_tune(nuclei, image, annotated, (y0, y1, x0, x1), args.budget, config)
    rows.append((f"nuclei + fine-tuning on {cells} cells", score(tuned, held_out), steps, f"{seconds:.0f}"))
    if args.scratch:
        scratch = nu.create_model("unet", depth=nuclei.config.depth, base_channels=nuclei.config.base_channels,
                                  in_channels=nuclei.config.in_channels)
        scratch.diameter = nuclei.diameter
        trained, steps, seconds = fine_tune(scratch, image, annotated, (y0, y1, x0, x1), args.budget,
                                            TrainConfig(**{**config.__dict__, "freeze_batchnorm": False}))
        rows.append((f"random init + training on {cells} cells", score(trained, held_out), steps, f"{seconds:.0f}"))
    print("| model | AP@0.5, distance seeds (default) | AP@0.5, interior seeds | steps | seconds |")
    print("|---|---|---|---|---|")
    for name, ap, steps, seconds in rows:
        print(f"| {name} | {ap['distance']:.3f} | {ap['interior']:.3f} | {steps} | {seconds} |")


if __name__ == "__main__":
    main()
