"""``napari-unet finetune``, ``pretrain``, ``evaluate`` and ``weights``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..io import one_line_message
from .common import CommandError, Progress, load_model_option, parse_region, read_file, read_labels


class InOrder(argparse.Action):
    """Record ``--image`` and ``--region`` in command-line order, so a region knows its image."""

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), (option_string, value)])


def _training_images(args) -> list[tuple[Path, list[str]]]:
    """Pair every --image with the --region options that follow it."""
    images: list[tuple[Path, list[str]]] = []
    for option, value in args.training or []:
        if option == "--image":
            images.append((Path(value), []))
        elif not images:
            raise CommandError(f"--region {value}: give it after the --image it applies to")
        else:
            images[-1][1].append(value)
    labels = args.labels or []
    if not images or len(images) != len(labels):
        raise CommandError(f"give one --labels per --image (got {len(images)} --image and {len(labels)} --labels)")
    return images


def read_annotations(args) -> tuple[list, list, list]:
    """Images, labels and rectangles of ``--image/--labels/--region``, checked as training checks them."""
    from ..training.annotations import check_annotation

    images, labels, regions = [], [], []
    for (image_path, region_texts), labels_path in zip(_training_images(args), args.labels):
        image = read_file(image_path, "--image")
        label = read_file(labels_path, "--labels")
        plane_shape = image.shape[:2] if image.ndim == 3 and image.shape[-1] in (3, 4) else image.shape[-2:]
        rectangles = [parse_region(text, f"--image {image_path}", plane_shape) for text in region_texts] or None
        try:
            checked = check_annotation(image, label, rectangles, image_name=f"--image {image_path}",
                                       labels_name=f"--labels {labels_path}")
        except ValueError as error:
            raise CommandError(str(error)) from None
        images.append(checked.image)
        labels.append(label)
        regions.append(rectangles)
    return images, labels, regions


def run_training(events, total: int | None, description: str):
    """Drain training events with progress output; returns the TrainFinished event.

    ``total``: steps planned, or None for a time budget (progress then counts seconds)."""
    from ..events import Notice, TrainFinished, TrainStep, Validation

    progress, finished = None, None
    try:
        for event in events:
            if isinstance(event, TrainStep):
                if progress is None:
                    budget = total or int(round(event.elapsed + event.eta))
                    progress = Progress(description, budget, "step" if total else "second")
                progress.update(event.step if total else min(int(event.elapsed), progress.total),
                                f"step {event.step}, loss {event.loss:.3f}")
            elif isinstance(event, Validation) and "cells" in event.metrics:
                m = event.metrics
                _say(progress, f"step {event.step}: held-out cells AP@0.5 {m['ap50']:.3f} ({m['found']} of "
                               f"{m['cells']} found, {m['false']} other objects)")
            elif isinstance(event, Validation):
                _say(progress, f"step {event.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in event.metrics.items()))
            elif isinstance(event, Notice):
                _say(progress, f"note: {event.message}")
            elif isinstance(event, TrainFinished):
                finished = event
    finally:
        if progress is not None:
            progress.close()
    return finished


def _say(progress, line: str) -> None:
    if progress is not None:
        progress.write(line)
    else:
        print(line, file=sys.stderr, flush=True)


def command_finetune(args) -> int:
    from ..devices import resolve_device
    from ..jobs.finetune import budget_config, check_model_output, write_finetuned
    from ..training.loop import iter_finetune

    try:
        out = check_model_output(args.out, args.overwrite)
    except ValueError as error:
        raise CommandError(f"--out {error}") from None
    try:
        config = budget_config(minutes=args.minutes, iterations=args.iterations, device=args.device,
                               precision=args.precision, keep_worse=args.keep_worse or None, seed=args.seed,
                               batch_size=args.batch_size, patch_size=args.patch_size,
                               learning_rate=args.learning_rate, anchor=args.anchor, holdout=args.holdout)
    except ValueError as error:  # a TrainConfig field: named as its option
        raise CommandError(f"--{one_line_message(error).replace('_', '-')}") from None
    resolve_device(config.device)
    images, labels, regions = read_annotations(args)
    model = load_model_option(args.model, "cpu")
    finished = run_training(iter_finetune(model, images, labels, regions=regions, config=config),
                            config.iterations if config.minutes is None else None, "finetune")
    try:
        write_finetuned(finished, out, overwrite=args.overwrite, keep_collapsed=args.keep_collapsed)
    except ValueError as error:
        raise CommandError(str(error)) from None
    if finished.collapsed:
        print(f"warning: {finished.message}", file=sys.stderr)
        print(f"wrote {out}: {finished.steps} steps (collapsed: it finds none of its annotated cells)")
    else:
        print(f"wrote {out}: {finished.message}")
    return 0


def command_pretrain(args) -> int:
    import dataclasses

    from ..training.pretrain import RECIPES, iter_pretrain, parse_shares

    recipe = dataclasses.replace(RECIPES[args.recipe], excluded=tuple(args.exclude or ()))
    if args.shares is not None:
        try:
            recipe = dataclasses.replace(recipe, group_shares=parse_shares(args.shares, recipe.group_shares))
        except ValueError as error:
            raise CommandError(f"--{error}") from None
    from ..jobs.finetune import MAX_STEPS

    iterations = args.iterations or (MAX_STEPS if args.minutes is not None else None)
    options = dict(iterations=iterations, minutes=args.minutes, seed=args.seed, precision=args.precision,
                   learning_rate=args.learning_rate, batch_size=args.batch_size, patch_size=args.patch_size)
    changes = {k: v for k, v in options.items() if v is not None}
    train = dataclasses.replace(recipe.train, device=args.device, workers=args.workers, **changes)
    recipe = dataclasses.replace(recipe, train=train)
    finished = run_training(iter_pretrain(args.out, args.data, recipe=recipe, init=args.init),
                            train.iterations if train.minutes is None else None, "pretrain")
    if finished.reason != "completed":
        raise CommandError(f"pretraining did not complete: {finished.message}")
    print(f"wrote {args.out}: {finished.model!r}")
    return 0


_METRIC_LINES = (("AP@0.5", "ap50"), ("AP@0.75", "ap75"), ("F1@0.5", "f1"), ("IoU", "iou"), ("Dice", "dice"),
                 ("pixel error", "pixel_error"), ("Rand error", "rand_error"))


def _looks_like_an_image(labels, path: Path) -> str | None:
    """A warning when PRED holds far more distinct values than objects could explain."""
    import numpy as np

    values = np.unique(labels).size
    if labels.dtype.kind == "f" or values > max(1000, labels.size // 20):
        return (f"PRED {path} holds {values} distinct values in {labels.size} pixels: it looks like an image, "
                "not instance labels (0 = background, k = object k)")
    return None


def command_evaluate(args) -> int:
    from ..metrics import evaluate

    raw = read_file(args.pred, "PRED")
    pred, truth = read_labels(args.pred, "PRED"), read_labels(args.truth, "TRUTH")
    if pred.shape != truth.shape:
        raise CommandError(f"PRED {args.pred} has shape {pred.shape}, TRUTH {args.truth} has {truth.shape}")
    warning = _looks_like_an_image(raw, args.pred)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    scores = evaluate(pred, truth)
    if args.json:
        print(json.dumps(scores))
        return 0
    print(f"{'objects':<12} {int(scores['n_pred'])} predicted, {int(scores['n_truth'])} true")
    for title, key in _METRIC_LINES:
        print(f"{title:<12} {scores[key]:.4f}")
    return 0


def command_weights(args) -> int:
    from ..config import TrainConfig
    from ..io import write_tiff
    from ..training.annotations import training_weight_map

    if args.out.suffix.lower() not in (".tif", ".tiff"):
        raise CommandError(f"--out {args.out}: weight maps are written as .tif")
    if not args.out.parent.is_dir():
        raise CommandError(f"--out {args.out}: folder {args.out.parent} does not exist")
    config = TrainConfig(w0=args.w0, sigma=args.sigma)
    labels = read_labels(args.labels, "LABELS")
    if labels.ndim != 2:
        raise CommandError(f"LABELS {args.labels}: shape {labels.shape}; weight maps need 2-D (Y, X) labels")
    regions = [parse_region(text, f"LABELS {args.labels}", labels.shape) for text in args.region or []] or None
    try:
        weights = training_weight_map(labels, regions=regions, config=config)
    except ValueError as error:
        raise CommandError(one_line_message(error)) from None
    print(write_tiff(args.out, weights))
    return 0
