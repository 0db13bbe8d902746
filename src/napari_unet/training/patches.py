"""Training patches: random windows of the annotations, augmented, with their targets.

A patch's output window is centred on a random annotated pixel (half the time a cell
pixel); its input adds the network's context, mirrored past the image border, and a zoom
augmentation reads a larger window so it shows real pixels rather than mirrored ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..config import TrainConfig
from ..inference.geometry import axis_geometry, mirror_indices
from ..inference.labels import labels_to_classes
from ..models.blocks import round_up
from .annotations import Annotation, cut_cell_pixels
from .augment import AugmentConfig, augment_sample


class PatchSampler:
    """Draws augmented training patches: network input plus output-sized targets.

    A patch's output window is centred on a random annotated pixel (half the time a cell
    pixel); its input adds the network's context, mirrored past the image border.
    """

    def __init__(self, network, annotations: list[Annotation], config: TrainConfig,
                 augmentation: AugmentConfig | None = None, sampling: Sequence[float] | None = None):
        alignment = network.alignment()
        self.geometry = axis_geometry(network, round_up(config.patch_size, alignment))
        # targets cover the largest output head for the patch input (>= the kept step); with
        # valid padding, UNet++'s shallow deep-supervision heads are larger than the last
        self.extent = (self.geometry.input_size if network.config.padding == "same"
                       else max(network.output_size(self.geometry.input_size, level) for level in network.levels))
        self.annotations = annotations
        self.augment = (augmentation or AugmentConfig()) if config.augment else None
        # a zoom that shrinks objects reads a larger window (real pixels, not mirrored ones);
        # the margin is even so the output stays centred on whole pixels
        smallest_zoom = self.augment.zoom[0] if self.augment is not None else 1.0
        margin = max(0, int(np.ceil(self.geometry.input_size / min(smallest_zoom, 1.0))) - self.geometry.input_size)
        self.window = self.geometry.input_size + margin + margin % 2
        sizes = np.array([a.any_pixels.size for a in annotations], dtype=float) if sampling is None \
            else np.asarray(sampling, dtype=float)
        if sizes.shape != (len(annotations),) or not (np.all(sizes >= 0) and sizes.sum() > 0):
            raise ValueError(f"sampling must give one weight >= 0 per image ({len(annotations)}), not all 0")
        self.image_probability = sizes / sizes.sum()

    @property
    def output_size(self) -> int:
        return self.geometry.step

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One augmented patch drawn with ``rng``.

        Returns
        -------
        inputs : (C, I, I) ndarray of float32
            Normalised pixels, ``I = geometry.input_size``.
        classes : (O, O) ndarray of int64
            0 background, 1 interior, 2 boundary; ``O`` covers the largest output head.
        weights : (O, O) ndarray of float32
            Loss weights; 0 outside the regions and on mirrored pixels.
        """
        annotation = self.annotations[rng.choice(len(self.annotations), p=self.image_probability)]
        pool = annotation.cell_pixels if annotation.cell_pixels.size and rng.random() < 0.5 else annotation.any_pixels
        cy, cx = np.unravel_index(pool[rng.integers(pool.size)], annotation.labels.shape)
        g = self.geometry
        extra = (self.window - g.input_size) // 2
        y0 = int(cy) - g.step // 2 - g.halo - extra
        x0 = int(cx) - g.step // 2 - g.halo - extra
        height, width = annotation.labels.shape
        rows = mirror_indices(y0, y0 + self.window, height)
        cols = mirror_indices(x0, x0 + self.window, width)
        index = np.ix_(rows, cols)
        image = annotation.image[(slice(None),) + index]
        labels, weights = annotation.labels[index], annotation.weights[index]
        # mirrored pixels are plausible input but not annotations
        outside = ((np.arange(y0, y0 + self.window) < 0) | (np.arange(y0, y0 + self.window) >= height))[:, None] \
            | ((np.arange(x0, x0 + self.window) < 0) | (np.arange(x0, x0 + self.window) >= width))[None, :]
        weights = np.where(outside, 0, weights).astype(np.float32)
        if self.augment is not None:
            annotated = annotation.annotated[index]
            sparse = not annotated.all()
            sample = augment_sample(np.moveaxis(image, 0, -1), labels, rng, weights=weights,
                                    ignore=~annotated if sparse else None, config=self.augment,
                                    output_shape=(g.input_size, g.input_size))
            image, labels, weights = np.moveaxis(sample.image, -1, 0), sample.labels, sample.weights
            if sparse:
                # warping can break the zero-weight rim of cells cut by a region edge: redraw it
                weights = np.where(cut_cell_pixels(labels, ~sample.ignore), 0, weights).astype(np.float32)
        classes = labels_to_classes(labels)
        extent = self.extent
        start = (g.input_size - extent) // 2
        crop = slice(start, start + extent)
        return (np.ascontiguousarray(image, dtype=np.float32), classes[crop, crop].astype(np.int64),
                np.ascontiguousarray(weights[crop, crop], dtype=np.float32))

    def batches(self, seed: int, batch_size: int, workers: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """Endless ``(inputs, classes, weights)`` tensor batches of :meth:`sample` outputs.

        Parameters
        ----------
        seed : int
            Seed of the patch generator (one stream per worker process).
        batch_size : int
            Patches per batch.
        workers : int
            0 prepares patches in this process between steps; more uses a
            ``torch.utils.data.DataLoader`` with that many background processes.
        """
        if workers == 0:
            rng = np.random.default_rng(seed)
            while True:
                yield _collate([self.sample(rng) for _ in range(batch_size)])
        loader = torch.utils.data.DataLoader(_PatchStream(self, seed), batch_size=batch_size,
                                             num_workers=workers, collate_fn=_collate)
        yield from loader


def _collate(samples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    inputs, classes, weights = zip(*samples)
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(classes)), torch.from_numpy(np.stack(weights))


class _PatchStream(torch.utils.data.IterableDataset):
    """Patches from a sampler; each worker process draws from its own seeded generator."""

    def __init__(self, sampler: PatchSampler, seed: int):
        self.sampler, self.seed = sampler, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id])
        while True:
            yield self.sampler.sample(rng)
