"""The ``napari-unet`` command: the same core functions as the Python API.

Errors are one line on stderr (``error: <file>: <what is wrong>``), never a traceback; a
failing input does not stop the others, but makes the exit code non-zero.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .instances import DEFAULT_SEEDS, SEEDS
from .io_images import one_line_message, output_stem

EXIT_INPUT_ERROR = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A user-facing failure: printed as one line."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _progress_bar(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="tile", leave=False, disable=None, file=sys.stderr)


def _add_predict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="nuclei", help="shipped model name or .safetensors file (default: nuclei)")
    parser.add_argument("--tile-size", type=_positive_int, help="output pixels per tile edge (default: automatic)")
    parser.add_argument("--batch-size", type=_positive_int, help="tiles per forward pass (default: automatic)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--prune-level", type=_positive_int, help="UNet++: run only the sub-network of this level")


def _segment_file(path: Path, model, args) -> list[Path]:
    from .instances import probabilities_to_labels
    from .io_images import read_image, write_tiff
    from .predict import predict_probabilities, segment

    image = read_image(path)
    stem = output_stem(path)
    options = dict(tile_size=args.tile_size, batch_size=args.batch_size, device=args.device,
                   precision=args.precision, prune_level=args.prune_level)
    seeds = args.seeds
    written = []
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _progress_bar(total, path.name)
        bar.update(done - bar.n)

    try:
        if getattr(args, "scheduler", None):
            labels, probabilities = _segment_on_cluster(image, model, args.probabilities, options, seeds)
        elif not args.probabilities and _plane_pixels(image) > LARGE_PLANE_PIXELS:
            labels, probabilities = _segment_chunked(image, model, options, seeds), None
        elif args.probabilities:
            # predict once, label from the same probabilities
            probabilities = predict_probabilities(image, model, progress=progress, **options)
            labels = probabilities_to_labels(probabilities, seeds=seeds)
        else:
            labels, probabilities = segment(image, model, progress=progress, seeds=seeds, **options), None
        written.append(write_tiff(args.out / f"{stem}_labels.tif", labels))
        if probabilities is not None:
            written.append(write_tiff(args.out / f"{stem}_probabilities.tif", probabilities))
    finally:
        if bar is not None:
            bar.close()
    return written


# planes larger than this are segmented chunk by chunk (memory stays bounded)
LARGE_PLANE_PIXELS = 4096 * 4096
CHUNK = 512


def _plane_pixels(image) -> int:
    from .images import describe_image

    height, width = describe_image(image).plane_shape
    return height * width


def _segment_chunked(image, model, options: dict, seeds: str) -> np.ndarray:
    """Huge images: chunked prediction and labels (one chunk at a time), sequential ids."""
    import dask
    import dask.array as da

    from .lazy import segment_lazy

    # one tile per chunk: no extra compute, and few probability chunks held at a time
    lazy = segment_lazy(image, model, chunk_size=CHUNK, seeds=seeds, **options)
    labels = np.empty(lazy.shape, dtype=lazy.dtype)
    with dask.config.set(scheduler="sync"):
        da.store(lazy, labels, lock=False)
    return _sequential_per_plane(labels)


def _sequential_per_plane(labels: np.ndarray) -> np.ndarray:
    """Chunked labels (ids named after centroids) numbered 1..n, each plane on its own."""
    from .instances import relabel_sequential, stack_planes

    if labels.ndim == 3:
        return stack_planes([relabel_sequential(plane) for plane in labels])
    return relabel_sequential(labels)


def _segment_on_cluster(image, model, with_probabilities: bool, options: dict, seeds: str):
    """Chunked prediction and labelling on the dask cluster; sequential labels per plane."""
    import dask

    from .lazy import label_lazy, predict_lazy

    probabilities = predict_lazy(image, model, **options)
    labels = label_lazy(probabilities, seeds=seeds)
    if with_probabilities:
        labels, probabilities = dask.compute(labels, probabilities)
    else:
        labels, probabilities = labels.compute(), None
    return _sequential_per_plane(labels), probabilities


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise CommandError("--scheduler needs dask.distributed: pip install 'napari-unet[distributed]'") from None
    try:
        return Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as error:
        raise CommandError(f"--scheduler {address}: cannot reach the dask scheduler ({error})") from None


def _output_folder(out: Path) -> Path:
    """Create ``--out`` (and its parents) unless something that is not a folder is in the way."""
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            what = "is" if folder == out else f"{folder} is"
            raise CommandError(f"--out {out}: {what} a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"--out {out}: cannot create the folder ({error.strerror or error})") from None
    return out


def _load_model_option(model, device: str, prune_level: int | None = None):
    """``--model`` as a loaded model; problems become one-line errors naming the option."""
    from .models import ModelFileError, load_model

    if Path(model).is_dir():
        raise CommandError(f"--model {model}: is a folder, not a model file")
    try:
        loaded = load_model(model, device=device)
    except ModelFileError as error:
        raise CommandError(f"--model {error}") from None
    try:
        loaded.network.check_level(prune_level)
    except ValueError as error:
        raise CommandError(f"--prune-level: {error}") from None
    return loaded


def _command_segment(args) -> int:
    model = _load_model_option(args.model, "cpu" if args.scheduler else args.device, args.prune_level)
    _output_folder(args.out)
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        return _segment_files(args, model)
    finally:
        if client is not None:
            client.close()


def _segment_files(args, model) -> int:
    failures = 0
    claimed: dict[str, Path] = {}
    for path in args.inputs:
        try:
            stem = output_stem(path)
            if stem in claimed:
                raise ValueError(f"its results would overwrite those of {claimed[stem]} "
                                 f"({args.out / stem}_labels.tif); segment it into another --out folder")
            for written in _segment_file(path, model, args):
                print(written)
            claimed[stem] = path
        except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as error:
            failures += 1
            message = one_line_message(error)
            print(f"error: {message if message.startswith(str(path)) else f'{path}: {message}'}", file=sys.stderr)
    return EXIT_INPUT_ERROR if failures else 0


def _command_models(args) -> int:
    from .models import list_models, load_model

    if not list_models():
        print("no shipped models are installed; pass a .safetensors file to --model", file=sys.stderr)
    for name in list_models():
        model = load_model(name, device="cpu")
        c = model.config
        print(f"{name}\t{c.arch} depth={c.depth} base_channels={c.base_channels} padding={c.padding} "
              f"parameters={model.parameter_count():,}")
    return 0


def _command_demo(args) -> int:
    from .sample_data import sample_nuclei

    model = _load_model_option(args.model, args.device)
    image, truth = sample_nuclei()
    _output_folder(args.out)
    from .io_images import write_tiff

    image_path = write_tiff(args.out / "sample_nuclei.tif", image)
    truth_path = write_tiff(args.out / "sample_nuclei_truth.tif", truth)
    segment_args = argparse.Namespace(out=args.out, tile_size=None, batch_size=None, device=args.device,
                                      precision="fp32", prune_level=None, probabilities=False,
                                      seeds=DEFAULT_SEEDS)
    (labels_path,) = _segment_file(image_path, model, segment_args)
    from .io_images import read_image
    from .metrics import evaluate

    scores = evaluate(read_image(labels_path), truth)
    print(f"sample image: {image_path} ({image.shape[0]}x{image.shape[1]}), ground truth: {truth_path}")
    print(f"labels: {labels_path} ({int(scores['n_pred'])} cells found, {int(scores['n_truth'])} in the ground truth)")
    print(f"AP@0.5 = {scores['ap50']:.3f}   AP@0.75 = {scores['ap75']:.3f}   IoU = {scores['iou']:.3f}")
    print(f"view it: napari {image_path} {labels_path}")
    return 0


def _command_pretrain(args) -> int:
    import dataclasses

    from .pretrain import PretrainRecipe, pretrain
    from .train import TrainStep, Validation

    recipe = PretrainRecipe()
    changes = {k: v for k, v in dict(iterations=args.iterations, seed=args.seed, precision=args.precision).items()
               if v is not None}
    train = dataclasses.replace(recipe.train, device=args.device, workers=args.workers, **changes)
    recipe = dataclasses.replace(recipe, train=train)
    progress = _StepLog("pretrain", train.iterations)

    def report(event) -> None:
        if isinstance(event, TrainStep):
            progress.step(event.step, f"loss {event.loss:.3f}", event.eta)
        elif isinstance(event, Validation):
            progress.write(f"step {event.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in event.metrics.items()))

    try:
        model = pretrain(args.out, args.data, recipe=recipe, callback=report)
    finally:
        progress.close()
    print(f"wrote {args.out}: {model!r}")
    return 0


class _StepLog:
    """Progress of a long run: a bar on a terminal, a plain line every ``every`` steps otherwise."""

    def __init__(self, description: str, total: int, every: int = 100):
        from tqdm import tqdm

        self.interactive = sys.stderr.isatty()
        self.description, self.total, self.every = description, total, every
        self.bar = tqdm(total=total, desc=description, unit="step", file=sys.stderr) if self.interactive else None

    def step(self, step: int, detail: str, eta: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(detail, refresh=False)
        elif step % self.every == 0 or step == self.total:
            print(f"{self.description}: step {step}/{self.total}, {detail}, {eta / 60:.0f} min left",
                  file=sys.stderr, flush=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _InOrder(argparse.Action):
    """Record ``--image`` and ``--region`` in command-line order, so a region knows its image."""

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), (option_string, value)])


_REGION = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*$")


def _parse_region(text: str, owner: str, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``Y0:Y1,X0:X1`` -> ``(y0, y1, x0, x1)`` inside ``shape``; ``owner`` names the image in errors."""
    match = _REGION.match(text)
    if match is None:
        raise CommandError(f"--region {text!r}: expected Y0:Y1,X0:X1 in pixels (ends exclusive), e.g. 0:128,64:256")
    y0, y1, x0, x1 = (int(value) for value in match.groups())
    if not (y0 < y1 <= shape[0] and x0 < x1 <= shape[1]):
        raise CommandError(f"--region {text} (for {owner}): empty or outside the image of "
                           f"{shape[0]}x{shape[1]} pixels")
    return y0, y1, x0, x1


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


def _read_file(path: Path, option: str):
    from .io_images import read_image

    try:
        return read_image(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"{option} {one_line_message(error)}") from None


def _read_labels(path: Path, option: str):
    from .instances import check_labels

    return check_labels(_read_file(path, option), name=f"{option} {path}")


def _read_annotations(args) -> tuple[list, list, list]:
    from .images import describe_image

    images, labels, regions = [], [], []
    for (image_path, region_texts), labels_path in zip(_training_images(args), args.labels):
        image = _read_file(image_path, "--image")
        layout = describe_image(image)
        if layout.stacked:
            raise CommandError(f"--image {image_path}: shape {layout.shape} is a stack; train on 2-D or RGB images")
        label = _read_labels(labels_path, "--labels")
        if label.shape != layout.plane_shape:
            raise CommandError(f"--labels {labels_path}: shape {label.shape}, but --image {image_path} is "
                               f"{layout.plane_shape}")
        images.append(image)
        labels.append(label)
        rectangles = [_parse_region(text, f"--image {image_path}", layout.plane_shape) for text in region_texts]
        regions.append(rectangles or None)
    return images, labels, regions


def _model_output(out: Path, overwrite: bool) -> Path:
    from .models.io import SUFFIX

    if out.suffix != SUFFIX:
        raise CommandError(f"--out {out}: model files end in {SUFFIX}")
    if not out.parent.is_dir():
        raise CommandError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and not overwrite:
        raise CommandError(f"--out {out}: exists; pass --overwrite to replace it")
    return out


def _command_finetune(args) -> int:
    from tqdm import tqdm

    from .config import TrainConfig
    from .devices import resolve_device
    from .models import save_model
    from .train import Notice, TrainFinished, TrainStep, iter_finetune

    out = _model_output(args.out, args.overwrite)
    changes = dict(iterations=args.iterations, seed=args.seed, batch_size=args.batch_size,
                   patch_size=args.patch_size, learning_rate=args.learning_rate)
    config = TrainConfig(device=args.device, precision=args.precision,
                         **{key: value for key, value in changes.items() if value is not None})
    resolve_device(config.device)
    images, labels, regions = _read_annotations(args)
    model = _load_model_option(args.model, "cpu")
    finished = None
    bar = tqdm(total=config.iterations, desc="finetune", unit="step", disable=None, file=sys.stderr)
    try:
        for event in iter_finetune(model, images, labels, regions=regions, config=config):
            if isinstance(event, TrainStep):
                bar.update(event.step - bar.n)
                bar.set_postfix(loss=f"{event.loss:.3f}", refresh=False)
            elif isinstance(event, Notice):
                bar.write(f"note: {event.message}", file=sys.stderr)
            elif isinstance(event, TrainFinished):
                finished = event
    finally:
        bar.close()
    if finished.reason != "completed":
        raise CommandError(f"training diverged, nothing written: {finished.message}")
    if out.exists() and not args.overwrite:
        raise CommandError(f"--out {out}: appeared during training; pass --overwrite to replace it")
    finished.model.name = out.stem
    save_model(finished.model, out)
    print(f"wrote {out}: {finished.message}")
    return 0


_METRIC_LINES = (("AP@0.5", "ap50"), ("AP@0.75", "ap75"), ("F1@0.5", "f1"), ("IoU", "iou"), ("Dice", "dice"),
                 ("pixel error", "pixel_error"), ("Rand error", "rand_error"))


def _command_evaluate(args) -> int:
    import json

    from .metrics import evaluate

    pred, truth = _read_labels(args.pred, "PRED"), _read_labels(args.truth, "TRUTH")
    if pred.shape != truth.shape:
        raise CommandError(f"PRED {args.pred} has shape {pred.shape}, TRUTH {args.truth} has {truth.shape}")
    scores = evaluate(pred, truth)
    if args.json:
        print(json.dumps(scores))
        return 0
    print(f"{'objects':<12} {int(scores['n_pred'])} predicted, {int(scores['n_truth'])} true")
    for title, key in _METRIC_LINES:
        print(f"{title:<12} {scores[key]:.4f}")
    return 0


def _command_weights(args) -> int:
    from .config import TrainConfig
    from .io_images import write_tiff
    from .train import training_weight_map

    if args.out.suffix.lower() not in (".tif", ".tiff"):
        raise CommandError(f"--out {args.out}: weight maps are written as .tif")
    if not args.out.parent.is_dir():
        raise CommandError(f"--out {args.out}: folder {args.out.parent} does not exist")
    config = TrainConfig(w0=args.w0, sigma=args.sigma)
    labels = _read_labels(args.labels, "LABELS")
    if labels.ndim != 2:
        raise CommandError(f"LABELS {args.labels}: shape {labels.shape}; weight maps need 2-D (Y, X) labels")
    regions = [_parse_region(text, f"LABELS {args.labels}", labels.shape) for text in args.region or []] or None
    print(write_tiff(args.out, training_weight_map(labels, regions=regions, config=config)))
    return 0


def _add_train_parsers(commands) -> None:
    from .config import TrainConfig

    default = TrainConfig()
    finetune = commands.add_parser(
        "finetune", help="fine-tune a model on annotated images",
        description="Fine-tune a model on annotated images and write it as one .safetensors file. "
                    "Labels: 0 = background, k > 0 = cell k. Without --region the whole image counts as "
                    "annotated (unlabelled pixels are background); with --region only the rectangles are "
                    "learned from and everything outside them is ignored.")
    finetune.add_argument("--image", dest="training", action=_InOrder, required=True, metavar="IMAGE",
                          help="training image (repeat for several images)")
    finetune.add_argument("--labels", action="append", type=Path, required=True, metavar="LABELS",
                          help="instance labels of the image given at the same position (one per --image)")
    finetune.add_argument("--region", dest="training", action=_InOrder, metavar="Y0:Y1,X0:X1",
                          help="annotated rectangle of the PRECEDING --image, pixels, ends exclusive "
                               "(repeatable; default: the whole image)")
    finetune.add_argument("--model", default="nuclei", help="starting model: shipped name or .safetensors file "
                                                          "(default: nuclei)")
    finetune.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    finetune.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    finetune.add_argument("--iterations", type=_positive_int, help=f"optimiser steps (default: {default.iterations})")
    finetune.add_argument("--learning-rate", type=float,
                          help=f"peak learning rate (default: {default.learning_rate:g})")
    finetune.add_argument("--batch-size", type=_positive_int, help=f"patches per step (default: {default.batch_size})")
    finetune.add_argument("--patch-size", type=_positive_int,
                          help=f"output pixels per patch edge (default: {default.patch_size})")
    finetune.add_argument("--seed", type=int, help=f"seed of sampling and augmentation (default: {default.seed})")
    finetune.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    finetune.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    finetune.set_defaults(run=_command_finetune)

    evaluate = commands.add_parser("evaluate", help="score predicted labels against ground-truth labels")
    evaluate.add_argument("pred", type=Path, metavar="PRED", help="predicted instance labels (.tif, .png, .npy)")
    evaluate.add_argument("truth", type=Path, metavar="TRUTH", help="ground-truth instance labels")
    evaluate.add_argument("--json", action="store_true", help="print all scores as one JSON object")
    evaluate.set_defaults(run=_command_evaluate)

    weights = commands.add_parser("weights", help="write the training weight map of a labels image (U-Net eq. 2)")
    weights.add_argument("labels", type=Path, metavar="LABELS", help="instance labels, 0 = background")
    weights.add_argument("--out", type=Path, required=True, help="weight map to write (.tif, float32)")
    weights.add_argument("--w0", type=float, default=default.w0,
                         help=f"height of the border term (default: {default.w0:g})")
    weights.add_argument("--sigma", type=float, default=default.sigma,
                         help=f"width of the border term in pixels (default: {default.sigma:g})")
    weights.add_argument("--region", action="append", metavar="Y0:Y1,X0:X1",
                         help="annotated rectangle (repeatable); weights are 0 outside")
    weights.set_defaults(run=_command_weights)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-unet", description="U-Net cell segmentation from the command line.")
    parser.add_argument("--version", action="version", version=f"napari-unet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("models", help="list the shipped models").set_defaults(run=_command_models)

    segment = commands.add_parser("segment", help="segment images into instance labels")
    segment.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                         help="image files (.tif, .png, .jpg, .bmp, .npy)")
    segment.add_argument("--out", type=Path, required=True, help="output folder")
    segment.add_argument("--probabilities", action="store_true", help="also write <stem>_probabilities.tif")
    segment.add_argument("--seeds", choices=SEEDS, default=DEFAULT_SEEDS,
                         help="how touching cells are split: distance (at the neck between them, the default) "
                              "or interior (only along a predicted boundary; for rods and filaments)")
    segment.add_argument("--scheduler", metavar="ADDRESS",
                         help="run on this dask.distributed scheduler (e.g. tcp://host:8786), chunk by chunk")
    _add_predict_options(segment)
    segment.set_defaults(run=_command_segment)

    demo = commands.add_parser("demo", help="segment the bundled sample image and score it")
    demo.add_argument("--out", type=Path, default=Path("napari-unet-demo"), help="output folder")
    demo.add_argument("--model", default="nuclei", help="shipped model name or .safetensors file (default: nuclei)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    demo.set_defaults(run=_command_demo)
    pretrain = commands.add_parser("pretrain", help="train the shipped nuclei model from annotated and synthetic data")
    pretrain.add_argument("--data", type=Path, required=True,
                          help="annotated folder (images/, masks/, index.csv with a train split), e.g. DSB2018")
    pretrain.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    pretrain.add_argument("--iterations", type=_positive_int, help="optimiser steps (default: the recipe's)")
    pretrain.add_argument("--seed", type=int, help="training seed (default: the recipe's)")
    pretrain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    pretrain.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                          help="autocast precision (default: the recipe's, bf16)")
    pretrain.add_argument("--workers", type=int, default=0, help="background processes preparing patches")
    pretrain.set_defaults(run=_command_pretrain)
    _add_train_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, TypeError, OSError, MemoryError, RuntimeError) as error:
        print(f"error: {one_line_message(error)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
