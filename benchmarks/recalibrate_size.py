"""Give a model file another diameter rule and recalibrate its diameter bias on the images
its pretraining held out (the ids its history records), as ``napari-unet pretrain`` does at
the end of a run. The file is rewritten atomically; its history gains a "recalibration" entry.

    python benchmarks/recalibrate_size.py --model checkpoints/cells-v1.safetensors \
        --data data/usiigaci --rule stable
"""

from __future__ import annotations

import argparse
import datetime
import sys

import napari_unet as nu
from napari_unet.datasets import read_annotated
from napari_unet.models.base import DIAMETER_RULES
from napari_unet.training.calibrate import calibrate_diameter


def held_out_images(model, folders) -> list:
    """The annotated images whose ``source/id`` the model's last pretraining run held out."""
    runs = [run for run in model.history if "held_out_ids" in run.get("data", {})]
    if not runs:
        raise SystemExit(f"--model: {model.name!r} records no held-out images in its history")
    wanted = set(runs[-1]["data"]["held_out_ids"])
    found = [sample for folder in folders
             for sample in read_annotated(folder, keep=lambda row: f"{row['source']}/{row['id']}" in wanted)]
    if len(found) != len(wanted):
        raise SystemExit(f"--data: found {len(found)} of the {len(wanted)} held-out images {sorted(wanted)}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model file, rewritten in place unless --out is given")
    parser.add_argument("--data", action="append", required=True, help="annotated folder(s) holding the held-out ids")
    parser.add_argument("--rule", choices=DIAMETER_RULES, required=True)
    parser.add_argument("--out", help="write here instead of over --model")
    args = parser.parse_args(argv)
    model = nu.load_model(args.model, device="cpu")
    samples = held_out_images(model, args.data)
    before = (model.diameter_rule, model.diameter_bias)
    model.diameter_rule = args.rule
    model.diameter_bias = calibrate_diameter(model, samples)
    model.history.append({"kind": "recalibration", "date": datetime.date.today().isoformat(),
                          "diameter_rule": [before[0], model.diameter_rule],
                          "diameter_bias": [before[1], model.diameter_bias],
                          "images": [f"{s.source}/{s.id}" for s in samples],
                          "command": " ".join(["python", "benchmarks/recalibrate_size.py", *sys.argv[1:]])})
    nu.save_model(model, args.out or args.model)
    print(f"{args.out or args.model}: diameter rule {before[0]} -> {model.diameter_rule}, "
          f"bias {before[1]:.3f} -> {model.diameter_bias:.3f} on {len(samples)} held-out images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
