"""Prediction throughput and seam error of overlap-tile prediction.

    python benchmarks/predict.py                                 # 2048 x 2048, nuclei model, fp32 + bf16
    python benchmarks/predict.py --size 4096 --model my.safetensors --precision bf16

Two parts, one table:

* throughput: ``predict_probabilities`` on a synthetic ``--size``² nuclei image with the
  default tile size (512 on CPU), per precision: seconds and output megapixels per second;
* seam error: a ``--seam-size``² image (small enough for one tile) is predicted untiled,
  then tiled with each of ``--tiles``; the seam error is max |tiled − untiled| over all
  pixels and classes, comparing runs of the same precision. With valid convolutions and
  mirrored context it should be rounding noise, not a visible seam.

Every configuration is warmed up on one tile first (the first use of a tile shape is
slow), then timed as the best of ``--repeats`` runs.

The shipped ``nuclei`` model is used if installed, otherwise an untrained depth-3,
16-channel U-Net of the same shape (the output says which). Nothing is asserted; the table
goes into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
import torch

import napari_unet as nu
from napari_unet.devices import resolve_device
from napari_unet.inference.runner import DEFAULT_TILE
from napari_unet.synth import SynthConfig, synth_image
from napari_unet.inference.geometry import tile_step
from common import benchmark_model, best_time

PRECISIONS = ("fp32", "bf16", "fp16")


def _row(size: int, tile, precision: str, seconds: float, seam: float | None) -> str:
    seam_text = "–" if seam is None else f"{seam:.1e}"
    return (f"| {size}×{size} | {tile} | {precision} | {seconds:.2f} | {size * size / 1e6 / seconds:.3f} | "
            f"{seam_text} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="throughput image edge in pixels (default 2048)")
    parser.add_argument("--model", default="nuclei", help="shipped model name or .safetensors file")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["fp32", "bf16"])
    parser.add_argument("--tile-size", type=int, help="throughput tile size (default: automatic, 512 on CPU)")
    parser.add_argument("--seam-size", type=int, default=512, help="edge of the untiled reference image")
    parser.add_argument("--tiles", type=int, nargs="+", default=[128, 256], help="tile sizes for the seam error")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs (default 2)")
    args = parser.parse_args(argv)

    model, description = benchmark_model(args.model)
    device = resolve_device(args.device)
    model.network.to(device).eval()
    alignment = model.network.alignment()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, device {device}")
    print(f"# model: {description} ({model.config.arch}, depth {model.config.depth}, "
          f"{model.parameter_count():,} parameters)\n")

    rng = np.random.default_rng(7)
    image = synth_image(rng, SynthConfig(shape=(args.size, args.size)))[0]
    small = synth_image(rng, SynthConfig(shape=(args.seam_size, args.seam_size)))[0]
    default_tile = DEFAULT_TILE.get(device.type, 512)

    def predict(data, tile, precision):
        return nu.predict_probabilities(data, model, tile_size=tile, device=str(device), precision=precision,
                                        diameter=model.diameter)  # no estimate: time the prediction alone

    def timed(data, tile, precision):
        predict(data[:tile, :tile], tile, precision)  # warm-up: first use of a tile shape is slow
        return best_time(lambda: predict(data, tile, precision), args.repeats)

    print("| image | tile | precision | seconds | output Mpx/s | seam error max \\|tiled − untiled\\| |")
    print("|---|---|---|---|---|---|")
    for precision in args.precision:
        tile = tile_step(args.tile_size, args.size, alignment, default_tile)
        seconds, _ = timed(image, tile, precision)
        print(_row(args.size, tile, precision, seconds, None), flush=True)
    references = {}
    for precision in args.precision:
        untiled_tile = tile_step(args.seam_size, args.seam_size, alignment, default_tile)
        seconds, untiled = timed(small, untiled_tile, precision)
        references[precision] = untiled
        print(_row(args.seam_size, f"{untiled_tile} (untiled)", precision, seconds, None), flush=True)
        for requested in args.tiles:
            tile = tile_step(requested, args.seam_size, alignment, default_tile)
            seconds, tiled = timed(small, tile, precision)
            print(_row(args.seam_size, tile, precision, seconds, float(np.abs(tiled - untiled).max())), flush=True)

    if "fp32" in references:
        for precision, probabilities in references.items():
            if precision != "fp32":
                difference = float(np.abs(probabilities - references["fp32"]).max())
                print(f"\n{precision} vs fp32 on the untiled {args.seam_size}² image: max |Δp| = {difference:.1e}")


if __name__ == "__main__":
    main()
