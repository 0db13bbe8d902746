"""Prediction speed against MONAI's sliding window, the compute floor, fast paths, memory.

    python benchmarks/speed.py                  # 2048 x 2048, the shipped nuclei model
    python benchmarks/speed.py --memory         # also peak RSS of `napari-unet segment` on 8192^2

MONAI runs the *same network on the same device in the same process*: a valid-padding
U-Net returns a smaller output than its input, so MONAI's predictor mirrors each ROI by the
network halo first (the usual way to use such a network with sliding_window_inference).
MONAI is a benchmark-only dependency: ``pip install --no-deps monai`` (keeps your torch).
Nothing here is asserted; the numbers go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import napari_unet as nu
from napari_unet.inference.appearance import Appearance, intensity_range
from napari_unet.inference.labels import probabilities_to_labels
from napari_unet.metrics import iou
from napari_unet.synth import SynthConfig, synth_image
from napari_unet.inference.geometry import axis_geometry
from common import benchmark_model, best_time


def _monai(image: np.ndarray, model, precision: str):
    from monai.inferers import sliding_window_inference

    network = model.network.eval()
    geometry = axis_geometry(network, 256)
    before, after = geometry.halo, geometry.input_size - 256 - geometry.halo
    channels = model.config.in_channels
    scale = intensity_range(image, Appearance(colour=False, inverted=False), model.normalization, channels)
    grey = scale.apply(image.astype(np.float32))
    tensor = torch.from_numpy(np.repeat(grey[None, None], channels, axis=1)).contiguous(
        memory_format=torch.channels_last)

    def predictor(batch):
        padded = torch.nn.functional.pad(batch, (before, after, before, after), mode="reflect")
        logits = network(padded)
        start = geometry.keep_start
        return logits[..., start:start + 256, start:start + 256].float().softmax(1)

    dtype = {"fp32": None, "bf16": torch.bfloat16}[precision]
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        return sliding_window_inference(tensor, roi_size=(256, 256), sw_batch_size=4, predictor=predictor,
                                        overlap=0.25, mode="gaussian", padding_mode="reflect")[0].numpy()


def _matmul_peak(seconds: float = 2.0) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * 2048**3 * count / (time.perf_counter() - start)


def _flops_per_output_pixel(model, step: int) -> tuple[float, float]:
    from torch.utils.flop_counter import FlopCounterMode

    geometry = axis_geometry(model.network, step)
    x = torch.zeros(1, model.config.in_channels, geometry.input_size, geometry.input_size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.network(x)
    return counter.get_total_flops() / step**2, (geometry.input_size / step) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--model", default="nuclei")
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="peak memory of the CLI on 8192 x 8192 uint16")
    args = parser.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    model, description = benchmark_model(args.model)
    print(f"({description})")
    # nuclei of about the model's working diameter, so the comparison with MONAI needs no rescaling
    radius = (model.diameter or 20.0) / 2
    config = SynthConfig(shape=(args.size, args.size), radius=(0.85 * radius, 1.15 * radius))
    image = synth_image(np.random.default_rng(7), config)[0]
    megapixels = args.size**2 / 1e6
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"model {model.name} ({sum(p.numel() for p in model.network.parameters()):,} parameters), "
          f"image {args.size}x{args.size}\n")

    rows, outputs = [], {}
    for precision in ("fp32", "bf16"):
        seconds, out = best_time(lambda: nu.predict_probabilities(image, model, tile_size=args.tile_size,
                                                               device="cpu", precision=precision,
                                                               diameter=model.diameter), args.repeats)
        outputs[("napari-unet", precision)] = out
        rows.append(("napari-unet", precision, seconds))
    try:
        for precision in ("fp32", "bf16"):
            seconds, out = best_time(lambda: _monai(image, model, precision), args.repeats)
            outputs[("MONAI sliding window", precision)] = out
            rows.append(("MONAI sliding window", precision, seconds))
    except ImportError:
        print("(MONAI not installed: pip install --no-deps monai)")
    reference = outputs[("napari-unet", "fp32")]
    labelling = dataclasses.asdict(model.labelling)  # as segment() labels with this model
    reference_labels = probabilities_to_labels(reference, **labelling)
    monai_fp32 = next((s for n, p, s in rows if n.startswith("MONAI") and p == "fp32"), None)
    print("| method | precision | seconds | output Mpx/s | vs MONAI fp32 | max abs diff vs napari-unet fp32 | label IoU vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for name, precision, seconds in rows:
        out = outputs[(name, precision)]
        labels_iou = iou(probabilities_to_labels(out, **labelling), reference_labels)
        ratio = f"{monai_fp32 / seconds:.2f}x" if monai_fp32 else "-"
        print(f"| {name} | {precision} | {seconds:.2f} | {megapixels / seconds:.2f} | {ratio} | "
              f"{np.abs(out - reference).max():.1e} | {labels_iou:.4f} |")

    peak = _matmul_peak()
    flops, input_ratio = _flops_per_output_pixel(model, args.tile_size)
    fp32_seconds = rows[0][2]
    start = time.perf_counter()
    scale = intensity_range(image, Appearance(colour=False, inverted=False), model.normalization, 1)
    scale.apply(image.astype(np.float32))
    normalise_seconds = time.perf_counter() - start
    post_seconds, _ = best_time(lambda: probabilities_to_labels(reference, **labelling), 1)
    floor = flops * args.size**2 / peak
    print(f"\n## Compute floor (fp32, tile {args.tile_size})\n")
    print("| quantity | value |\n|---|---|")
    print(f"| measured fp32 matmul peak | {peak / 1e9:.0f} GFLOP/s |")
    print(f"| network FLOPs per output pixel (incl. tile context) | {flops / 1e3:.1f} kFLOP |")
    print(f"| tile input area / output area (halo overhead) | {input_ratio:.2f} |")
    print(f"| compute floor for the image | {floor:.2f} s |")
    print(f"| measured prediction | {fp32_seconds:.2f} s (runs at {100 * floor / fp32_seconds:.0f} % of the floor speed) |")
    print(f"| of which normalisation (once per image) | {normalise_seconds:.3f} s |")
    print(f"| post-processing to labels (not in the above) | {post_seconds:.2f} s |")

    start = time.perf_counter()
    first = next(nu.predict_tiles(image, model, tile_size=256, device="cpu", precision="bf16",
                                  diameter=model.diameter))
    print(f"\n| time to the first 256 px tile (what a viewer shows first) | {time.perf_counter() - start:.2f} s |")
    del first
    _end_to_end(image, model, args.repeats)

    if args.memory:
        _memory(model)


def _end_to_end(image, model, repeats: int) -> None:
    """Labels from the raw image with every default (bf16 where native): reading, the
    diameter estimate, prediction, post-processing."""
    megapixels = image.size / 1e6
    print("\n## End to end: nu.segment, labels from the raw image\n")
    print("| what | precision | seconds | input Mpx/s |\n|---|---|---|---|")
    for what, options in (("diameter estimated (default)", {}), ("diameter given", {"diameter": model.diameter})):
        for precision in ("fp32", "bf16"):
            seconds, _ = best_time(lambda: nu.segment(image, model, device="cpu", precision=precision, **options),
                                   repeats)
            print(f"| {what} | {precision} | {seconds:.2f} | {megapixels / seconds:.2f} |")


def _memory(model) -> None:
    import tifffile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "big.tif")
        rng = np.random.default_rng(0)
        tile = synth_image(np.random.default_rng(1), SynthConfig(shape=(1024, 1024)))[0].astype(np.uint16)
        big = np.tile(tile, (8, 8)) + rng.integers(0, 3, (8192, 8192), dtype=np.uint16)
        tifffile.imwrite(path, big)
        input_mb = big.nbytes / 2**20
        del big
        model_path = os.path.join(folder, "model.safetensors")
        nu.save_model(model, model_path)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "napari_unet.cli", "segment", path, "--model", model_path,
                        "--out", folder, "--precision", "bf16"], check=True)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("\n## Memory: napari-unet segment on 8192 x 8192 uint16 (bf16)\n")
    print("| input | peak RSS of the process | above the input | seconds |\n|---|---|---|---|")
    print(f"| {input_mb:.0f} MiB | {peak_mb:.0f} MiB | {peak_mb - input_mb:.0f} MiB | {seconds:.0f} |")


if __name__ == "__main__":
    main()
