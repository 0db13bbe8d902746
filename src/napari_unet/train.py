"""Fine-tuning (and pretraining) with the U-Net recipe: border weight maps, elastic
augmentation, sparse annotations.

``iter_finetune`` is a generator of small typed events (one per optimiser step) so a
widget can show progress and stop at any step; ``finetune`` drains it for scripts. The
caller's model is never modified: training works on a copy, handed out with each event.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from .augment import AugmentConfig, augment_sample
from .config import TrainConfig
from .devices import autocast, is_out_of_memory, resolve_device
from .images import describe_image, intensity_range, to_model_channels
from .instances import check_labels, labels_to_classes
from .models import SegmentationModel, load_model
from .tiling import axis_geometry, mirror_indices, round_up
from .weights import border_cutoff, class_balance_weights, nearest_two_cell_distances

WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.05


@dataclass(frozen=True)
class TrainStep:
    """One optimiser step finished. ``model`` holds the weights after it."""

    step: int
    iterations: int
    loss: float
    learning_rate: float
    elapsed: float
    eta: float
    batch_size: int
    model: SegmentationModel


@dataclass(frozen=True)
class Validation:
    """Scores on the held-out annotations after ``step`` ("loss", "ap50", "iou")."""

    step: int
    metrics: dict
    model: SegmentationModel


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop training (e.g. batch halved)."""

    step: int
    message: str


@dataclass(frozen=True)
class TrainFinished:
    """Training ended: "completed", or "diverged".

    After a divergence (a non-finite loss or non-finite weights) ``model`` holds the last
    weights whose loss was finite and ``steps`` counts the steps that produced them.
    """

    model: SegmentationModel
    steps: int
    reason: str
    message: str


# --------------------------------------------------------------------------------------
# annotations


def annotated_mask(shape: tuple[int, int], regions, *, name: str = "regions") -> np.ndarray:
    """Where pixels are annotated: everywhere (None), a bool mask, or rectangles.

    Parameters
    ----------
    shape : (int, int)
        ``(Y, X)`` of the image.
    regions : None, (Y, X) ndarray of bool, or sequence of (y0, y1, x0, x1)
        None: the whole image. Rectangles are in pixels, ends exclusive, non-empty and
        inside the image; several rectangles are united.
    name : str
        How the argument is called in error messages.

    Returns
    -------
    (Y, X) ndarray of bool
        True where the labels are to be learned from (a new array, also for a mask).

    Raises
    ------
    ValueError
        A mask of another shape, or a rectangle that is malformed, empty or outside.
    """
    if regions is None:
        return np.ones(shape, dtype=bool)
    array = np.asarray(regions) if not isinstance(regions, list) else None
    if array is not None and array.dtype == bool:
        if array.shape != shape:
            raise ValueError(f"{name} mask has shape {array.shape}, the image is {shape}")
        return array.copy()
    mask = np.zeros(shape, dtype=bool)
    for rectangle in regions:
        try:
            y0, y1, x0, x1 = (int(round(float(v))) for v in rectangle)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a bool mask or (y0, y1, x0, x1) rectangles, got {rectangle!r}") from None
        if not (0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]):
            raise ValueError(f"{name}: rectangle {(y0, y1, x0, x1)} is empty or outside the image {shape}")
        mask[y0:y1, x0:x1] = True
    return mask


@dataclass
class Annotation:
    """One image prepared for training: normalised pixels and per-pixel targets."""

    image: np.ndarray  # (C, Y, X) float32, normalised
    labels: np.ndarray  # (Y, X) instance labels
    weights: np.ndarray  # (Y, X) float32, 0 where ignored
    annotated: np.ndarray  # (Y, X) bool
    cell_pixels: np.ndarray  # flat indices of annotated cell pixels
    any_pixels: np.ndarray  # flat indices of annotated pixels


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def training_weight_map(labels, *, regions=None, config: TrainConfig | None = None,
                        class_weights: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel loss weights used in training: ``w_c + w0 * exp(-(d1 + d2)^2 / 2 sigma^2)``.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Instance labels, 0 = background (inside the regions).
    regions : None, (Y, X) bool ndarray or list of (y0, y1, x0, x1)
        Annotated area; weights are 0 elsewhere, and on cell pixels next to its edge
        (whether those are interior or boundary depends on labels outside).
    config : TrainConfig
        ``w0``, ``sigma`` and ``class_balance``.
    class_weights : (3,) ndarray, optional
        w_c per class (background, interior, boundary); computed from ``labels`` if omitted.

    Returns
    -------
    (Y, X) float32 ndarray
    """
    config = config or TrainConfig()
    labels = check_labels(labels)
    annotated = annotated_mask(labels.shape, regions)
    classes = labels_to_classes(labels)
    if not config.class_balance:
        balance = np.ones(labels.shape, dtype=np.float32)
    elif class_weights is None:
        balance = class_balance_weights(classes, ignore=~annotated)
    else:
        balance = class_weights[classes].astype(np.float32)
    nearest, second = nearest_two_cell_distances(labels, cutoff=border_cutoff(config.sigma))
    weights = balance + (config.w0 * np.exp(-((nearest + second) ** 2) / (2 * config.sigma**2))).astype(np.float32)
    weights[~annotated | _cut_cell_pixels(labels, annotated)] = 0
    return weights


def prepare_annotations(model: SegmentationModel, images, labels, regions=None,
                        config: TrainConfig | None = None, *, name: str = "images") -> list[Annotation]:
    """Check and prepare (image, labels, region) triples; raise before any training starts.

    Parameters
    ----------
    model : SegmentationModel
        Gives the intensity normalisation and the number of input channels.
    images : (Y, X) or (Y, X, 3) ndarray, or a list of them
    labels : (Y, X) ndarray of int, or a list (one per image)
        Whole-numbered floats are accepted; labels outside the regions are discarded.
    regions : None or a list (one per image) of anything :func:`annotated_mask` takes
    config : TrainConfig, optional
        ``w0``, ``sigma`` and ``class_balance`` of the weight maps.
    name : str
        How ``images`` is called in error messages.

    Returns
    -------
    list of Annotation
        Normalised float32 ``(C, Y, X)`` pixels (copies: the inputs are never modified),
        labels, weight maps and the annotated mask, per image. Weights are 0 outside the
        regions and on cell pixels next to a region's edge (their class depends on unknown
        labels); class weights are balanced over all images together.

    Raises
    ------
    ValueError
        No image, lists of different lengths, stacks, labels of another shape, fractional
        or negative labels, unusable regions, or no annotated cell at all.
    """
    config = config or TrainConfig()
    images, labels = _as_list(images), _as_list(labels)
    regions = _as_list(regions) if regions is not None else [None] * len(images)
    if not images:
        raise ValueError(f"{name}: no image given")
    if len(labels) != len(images) or len(regions) != len(images):
        raise ValueError(f"{name}, labels and regions must pair up: got {len(images)} images, "
                         f"{len(labels)} labels and {len(regions)} regions")
    triples = []
    for index, (image, label, region) in enumerate(zip(images, labels, regions)):
        layout = describe_image(image)
        if layout.stacked:
            raise ValueError(f"{name}[{index}] has shape {layout.shape}: train on 2-D (Y, X) or RGB planes")
        label = check_labels(label, name=f"labels[{index}]")
        if label.shape != layout.plane_shape:
            raise ValueError(f"labels[{index}] has shape {label.shape}, its image is {layout.plane_shape}")
        annotated = annotated_mask(layout.plane_shape, region, name=f"regions[{index}]")
        label = np.where(annotated, label, 0)
        triples.append((image, layout, label, annotated))
    if not any((label > 0).any() for _, _, label, _ in triples):
        raise ValueError("labels: no annotated cell (inside the regions) — paint at least one cell")
    classes = [labels_to_classes(label) for _, _, label, _ in triples]
    counts = sum(np.bincount(c[a], minlength=3) for c, (_, _, _, a) in zip(classes, triples))
    present = counts > 0
    class_weights = np.zeros(3, dtype=np.float64)
    class_weights[present] = counts.sum() / (present.sum() * counts[present])
    annotations = []
    for (image, layout, label, annotated) in triples:
        scale = intensity_range(image, layout, model.normalization, model.config.in_channels)
        # apply() scales in place and a float32 image is not copied on its way: copy it here
        pixels = scale.apply(to_model_channels(np.array(image, copy=True), layout, model.config.in_channels))
        weights = training_weight_map(label, regions=annotated, config=config, class_weights=class_weights)
        annotations.append(Annotation(
            image=pixels, labels=label, weights=weights, annotated=annotated,
            cell_pixels=np.flatnonzero(annotated & (label > 0)), any_pixels=np.flatnonzero(annotated)))
    return annotations


def _cut_cell_pixels(labels: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """Cell pixels with a 4-neighbour outside the regions.

    Where a region cuts through a cell, whether such a pixel is interior or boundary depends
    on labels outside the region, which are unknown: it is left out of the loss rather than
    taught as a boundary that is not there.
    """
    cross = ndimage.generate_binary_structure(2, 1)
    return (labels > 0) & ndimage.binary_dilation(~annotated, structure=cross)


# --------------------------------------------------------------------------------------
# patches


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
                weights = np.where(_cut_cell_pixels(labels, ~sample.ignore), 0, weights).astype(np.float32)
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


# --------------------------------------------------------------------------------------
# loss and schedule


def weighted_loss(heads: list[torch.Tensor], classes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Pixel-wise softmax cross entropy weighted by the map, averaged over the heads.

    Each head (UNet++ deep supervision has several, of different sizes) is compared with the
    centre of the targets; the loss is ``sum(w * CE) / sum(w)`` per head, then the mean over
    heads (equal weights, as in the UNet++ paper). Pixels of weight 0 add nothing to the
    loss or its gradient.

    Parameters
    ----------
    heads : list of (N, K, h, w) torch.Tensor
        Class logits; each head at most as large as the targets.
    classes : (N, H, W) torch.Tensor of int64
        Target class per pixel.
    weights : (N, H, W) torch.Tensor of float32
        Loss weight per pixel, >= 0.

    Returns
    -------
    torch.Tensor
        Scalar loss (float32).
    """
    losses = []
    for head in heads:
        height, width = head.shape[-2:]
        top, left = (classes.shape[-2] - height) // 2, (classes.shape[-1] - width) // 2
        target = classes[..., top:top + height, left:left + width]
        weight = weights[..., top:top + height, left:left + width]
        pixel_loss = F.cross_entropy(head.float(), target, reduction="none")
        losses.append((pixel_loss * weight).sum() / weight.sum().clamp_min(1e-6))
    return torch.stack(losses).mean()


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up over the first 5 % of steps, then cosine decay to 5 % of the peak.

    Parameters
    ----------
    step : int
        0-based index of the optimiser step.
    config : TrainConfig
        ``iterations`` and the peak ``learning_rate``.

    Returns
    -------
    float
        The learning rate of that step.
    """
    warmup = max(1, int(config.iterations * WARMUP_FRACTION))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.iterations - warmup)
    floor = FINAL_LR_FRACTION * config.learning_rate
    return floor + (config.learning_rate - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _optimiser(network, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(network.parameters(), lr=config.learning_rate, momentum=0.99)
    return torch.optim.Adam(network.parameters(), lr=config.learning_rate)


def _train_mode(network, freeze_batchnorm: bool) -> None:
    network.train()
    if freeze_batchnorm:
        for module in network.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


# --------------------------------------------------------------------------------------
# the loop


def iter_finetune(model, images, labels, *, regions=None, validation: Sequence | None = None,
                  config: TrainConfig | None = None, augmentation: AugmentConfig | None = None,
                  sampling: Sequence[float] | None = None,
                  ) -> Iterator[TrainStep | Validation | Notice | TrainFinished]:
    """Fine-tune a copy of ``model`` on annotated images, yielding an event per step.

    Parameters
    ----------
    model : SegmentationModel, str or path
        Starting point (a shipped name such as "nuclei", a file, or a model). Not
        modified, nor moved to another device.
    images : (Y, X) or (Y, X, 3) array, or a list of them
        Not modified.
    labels : (Y, X) int array, or a list (one per image)
        Inside the regions 0 is background and k > 0 is cell k.
    regions : None, or a list (one per image) of None | (Y, X) bool mask | [(y0, y1, x0, x1), ...]
        Where the labels are complete. Outside, nothing is learned (not even background).
        To leave a spot inside a region unlearned, leave it out of the mask (or draw the
        rectangles around it).
    validation : list of (image, labels), optional
        Held-out fully annotated images, scored every ``config.validate_every`` steps; the
        best-scoring weights (AP@0.5) are kept.
    config : TrainConfig, optional
    augmentation : AugmentConfig, optional
        Ranges of the augmentations (default: :class:`AugmentConfig`); used when
        ``config.augment``.
    sampling : sequence of float, optional
        Relative probability of drawing a patch from each image (default: proportional to
        its annotated area).

    Yields
    ------
    TrainStep, Validation, Notice, and finally TrainFinished
        Every event carries the same model object, updated in place: the weights of the
        moment, in eval mode. Stopping the iteration early (``close()`` or ``break``)
        leaves it usable. ``Notice``: the batch was halved after running out of memory.
        ``TrainFinished.reason`` is "completed", or "diverged" when the loss or the
        weights became non-finite: the last weights whose loss was finite are restored.
        A run with ``validation`` ends with the best-scoring weights.

    Raises
    ------
    ValueError
        Before the first event, for unusable annotations (no cell, shape mismatch, ...).
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    # a model object is copied where it is: load_model would move the caller's network
    working = copy.deepcopy(model) if isinstance(model, SegmentationModel) else load_model(model, device="cpu")
    network = working.network
    annotations = prepare_annotations(working, images, labels, regions, config)
    validation = _validation_pairs(validation)
    sampler = PatchSampler(network, annotations, config, augmentation, sampling)
    # channels-last convolutions run markedly faster on CPUs (and with AMP on GPUs)
    network.to(device, memory_format=torch.channels_last)
    optimiser = _optimiser(network, config)
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" and device.type == "cuda" else None
    torch.manual_seed(config.seed)
    batch_size = config.batch_size
    batches = sampler.batches(config.seed, config.batch_size, config.workers)
    best = (-1.0, None, None)
    start = time.perf_counter()
    # the weights that last gave a finite loss, and the number of steps that produced them
    verified, verified_step = _snapshot(network), 0
    recent: list[float] = []
    step = 0
    while step < config.iterations:
        rate = learning_rate_at(step, config)
        for group in optimiser.param_groups:
            group["lr"] = rate
        inputs, classes, weights = (tensor[:batch_size] for tensor in next(batches))
        _train_mode(network, config.freeze_batchnorm)
        before = _snapshot(network)
        try:
            loss = _step(network, optimiser, scaler, inputs, classes, weights, device, config.precision)
        except Exception as error:  # noqa: BLE001 - only allocation failures are retried
            if not is_out_of_memory(error) or batch_size == 1:
                raise
            optimiser.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            batch_size //= 2
            yield Notice(step=step, message=f"out of memory: continuing with batch size {batch_size}")
            continue
        if math.isfinite(loss):
            verified, verified_step = before, step
        problem = (f"loss became {loss}" if not math.isfinite(loss)
                   else None if _parameters_finite(network) else "weights became non-finite")
        if problem is not None:
            # a non-finite loss usually means the previous step already blew the weights up,
            # so the weights restored are the last ones whose loss was finite
            network.load_state_dict(verified)
            network.eval()
            working.history.append(_history_entry(config, verified_step, recent, "diverged", annotations,
                                                  sampler.augment))
            kept = f"the weights after step {verified_step}" if verified_step else "the starting weights"
            yield TrainFinished(model=working, steps=verified_step, reason="diverged", message=(
                f"{problem} at step {step + 1} (learning rate {rate:.2g}); {kept}, the last with a finite "
                f"loss, were restored — try a lower learning rate"))
            return
        step += 1
        recent = (recent + [loss])[-20:]
        elapsed = time.perf_counter() - start
        network.eval()
        yield TrainStep(step=step, iterations=config.iterations, loss=loss, learning_rate=rate, elapsed=elapsed,
                        eta=elapsed / step * (config.iterations - step), batch_size=batch_size, model=working)
        if validation and (step % config.validate_every == 0 or step == config.iterations):
            metrics = validate(working, validation, config)
            if metrics["ap50"] > best[0]:
                best = (metrics["ap50"], {k: v.detach().clone() for k, v in network.state_dict().items()},
                        {"step": step, **metrics})
            yield Validation(step=step, metrics=metrics, model=working)
    entry = _history_entry(config, step, recent, "completed", annotations, sampler.augment)
    if best[1] is not None:
        # the best-scoring weights on the held-out annotations are the ones kept
        network.load_state_dict(best[1])
        entry["validation"] = best[2]
    network.eval()
    working.history.append(entry)
    yield TrainFinished(model=working, steps=step, reason="completed",
                        message=f"{step} steps, final loss {np.mean(recent):.4f}")


def _snapshot(network) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in network.state_dict().items()}


def _parameters_finite(network) -> bool:
    # one reduction and one device sync for the whole network; an overflowing sum counts
    # as divergence too
    return bool(torch.isfinite(torch.stack([p.detach().float().sum() for p in network.parameters()]).sum()))


def _validation_pairs(validation) -> list[tuple[np.ndarray, np.ndarray]]:
    """Check the held-out ``(image, labels)`` pairs before training rather than at step 50."""
    pairs = []
    for index, pair in enumerate(validation or []):
        try:
            image, labels = pair
        except (TypeError, ValueError):
            raise ValueError(f"validation[{index}] must be an (image, labels) pair") from None
        layout = describe_image(image)
        labels = check_labels(labels, name=f"validation labels[{index}]")
        if layout.stacked or labels.shape != layout.plane_shape:
            raise ValueError(f"validation labels[{index}] have shape {labels.shape}, their image "
                             f"has shape {layout.shape}; pass 2-D (Y, X) or RGB images with matching labels")
        pairs.append((np.asarray(image), labels))
    return pairs


def _step(network, optimiser, scaler, inputs, classes, weights, device, precision) -> float:
    inputs = inputs.to(device, memory_format=torch.channels_last)
    classes, weights = classes.to(device), weights.to(device)
    optimiser.zero_grad(set_to_none=True)
    with autocast(device, precision):
        heads = network.forward_heads(inputs)
    loss = weighted_loss(heads, classes, weights)
    if not torch.isfinite(loss):
        return float(loss.detach())
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
    else:
        loss.backward()
        optimiser.step()
    return float(loss.detach())


def validate(model: SegmentationModel, pairs, config: TrainConfig) -> dict:
    """AP@0.5, IoU and weighted loss of ``model`` on fully annotated ``(image, labels)`` pairs.

    Parameters
    ----------
    model : SegmentationModel
        Scored on the device it is on.
    pairs : list of ((Y, X) or (Y, X, 3) ndarray, (Y, X) ndarray of int)
        Held-out images with complete instance labels.
    config : TrainConfig
        ``precision``, and ``w0`` / ``sigma`` of the weighted loss.

    Returns
    -------
    dict of str to float
        ``loss`` (weighted cross entropy as in training), ``ap50`` (TP / (TP + FP + FN) at
        IoU 0.5) and ``iou`` (foreground IoU), each the mean over the pairs.
    """
    from .instances import probabilities_to_labels
    from .metrics import evaluate
    from .predict import predict_probabilities

    scores = {"loss": [], "ap50": [], "iou": []}
    for image, truth in pairs:
        probabilities = predict_probabilities(image, model, device=str(model.device), precision=config.precision)
        classes = labels_to_classes(truth)
        weights = training_weight_map(truth, config=config)
        picked = np.take_along_axis(probabilities, classes[None].astype(np.int64), axis=0)[0]
        scores["loss"].append(float((-np.log(np.clip(picked, 1e-7, 1)) * weights).sum() / weights.sum()))
        result = evaluate(probabilities_to_labels(probabilities), truth)
        scores["ap50"].append(result["ap50"])
        scores["iou"].append(result["iou"])
    return {key: float(np.mean(values)) for key, values in scores.items()}


def _history_entry(config: TrainConfig, steps: int, recent: list[float], outcome: str, annotations,
                   augmentation: AugmentConfig | None) -> dict:
    import dataclasses

    return {
        "kind": "finetune",
        "outcome": outcome,
        "steps": steps,
        "final_loss": float(np.mean(recent)) if recent else None,
        "annotated_cells": int(sum(np.unique(a.labels[a.labels > 0]).size for a in annotations)),
        "config": {key: value for key, value in config.__dict__.items() if key != "device"},
        # lists, as JSON gives them back
        "augmentation": None if augmentation is None else {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(augmentation).items()},
        "date": time.strftime("%Y-%m-%d"),
    }


def finetune(model, images, labels, *, regions=None, validation=None, config: TrainConfig | None = None,
             callback: Callable[[object], None] | None = None) -> SegmentationModel:
    """Blocking :func:`iter_finetune`: returns the fine-tuned copy of ``model``.

    Parameters
    ----------
    model, images, labels, regions, validation, config
        As for :func:`iter_finetune`.
    callback : callable, optional
        Called with every event (``TrainStep``, ``Validation``, ``Notice``,
        ``TrainFinished``), e.g. to print progress.

    Returns
    -------
    SegmentationModel
        The fine-tuned copy, in eval mode, with a new ``history`` entry.

    Warns
    -----
    RuntimeWarning
        The loss or the weights became non-finite; the model returned holds the last
        weights whose loss was finite.
    """
    import warnings

    finished = None
    for event in iter_finetune(model, images, labels, regions=regions, validation=validation, config=config):
        if callback is not None:
            callback(event)
        if isinstance(event, TrainFinished):
            finished = event
    if finished.reason == "diverged":
        warnings.warn(finished.message, RuntimeWarning, stacklevel=2)
    return finished.model
