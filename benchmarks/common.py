"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import os
import time

import napari_unet as nu


def benchmark_model(name: str):
    """``(model, description)``: a shipped name or file, else an untrained depth-3 U-Net."""
    if name in nu.list_models() or os.path.isfile(name):
        return nu.load_model(name, device="cpu"), f"{name}"
    return (nu.create_model("unet", depth=3, base_channels=16),
            f"model {name!r} not found: an untrained depth-3, 16-channel U-Net")


def best_time(function, repeats: int):
    """``(best seconds, last result)`` of ``repeats`` calls of ``function()``."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result
