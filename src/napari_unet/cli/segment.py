"""``napari-unet segment``, ``demo`` and ``models``: images in, labels (and a summary) out."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import SegmentConfig
from ..jobs.files import SegmentJob, expand_inputs, iter_segment_files, run_to_end, segment_file
from .common import EXIT_INPUT_ERROR, CommandError, Progress, load_model_option, output_folder


def _describe(row: dict) -> str:
    parts = [f"{row['objects']} objects"] if row.get("objects", "") != "" else []
    if row.get("diameter_px"):
        parts.append(f"diameter {row['diameter_px']} px ({row['diameter_from']})")
    if row.get("modality"):
        parts.append(row["modality"])
    if row.get("seconds"):
        parts.append(f"{row['seconds']} s")
    return f"{row['file']}: " + (", ".join(parts) or "segmented") + " -> " + ", ".join(str(p) for p in row["written"])


def segment_files(paths: list[Path], model, job: SegmentJob) -> int:
    """Segment every file with progress lines; an unusable one is one error line and does not
    stop the others. Exit code 1 when any failed."""
    from ..events import FileDone, FileFailed, FileStarted, ImageRead, Notice, TileDone

    failures, progress, name = 0, None, ""
    for event in iter_segment_files(paths, model, job):
        if isinstance(event, FileStarted):
            name = event.path.name
        elif isinstance(event, ImageRead):
            _report_read(name, event)
        elif isinstance(event, TileDone):
            progress = progress or Progress(name, event.total, "tile")
            progress.update(event.done)
        elif isinstance(event, Notice):
            line = f"warning: {name}: {event.message}"
            progress.write(line) if progress is not None else print(line, file=sys.stderr, flush=True)
        elif isinstance(event, (FileDone, FileFailed)):
            if progress is not None:
                progress.close()
                progress = None
            if isinstance(event, FileDone):
                print(_describe(event.row), flush=True)
            else:
                failures += 1
                print(f"error: {event.message}", file=sys.stderr)
    return EXIT_INPUT_ERROR if failures else 0


def _report_read(name: str, read) -> None:
    """What was decided about the image that the user did not say (an ImageRead event)."""
    if read.diameter is not None and read.estimated:
        print(f"{name}: object diameter estimated at {read.diameter:.1f} px", file=sys.stderr)
    if read.denoise > 0:
        print(f"note: {name}: smoothed with a {read.denoise:.1f} px Gaussian before the network (--denoise 0: never)",
              file=sys.stderr)


def _config(args) -> SegmentConfig:
    return SegmentConfig(diameter=args.diameter, channel=args.channel, invert=args.invert, axes=args.axes,
                         tile_size=args.tile_size, batch_size=args.batch_size,
                         device="cpu" if args.scheduler else args.device, precision=args.precision,
                         prune_level=args.prune_level, flips=args.flips, min_size=args.min_size,
                         threshold=args.threshold, foreground=args.foreground, split_depth=args.split_depth,
                         seeds=args.seeds, stitch=args.stitch, z_labelling=args.z_labelling, z_step=args.z_step,
                         denoise=args.denoise)


def _precision_notice(config: SegmentConfig) -> None:
    from ..devices import precision_notice, resolve_device

    notice = precision_notice(config.precision, resolve_device(config.device))
    if notice:
        print(f"note: --precision {config.precision}: {notice}", file=sys.stderr)


def _check_labels_format(args) -> None:
    """OME-Zarr output: zarr is installed, and no option needs the labels in memory."""
    import importlib.util

    if args.labels_format != "ome-zarr":
        return
    if args.save_rois or args.save_outlines:
        raise CommandError("--save-rois and --save-outlines need the labels in memory: use them with "
                           "--labels-format tif")
    if importlib.util.find_spec("zarr") is None:
        from ..io import ZARR_EXTRA

        raise CommandError(f"--labels-format ome-zarr needs the zarr package: {ZARR_EXTRA}")


def command_segment(args) -> int:
    _check_labels_format(args)
    config = _config(args)
    model = load_model_option(args.model, config.device, args.prune_level)
    paths = expand_inputs(args.inputs)
    if not paths:
        raise CommandError("no input images: the folders and patterns given match no image file")
    _precision_notice(config)
    job = SegmentJob(out=output_folder(args.out), config=config, probabilities=args.probabilities,
                     overwrite=args.overwrite, scheduler=args.scheduler, rois=args.save_rois,
                     outlines=args.save_outlines, labels_format=args.labels_format)
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        return segment_files(paths, model, job)
    finally:
        if client is not None:
            client.close()


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise CommandError("--scheduler needs dask.distributed: pip install 'napari-unet[distributed]'") from None
    try:
        return Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as error:
        raise CommandError(f"--scheduler {address}: cannot reach the dask scheduler ({error})") from None


def command_models(args) -> int:
    from ..models import list_models, load_model

    if not list_models():
        print("no shipped models are installed; pass a .safetensors file to --model", file=sys.stderr)
    for name in list_models():
        model = load_model(name, device="cpu")
        c = model.config
        diameter = f" diameter={model.diameter:g}px" if model.diameter else ""
        print(f"{name}\t{c.arch} depth={c.depth} base_channels={c.base_channels} in_channels={c.in_channels} "
              f"padding={c.padding}{diameter} parameters={model.parameter_count():,}")
    return 0


def command_demo(args) -> int:
    from ..io import read_image, write_tiff
    from ..metrics import evaluate
    from ..sample_data import sample_nuclei

    model = load_model_option(args.model, args.device)
    image, truth = sample_nuclei()
    out = output_folder(args.out)
    image_path = write_tiff(out / "sample_nuclei.tif", image)
    truth_path = write_tiff(out / "sample_nuclei_truth.tif", truth)
    job = SegmentJob(out=out, config=SegmentConfig(device=args.device), overwrite=True)
    row = run_to_end(segment_file(image_path, model, job))
    labels_path = row["written"][0]
    scores = evaluate(read_image(labels_path), truth)
    print(f"sample image: {image_path} ({image.shape[0]}x{image.shape[1]}), ground truth: {truth_path}")
    print(f"labels: {labels_path} ({int(scores['n_pred'])} cells found, {int(scores['n_truth'])} in the ground truth)")
    print(f"AP@0.5 = {scores['ap50']:.3f}   AP@0.75 = {scores['ap75']:.3f}   IoU = {scores['iou']:.3f}")
    print(f'view it: pip install "napari-unet[napari]", then: napari {image_path} {labels_path}')
    return 0
