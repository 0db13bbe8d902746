"""The bundled sample: a synthetic nuclei image and its ground-truth labels.

Made once by ``python -m napari_unet.sample_data`` from :mod:`napari_unet.synth` (seed 2026)
and shipped as TIFF files, so the demo and napari's File > Open Sample need nothing else.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

SAMPLE_SEED = 2026
SAMPLE_SHAPE = (384, 384)
IMAGE_FILE, LABELS_FILE = "sample_nuclei.tif", "sample_nuclei_labels.tif"


def sample_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """Return ``(image, labels)``: (384, 384) uint16 nuclei and their uint16 instance labels."""
    import tifffile

    folder = resources.files("napari_unet") / "data"
    with resources.as_file(folder / IMAGE_FILE) as image_path, resources.as_file(folder / LABELS_FILE) as labels_path:
        return tifffile.imread(image_path), tifffile.imread(labels_path)


def sample_nuclei_layers():
    """``[(image, kwargs, "image"), (labels, kwargs, "labels")]`` for napari's File > Open Sample."""
    image, truth = sample_nuclei()
    return [
        (image, {"name": "nuclei"}, "image"),
        (truth, {"name": "nuclei ground truth", "visible": False}, "labels"),
    ]


def make_sample() -> tuple[np.ndarray, np.ndarray]:
    """Regenerate the sample from the synthetic generator (what the shipped files hold)."""
    from .synth import SynthConfig, synth_image

    image, labels = synth_image(np.random.default_rng(SAMPLE_SEED), SynthConfig(shape=SAMPLE_SHAPE))
    # a camera-like integer image: photon counts with an offset, as a microscope would save
    counts = np.clip(np.round(image * 8 + 100), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return counts, labels.astype(np.uint16)


if __name__ == "__main__":
    import tifffile

    image, labels = make_sample()
    folder = resources.files("napari_unet") / "data"
    tifffile.imwrite(str(folder / IMAGE_FILE), image, compression="zlib")
    tifffile.imwrite(str(folder / LABELS_FILE), labels, compression="zlib")
    print(f"wrote {IMAGE_FILE} {image.shape} {image.dtype} and {LABELS_FILE} with {labels.max()} cells")
