"""Per-source accuracy on images the models never saw: the leave-source-out table.

    python benchmarks/sources.py --data ../shared/data/dsb2018 --data data/nuinsseg --data data/bbbc039
    python benchmarks/sources.py --data data/cryonuseg --model nuclei --model run.safetensors --true-diameter
    python benchmarks/sources.py --data data/yeaz --target cells --model cells --limit 10

Which images are scored: every image of the folders whose ``target`` is ``--target``,
less the ones any compared model was trained on or had its checkpoint chosen on (a model
file's history lists them as ``SOURCE/ID``), so a source held out of a model's training
(``napari-unet pretrain --exclude``) is scored whole, and a source it trained on only
through its ``val`` / ``test`` split. With ``--split`` only that split is scored.

Rows are per source and modality (``--by group`` splits them further by experiment /
organ / patient), each the mean over its images of AP@0.5 = TP / (TP + FP + FN) at IoU >
0.5 (AP@0.75 with ``--all-metrics``). Methods: each ``--model`` with every default
(diameter estimated), optionally with the images' true diameter, and Otsu + watershed (no
trained parameters). Nothing here is asserted; the numbers go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import napari_unet as nu  # noqa: E402
from napari_unet.datasets import read_annotated  # noqa: E402
from real import otsu_watershed, score  # noqa: E402

OTSU = "Otsu + watershed"


def seen_images(model) -> set[str]:
    """``SOURCE/ID`` of every image ``model`` was fitted or had its checkpoint chosen on.

    Histories written before several sources were read name DSB2018 ids alone."""
    seen = set()
    for entry in model.history:
        data = entry.get("data")
        if not isinstance(data, dict):  # a calibration entry names its images in words
            continue
        for key in data.get("fit_ids", []) + data.get("held_out_ids", []):
            seen.add(key if "/" in key else f"dsb2018/{key}")
    return seen


def evaluation_images(folders, target: str, seen: set[str], split: str | None, limit: int | None):
    """The annotated images of ``folders`` outlining ``target`` that no model has seen."""
    images = []
    for folder in folders:
        per_source = defaultdict(int)

        def keep(row, per_source=per_source):
            unseen = f"{row['source']}/{row['id']}" not in seen
            if unseen and (split is None or row.get("split") == split) and \
                    (limit is None or per_source[row["source"]] < limit):
                per_source[row["source"]] += 1
                return True
            return False

        images += read_annotated(folder, target=target, keep=keep)
    return images


def run(methods: dict, samples, by_group: bool) -> list[dict]:
    rows = []
    for sample in samples:
        group = f"{sample.source} {sample.modality}" + (f" / {sample.group}" if by_group and sample.group else "")
        for name, method in methods.items():
            start = time.perf_counter()
            labels = method(sample.image, sample.diameter)
            counts = score(labels, sample.labels)
            rows.append({"id": sample.id, "group": group, "method": name, "seconds": time.perf_counter() - start,
                         "objects": int(len(np.unique(labels)) - 1), "true_objects": int(sample.labels.max()),
                         **{f"ap{tau}": tp / max(1, tp + fp + fn) for tau, (tp, fp, fn) in counts.items()}})
        print(f"{group}: {sample.id} " + " ".join(f"{r['ap50']:.2f}" for r in rows[-len(methods):]), flush=True)
    return rows


def table(rows, methods, metric: str) -> str:
    groups = sorted({row["group"] for row in rows})
    lines = [f"| source (images) | {' | '.join(methods)} |", "|---|" + "---|" * len(methods)]
    means = defaultdict(list)
    for group in groups:
        cells = []
        count = 0
        for name in methods:
            scores = [row[metric] for row in rows if row["group"] == group and row["method"] == name]
            count = len(scores)
            means[name].append(np.mean(scores))
            cells.append(f"{np.mean(scores):.3f}")
        lines.append(f"| {group} ({count}) | {' | '.join(cells)} |")
    lines.append(f"| **mean over sources** | {' | '.join(f'{np.mean(means[n]):.3f}' for n in methods)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True, help="annotated folder (repeat)")
    parser.add_argument("--model", action="append", help="shipped name or model file (repeat; default: nuclei)")
    parser.add_argument("--target", default="nuclei", choices=("nuclei", "cells"))
    parser.add_argument("--split", help="score only this split (default: every image no model has seen)")
    parser.add_argument("--limit", type=int, help="at most this many images per source")
    parser.add_argument("--by", choices=("source", "group"), default="source")
    parser.add_argument("--true-diameter", action="store_true", help="also each model given the true diameter")
    parser.add_argument("--no-otsu", action="store_true")
    parser.add_argument("--all-metrics", action="store_true", help="also the AP@0.75 table")
    parser.add_argument("--out", type=Path, help="also write every per-image score as JSON")
    args = parser.parse_args()
    names = args.model or ["nuclei"]
    models = {name: nu.load_model(name, device="cpu") for name in names}
    seen = set().union(*(seen_images(model) for model in models.values()))
    methods = {}
    for name, model in models.items():
        label = Path(name).stem
        methods[label] = lambda image, diameter, model=model: nu.segment(image, model)
        if args.true_diameter:
            methods[f"{label}, true diameter"] = lambda image, diameter, model=model: nu.segment(
                image, model, diameter=diameter)
    if not args.no_otsu:
        methods[OTSU] = lambda image, diameter: otsu_watershed(image)
    samples = evaluation_images(args.data, args.target, seen, args.split, args.limit)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {len(samples)} {args.target} images no compared model has seen; "
          f"models: {', '.join(names)}")
    rows = run(methods, samples, args.by == "group")
    print("\nAP@0.5, mean over the images of each row\n")
    print(table(rows, list(methods), "ap50"))
    if args.all_metrics:
        print("\nAP@0.75\n")
        print(table(rows, [m for m in methods if m != OTSU], "ap75"))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
