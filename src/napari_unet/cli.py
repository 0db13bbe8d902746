"""The ``napari-unet`` command: the same core functions as the Python API.

Errors are one line on stderr (``error: <file>: <what is wrong>``), never a traceback; a
failing input does not stop the others, but makes the exit code non-zero.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import __version__

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
    from .io_images import read_image, write_tiff
    from .predict import predict_probabilities, segment

    image = read_image(path)
    stem = path.name.split(".")[0]
    options = dict(tile_size=args.tile_size, batch_size=args.batch_size, device=args.device,
                   precision=args.precision, prune_level=args.prune_level)
    written = []
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _progress_bar(total, path.name)
        bar.update(done - bar.n)

    try:
        if getattr(args, "scheduler", None):
            labels, probabilities = _segment_on_cluster(image, model, args.probabilities, options)
        else:
            labels = segment(image, model, progress=progress, **options)
            probabilities = predict_probabilities(image, model, **options) if args.probabilities else None
        written.append(write_tiff(args.out / f"{stem}_labels.tif", labels))
        if probabilities is not None:
            written.append(write_tiff(args.out / f"{stem}_probabilities.tif", probabilities))
    finally:
        if bar is not None:
            bar.close()
    return written


def _segment_on_cluster(image, model, with_probabilities: bool, options: dict):
    """Chunked prediction and labelling on the dask cluster; sequential labels per plane."""
    import dask

    from .instances import relabel_sequential
    from .lazy import label_lazy, predict_lazy

    probabilities = predict_lazy(image, model, **options)
    labels = label_lazy(probabilities)
    if with_probabilities:
        labels, probabilities = dask.compute(labels, probabilities)
    else:
        labels, probabilities = labels.compute(), None
    if labels.ndim == 3:
        planes = [relabel_sequential(plane) for plane in labels]
        dtype = np.result_type(*[plane.dtype for plane in planes])
        return np.stack([plane.astype(dtype, copy=False) for plane in planes]), probabilities
    return relabel_sequential(labels), probabilities


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise CommandError("--scheduler needs dask.distributed: pip install 'napari-unet[distributed]'") from None
    try:
        return Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as error:
        raise CommandError(f"--scheduler {address}: cannot reach the dask scheduler ({error})") from None


def _command_segment(args) -> int:
    from .models import load_model

    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, device="cpu" if args.scheduler else args.device)
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        return _segment_files(args, model)
    finally:
        if client is not None:
            client.close()


def _segment_files(args, model) -> int:
    failures = 0
    for path in args.inputs:
        try:
            for written in _segment_file(path, model, args):
                print(written)
        except (ValueError, TypeError, OSError, MemoryError) as error:
            failures += 1
            message = str(error)
            print(f"error: {message if message.startswith(str(path)) else f'{path}: {message}'}", file=sys.stderr)
    return EXIT_INPUT_ERROR if failures else 0


def _command_models(args) -> int:
    from .models import list_models, load_model

    for name in list_models():
        model = load_model(name, device="cpu")
        c = model.config
        print(f"{name}\t{c.arch} depth={c.depth} base_channels={c.base_channels} padding={c.padding} "
              f"parameters={model.parameter_count():,}")
    return 0


def _command_demo(args) -> int:
    from .sample_data import sample_nuclei

    image, truth = sample_nuclei()
    args.out.mkdir(parents=True, exist_ok=True)
    from .io_images import write_tiff

    image_path = write_tiff(args.out / "sample_nuclei.tif", image)
    truth_path = write_tiff(args.out / "sample_nuclei_truth.tif", truth)
    segment_args = argparse.Namespace(out=args.out, tile_size=None, batch_size=None, device=args.device,
                                      precision="fp32", prune_level=None, probabilities=False)
    from .models import load_model

    model = load_model(args.model, device=args.device)
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

    from tqdm import tqdm

    from .pretrain import PretrainRecipe, pretrain
    from .train import TrainStep, Validation

    recipe = PretrainRecipe()
    changes = {k: v for k, v in dict(iterations=args.iterations, seed=args.seed).items() if v is not None}
    train = dataclasses.replace(recipe.train, device=args.device, precision=args.precision, workers=args.workers,
                                **changes)
    recipe = dataclasses.replace(recipe, train=train)
    bar = tqdm(total=train.iterations, desc="pretrain", unit="step", disable=None, file=sys.stderr)

    def report(event) -> None:
        if isinstance(event, TrainStep):
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.loss:.3f}", refresh=False)
        elif isinstance(event, Validation):
            bar.write(f"step {event.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in event.metrics.items()))

    model = pretrain(args.out, recipe=recipe, callback=report)
    bar.close()
    print(f"wrote {args.out}: {model!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-unet", description="U-Net cell segmentation from the command line.")
    parser.add_argument("--version", action="version", version=f"napari-unet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("models", help="list the shipped models").set_defaults(run=_command_models)

    segment = commands.add_parser("segment", help="segment images into instance labels")
    segment.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files (.tif, .png, .npy)")
    segment.add_argument("--out", type=Path, required=True, help="output folder")
    segment.add_argument("--probabilities", action="store_true", help="also write <stem>_probabilities.tif")
    segment.add_argument("--scheduler", metavar="ADDRESS",
                         help="run on this dask.distributed scheduler (e.g. tcp://host:8786), chunk by chunk")
    _add_predict_options(segment)
    segment.set_defaults(run=_command_segment)

    demo = commands.add_parser("demo", help="segment the bundled sample image and score it")
    demo.add_argument("--out", type=Path, default=Path("napari-unet-demo"), help="output folder")
    demo.add_argument("--model", default="nuclei")
    demo.add_argument("--device", default="auto")
    demo.set_defaults(run=_command_demo)
    pretrain = commands.add_parser("pretrain", help="train the shipped nuclei model from synthetic data")
    pretrain.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    pretrain.add_argument("--iterations", type=_positive_int, help="optimiser steps (default: the recipe's)")
    pretrain.add_argument("--seed", type=int, help="training seed (default: the recipe's)")
    pretrain.add_argument("--device", default="auto")
    pretrain.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    pretrain.add_argument("--workers", type=int, default=0, help="background processes preparing patches")
    pretrain.set_defaults(run=_command_pretrain)
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
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
