"""Human in the loop on real images: fine-tuning on a few annotated cells of one image.

    python benchmarks/finetune_real.py --data ../shared/data/dsb2018          # the docs table
    python benchmarks/finetune_real.py --data ../shared/data/dsb2018 --cells 10 --groups stained
    python benchmarks/finetune_real.py --experiments --data data/coelho2009 --data data/ctc_fluo_nuclei \
        --groups coelho2009/gnf-U2OS,ctc_fluo_nuclei/Fluo-N2DL-HeLa --cells 20 --scratch-at 0   # new sources

For each group of the DSB2018 ``val`` split (fluorescence with small and with large nuclei,
stained, brightfield), the image with the most nuclei is the one a user annotates; the
others are scored. A user who annotates N cells paints them completely inside a rectangle
(everything else in it is background); the rectangle is grown around a starting point until
it holds N whole cells. The starting point is either the centre of the window where the
shipped model is least sure of itself (``nu.uncertainty``), or a random nucleus. With one
image in a group (brightfield), its left half is annotated and its right half scored.

Rows: the shipped model zero-shot; fine-tuned on N cells (uncertainty-placed and
random-placed) for the time budget; and the same architecture trained from scratch on the
same cells for the same time (at ``--scratch-at`` cell counts, 20 by default, to keep the run
near an hour on two cores); with ``--self-training`` also the same cells fine-tuned with
``TrainConfig.confident_cells`` (the start's confident predictions elsewhere in the image
learned too), and with ``--variant NAME:OPTION=VALUE`` the same cells fine-tuned with other
TrainConfig options (e.g. ``decoder:trainable=decoder``). AP@0.5 is the mean over the scored images, every model run
with its defaults (diameter estimated per image). A second score is the user's own case: the
rest of the annotated image (its largest strip beside the annotated rectangle), fine-tuned
against zero-shot. The groups mix many experiments (cell lines, microscopes), so the other
images are mostly *unlike* the annotated one; the rest of the image is like it. Nothing
here is asserted.

With ``--experiments`` the groups are the experiments of the folders' index (``SOURCE/GROUP``,
the sources no model was trained on): the image of the experiment with the most objects is
annotated and up to ``--scored`` other images of the same experiment are scored, the
protocol of the fine-tuning issue (<= 20 cells, <= 2 minutes). ``--target cells`` reads the
whole-cell images (with a cells model).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import napari_unet as nu
from napari_unet.datasets import read_annotated
from napari_unet.metrics import average_precision

# uncertainty-placed against randomly placed corrections, at this number of cells
COMPARE_PLACEMENT_AT = 20
GROUPS = {
    "fluorescence-small": lambda s: s.modality == "fluorescence" and s.diameter < 25,
    "fluorescence-large": lambda s: s.modality == "fluorescence" and s.diameter >= 25,
    "stained": lambda s: s.modality == "stained",
    "brightfield": lambda s: s.modality == "brightfield",
}


def region_with_cells(labels: np.ndarray, start: tuple[int, int], cells: int) -> tuple[int, int, int, int]:
    """The smallest square around ``start`` (grown 4 px at a time) holding ``cells`` whole cells."""
    height, width = labels.shape
    y, x = start
    for half in range(8, max(height, width), 4):
        y0, y1, x0, x1 = max(0, y - half), min(height, y + half), max(0, x - half), min(width, x + half)
        inside = labels[y0:y1, x0:x1]
        edge = np.unique(np.concatenate([inside[0], inside[-1], inside[:, 0], inside[:, -1]]))
        whole = np.setdiff1d(np.unique(inside), np.append(edge, 0))
        if whole.size >= cells:
            return y0, y1, x0, x1
    return 0, height, 0, width


def annotation(labels: np.ndarray, region) -> np.ndarray:
    """What the user painted: every cell inside the region (the cells its edge cuts are
    painted up to the edge; training leaves their cut rims out of the loss)."""
    y0, y1, x0, x1 = region
    inside = np.zeros_like(labels)
    inside[y0:y1, x0:x1] = labels[y0:y1, x0:x1]
    return inside


def rest_of_image(image, labels, region):
    """The largest strip of the annotated image beside the region (above, below, left or
    right of it): the rest of the user's own image, which the fine-tuned model should now
    segment better (the cells the strip's edge cuts are scored as they are cut)."""
    y0, y1, x0, x1 = region
    height, width = labels.shape
    strips = [(slice(0, y0), slice(None)), (slice(y1, height), slice(None)),
              (slice(None), slice(0, x0)), (slice(None), slice(x1, width))]
    rows, cols = max(strips, key=lambda s: labels[s].size)
    return image[rows, cols], labels[rows, cols]


def ap_on(model, image, labels) -> float | None:
    """AP@0.5 on one image, None when it is too small or holds too few cells to score."""
    if min(labels.shape) < 32 or np.unique(labels[labels > 0]).size < 3:
        return None
    return float(average_precision(nu.segment(image, model), labels, thresholds=(0.5,))[0.5])


def starts(image, labels, model, rng) -> dict[str, tuple[int, int]]:
    result = nu.uncertainty(image, model, count=1)
    y0, y1, x0, x1, _ = result.regions[0]
    centres = [np.argwhere(labels == k).mean(0).astype(int) for k in np.unique(labels[labels > 0])]
    return {"uncertainty": ((y0 + y1) // 2, (x0 + x1) // 2), "random": tuple(centres[rng.integers(len(centres))])}


def score(model, scored) -> float:
    return float(np.mean([average_precision(nu.segment(s.image, model), s.labels, thresholds=(0.5,))[0.5]
                          for s in scored]))


def train(start_model, image, labels, region, minutes: float, options: dict, scratch: bool = False):
    # a network trained from scratch has no batch statistics worth freezing, nor weights worth staying near
    config = nu.TrainConfig(minutes=minutes, iterations=100_000, freeze_batchnorm=not scratch,
                            **(dict(options, anchor=0.0) if scratch else options))
    started = time.perf_counter()
    model = nu.finetune(start_model, image, labels, regions=[[region]], config=config)
    return model, time.perf_counter() - started


def run_group(name, samples, model, scratch_model, cell_counts, minutes, rng, scratch_at,
              options: dict, compare_at: int = COMPARE_PLACEMENT_AT, variants: dict | None = None) -> list[dict]:
    chosen = max(samples, key=lambda s: len(np.unique(s.labels)))
    image, labels = chosen.image, chosen.labels
    scored = [s for s in samples if s is not chosen]
    if not scored:  # one image: annotate the left half, score the right one
        half = image.shape[1] // 2
        image, labels = chosen.image[:, :half], chosen.labels[:, :half]
        scored = [type(chosen)(chosen.id + " right half", chosen.image[:, half:], chosen.labels[:, half:],
                               chosen.modality, chosen.diameter)]
    rows = [{"group": name, "method": "zero-shot", "cells": 0, "ap50": score(model, scored), "seconds": 0.0}]
    places = starts(image, labels, model, rng)
    for cells in cell_counts:
        runs = [("fine-tuned", "uncertainty", model)]
        # the same cells fine-tuned with other TrainConfig options (--variant, --self-training)
        runs += [(name, "uncertainty", model) for name in variants or {}]
        if cells in scratch_at:  # the same cells and minutes, starting from random weights
            runs.append(("from scratch", "uncertainty", scratch_model))
        if cells == compare_at:  # the same number of cells placed at random
            runs.append(("fine-tuned", "random", model))
        for method, placement, initial in runs:
            region = region_with_cells(labels, places[placement], cells)
            tuned, seconds = train(initial, image, annotation(labels, region), region, minutes,
                                   dict(options, **(variants or {}).get(method, {})),
                                   scratch=method == "from scratch")
            rest = rest_of_image(image, labels, region)
            kept = tuned.history[-1].get("held_out", {}).get("kept", "")
            rows.append({"group": name, "method": method, "placement": placement, "cells": cells,
                         "ap50": score(tuned, scored), "seconds": seconds, "region": [int(v) for v in region],
                         "rest_ap50": ap_on(tuned, *rest), "rest_zero_shot": ap_on(model, *rest), "kept": kept})
            print(rows[-1], flush=True)
    return rows


def variant(text: str) -> tuple[str, dict]:
    """``NAME:OPTION=VALUE[,OPTION=VALUE]`` -> (NAME, TrainConfig options); values read as JSON
    where they parse (numbers, true/false), else kept as strings."""
    name, _, assignments = text.partition(":")
    options = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    nu.TrainConfig(**options)  # an unknown option or a bad value stops the run before it starts
    return name, options


def experiment_groups(args) -> dict[str, list]:
    """``SOURCE/GROUP`` -> its images, from every --data folder (any split)."""
    samples = [s for folder in args.data for s in read_annotated(folder, target=args.target)]
    found: dict[str, list] = {}
    for sample in samples:
        found.setdefault(f"{sample.source}/{sample.group}", []).append(sample)
    wanted = args.groups.split(",") if args.groups else [name for name, group in found.items() if len(group) > 1]
    missing = [name for name in wanted if name not in found]
    if missing:
        raise SystemExit(f"error: no images of {', '.join(missing)} (found: {', '.join(found)})")
    return {name: found[name] for name in wanted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", help="annotated folder (repeat with --experiments; "
                        "default: ../shared/data/dsb2018)")
    parser.add_argument("--experiments", action="store_true",
                        help="--groups are SOURCE/GROUP experiments of the folders' index, all splits read")
    parser.add_argument("--target", default="nuclei", help="with --experiments: nuclei or cells images")
    parser.add_argument("--model", default="nuclei")
    parser.add_argument("--cells", default="5,10,20,40")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--groups", default=None, help="DSB2018 groups (default: all four) or, with --experiments, "
                        "SOURCE/GROUP experiments (default: every one with two or more images)")
    parser.add_argument("--scratch-at", default="20", help="cell counts at which a network is also trained from scratch")
    parser.add_argument("--scored", type=int, default=8, help="at most this many scored images per group")
    parser.add_argument("--split", default="val", help="images to annotate and score (choose defaults on train)")
    parser.add_argument("--learning-rate", type=float, default=nu.TrainConfig().learning_rate,
                        help="peak fine-tuning rate (default: TrainConfig's, %(default)g)")
    parser.add_argument("--anchor", type=float, default=nu.TrainConfig().anchor,
                        help="pull toward the shipped weights (default: TrainConfig's, %(default)g)")
    parser.add_argument("--compare-placement-at", type=int, default=COMPARE_PLACEMENT_AT,
                        help="cell count at which randomly placed cells are also tried (0: never)")
    parser.add_argument("--self-training", action="store_true",
                        help="also fine-tune with TrainConfig.confident_cells (the start's confident predictions)")
    parser.add_argument("--variant", action="append", default=[], type=variant,
                        help="NAME:OPTION=VALUE[,OPTION=VALUE]: also fine-tune the same cells with these TrainConfig "
                        "options (repeatable), e.g. decoder:trainable=decoder")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    model = nu.load_model(args.model, device="cpu")
    torch.manual_seed(0)
    scratch = nu.create_model("unet", depth=model.config.depth, base_channels=model.config.base_channels,
                              in_channels=model.config.in_channels)
    scratch.diameter, scratch.diameter_bias = model.diameter, model.diameter_bias
    groups = experiment_groups(args) if args.experiments else {
        name: [s for s in read_annotated((args.data or [Path("../shared/data/dsb2018")])[0], split=args.split)
               if GROUPS[name](s)] for name in (args.groups or ",".join(GROUPS)).split(",")}
    variants = dict(args.variant)
    if args.self_training:
        variants["self-training"] = {"confident_cells": True}
    rows = []
    for name, samples in groups.items():
        chosen = max(samples, key=lambda s: len(np.unique(s.labels)))
        samples = [chosen] + [s for s in samples if s is not chosen][:args.scored]
        rows += run_group(name, samples, model, scratch, [int(c) for c in args.cells.split(",")], args.minutes,
                          np.random.default_rng(0), [int(c) for c in args.scratch_at.split(",")],
                          {"learning_rate": args.learning_rate, "anchor": args.anchor}, args.compare_placement_at,
                          variants)
    print("\n| group | method | placement | cells | AP@0.5 other images | AP@0.5 rest of the image (zero-shot) "
          "| minutes | kept |\n|---|---|---|---|---|---|---|---|")
    for row in rows:
        rest = ("" if row.get("rest_ap50") is None else
                f"{row['rest_ap50']:.3f} ({row['rest_zero_shot']:.3f})")
        print(f"| {row['group']} | {row['method']} | {row.get('placement', '')} | {row['cells']} | "
              f"{row['ap50']:.3f} | {rest} | {row['seconds'] / 60:.1f} | {row.get('kept', '')} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
