"""U-Net vs a wide U-Net vs UNet++ (pruned at L1..Ln): parameters, speed and accuracy.

    python benchmarks/architectures.py                 # depth 3, 16 base channels, 400 steps each
    python benchmarks/architectures.py --steps 1000 --depth 4 --base 32

Every network is trained from scratch with the same budget (steps, batch, patch, seed) on
the same synthetic nuclei images and scored (AP@0.5) on held-out ones. The wide U-Net has
about UNet++'s parameter count, so a gain of UNet++ is not just a gain of size. Speed is
output megapixels per second of overlap-tile prediction on a 1024 x 1024 image (CPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.metrics import average_precision
from napari_unet.synth import SynthConfig, synth_dataset


def _parameters(model) -> int:
    return sum(p.numel() for p in model.network.parameters())


def _wide_unet(depth: int, target: int):
    """The U-Net whose base width brings its parameter count closest to ``target``."""
    best = None
    for base in range(8, 129):
        model = nu.create_model("unet", depth=depth, base_channels=base)
        if best is None or abs(_parameters(model) - target) < abs(_parameters(best) - target):
            best = model
        if _parameters(model) > target:
            break
    return best


def _speed(model, image, level, precision) -> float:
    nu.predict_probabilities(image[:256, :256], model, device="cpu", prune_level=level)
    start = time.perf_counter()
    nu.predict_probabilities(image, model, device="cpu", precision=precision, prune_level=level)
    return image.size / 1e6 / (time.perf_counter() - start)


def _ap50(model, pairs, level) -> float:
    scores = [average_precision(nu.segment(image, model, device="cpu", prune_level=level), truth, thresholds=(0.5,))[0.5]
              for image, truth in pairs]
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    args = parser.parse_args()

    config = SynthConfig(shape=(192, 192))
    data = synth_dataset(40, seed=11, config=config)
    train, held_out = data[:32], data[32:]
    budget = TrainConfig(iterations=args.steps, learning_rate=2e-3, batch_size=8, patch_size=96,
                         freeze_batchnorm=False, precision=args.precision, device="cpu", seed=0)
    speed_image = synth_dataset(1, seed=99, config=SynthConfig(shape=(1024, 1024)))[0][0]

    plusplus = nu.create_model("unetplusplus", depth=args.depth, base_channels=args.base, deep_supervision=True)
    candidates = [
        ("U-Net", nu.create_model("unet", depth=args.depth, base_channels=args.base)),
        ("wide U-Net", _wide_unet(args.depth, _parameters(plusplus))),
        ("UNet++ (deep supervision)", plusplus),
    ]
    print(f"# depth {args.depth}, {args.steps} steps x batch 8 x 96 px patches, {args.precision} training, "
          f"{len(train)} training / {len(held_out)} held-out 192 px images, CPU ({torch.get_num_threads()} threads)\n")
    print("| network | base channels | parameters | inference | output Mpx/s (fp32) | AP@0.5 held out | training s |")
    print("|---|---|---|---|---|---|---|")
    for name, model in candidates:
        start = time.perf_counter()
        trained = nu.finetune(model, [i for i, _ in train], [t for _, t in train], config=budget)
        seconds = time.perf_counter() - start
        levels = [None] + (list(range(1, args.depth + 1)) if trained.config.deep_supervision else [])
        for level in levels:
            label = "full" if level is None else f"pruned L{level}"
            if level is None and trained.config.deep_supervision:
                label = "accurate (mean of heads)"
            print(f"| {name} | {trained.config.base_channels} | {_parameters(trained):,} | {label} | "
                  f"{_speed(trained, speed_image, level, 'fp32'):.2f} | {_ap50(trained, held_out, level):.3f} | "
                  f"{seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
