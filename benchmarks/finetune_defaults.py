"""Choose the fine-tuning defaults on the DSB2018 ``train`` split (never ``val``).

    python benchmarks/finetune_defaults.py --data ../shared/data/dsb2018 \
        --settings 1e-3:0,1e-3:30,1e-3:100,2e-4:0 --minutes 2

For each group, the train image with the most nuclei gets 20 annotated cells around the
window where the shipped model is least sure (as in ``finetune_real.py``); every setting
(peak learning rate : anchor) fine-tunes the shipped model on them for ``--minutes``, and is
scored by AP@0.5 on 6 other train images of the group (every n-th, spread over the group)
and on the rest of the annotated image. ``--threads 1 --minutes 4`` approximates the steps
of 2 minutes on two free cores when the machine is shared.

``--labellings`` scores every fine-tuned model with several labelling settings: ``inherited``
(the starting model's, what fine-tuning keeps), ``generic`` (``Labelling()`` with the starting
model's foreground threshold) and ``annotated`` (``calibrate_labelling`` on the annotated
square, which is fully annotated). Nothing here is asserted; the table is in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

import napari_unet as nu
from finetune_real import GROUPS, annotation, ap_on, region_with_cells, rest_of_image, score, starts
from napari_unet.datasets import AnnotatedImage, median_diameter, read_annotated
from napari_unet.training.calibrate import calibrate_labelling

CELLS = 20
SCORED = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/dsb2018"))
    parser.add_argument("--model", default="nuclei")
    parser.add_argument("--settings", default="1e-3:0,1e-3:100", help="LR:ANCHOR pairs, comma-separated")
    parser.add_argument("--groups", default="fluorescence-small,stained,fluorescence-large")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--labellings", default="inherited", help="inherited, generic, annotated (comma-separated)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = [tuple(float(v) for v in pair.split(":")) for pair in args.settings.split(",")]
    model = nu.load_model(args.model, device="cpu")
    train = read_annotated(args.data, split="train")
    rng = np.random.default_rng(0)
    print("| group | setting | steps | AP@0.5 other images | AP@0.5 rest of the image |\n|---|---|---|---|---|")
    for name in args.groups.split(","):
        samples = [s for s in train if GROUPS[name](s)]
        chosen = max(samples, key=lambda s: len(np.unique(s.labels)))
        scored = [s for s in samples if s is not chosen][::max(1, len(samples) // SCORED)][:SCORED]
        region = region_with_cells(chosen.labels, starts(chosen.image, chosen.labels, model, rng)["uncertainty"], CELLS)
        rest = rest_of_image(chosen.image, chosen.labels, region)
        print(f"| {name} | zero-shot | 0 | {score(model, scored):.3f} | {ap_on(model, *rest)} |", flush=True)
        for rate, anchor in settings:
            config = nu.TrainConfig(minutes=args.minutes, iterations=100_000, learning_rate=rate, anchor=anchor)
            tuned = nu.finetune(model, chosen.image, annotation(chosen.labels, region), regions=[[region]],
                                config=config)
            for labelling in args.labellings.split(","):
                variant = dataclasses.replace(tuned, labelling=labelling_of(labelling, tuned, chosen, region))
                print(f"| {name} | rate {rate:g}, anchor {anchor:g}, {labelling} labelling "
                      f"({', '.join(f'{k} {v:g}' for k, v in dataclasses.asdict(variant.labelling).items())}) | "
                      f"{tuned.history[-1]['steps']} | {score(variant, scored):.3f} | {ap_on(variant, *rest)} |",
                      flush=True)


def labelling_of(kind: str, tuned, chosen, region) -> nu.Labelling:
    """The labelling settings a fine-tuned model is scored with (see the module docstring)."""
    if kind == "inherited":
        return tuned.labelling
    if kind == "generic":
        return nu.Labelling(foreground=tuned.labelling.foreground)
    if kind == "annotated":
        y0, y1, x0, x1 = region
        labels = chosen.labels[y0:y1, x0:x1]
        crop = AnnotatedImage(id="annotated", image=chosen.image[y0:y1, x0:x1], labels=labels,
                              modality=chosen.modality, diameter=median_diameter(labels))
        return calibrate_labelling(tuned, [crop])
    raise ValueError(f"unknown labelling {kind!r}: choose inherited, generic or annotated")


if __name__ == "__main__":
    main()
