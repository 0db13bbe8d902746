"""``napari-unet segment``, ``demo`` and ``models``: images in, labels (and a summary) out."""

from __future__ import annotations

import csv
import dataclasses
import glob
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config import SegmentConfig
from ..io import SUPPORTED_SUFFIXES, one_line_message, output_stem
from .common import EXIT_INPUT_ERROR, CommandError, Progress, load_model_option, output_folder

SUMMARY = "summary.csv"
SUMMARY_FIELDS = ("file", "status", "objects", "diameter_px", "diameter_from", "modality", "axes", "seconds",
                  "labels")
# how labels (and probabilities) are written: one TIFF in memory, or OME-Zarr chunk by chunk
LABEL_FORMATS = ("tif", "ome-zarr")


@dataclass(frozen=True)
class SegmentJob:
    """What ``segment`` (and ``demo``) do with every input file."""

    out: Path
    config: SegmentConfig
    probabilities: bool = False
    overwrite: bool = False
    scheduler: str | None = None
    rois: bool = False
    outlines: bool = False
    labels_format: str = "tif"


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files named, the images in folders named (sorted, not recursive) and quoted globs.

    An OME-Zarr folder is one image, never a folder of images."""
    from ..io import is_zarr_folder
    from ..io import is_image_path

    paths: list[Path] = []
    for item in inputs:
        text = str(item)
        if item.is_dir() and not is_zarr_folder(item):
            images = sorted(p for p in item.iterdir() if is_image_path(p))
            paths.extend(images or [item])  # an empty folder is reported, not skipped silently
        elif not item.exists() and glob.has_magic(text):
            matched = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file() or is_zarr_folder(p))
            paths.extend(matched if matched else [item])
        else:
            paths.append(item)
    return paths


def _outputs(path: Path, job: SegmentJob) -> list[Path]:
    stem = output_stem(path)
    kind = ".ome.zarr" if job.labels_format == "ome-zarr" else ".tif"
    names = [f"{stem}_labels{kind}"] + ([f"{stem}_probabilities{kind}"] if job.probabilities else [])
    names += ([f"{stem}_rois.zip"] if job.rois else []) + ([f"{stem}_outlines.txt"] if job.outlines else [])
    return [job.out / name for name in names]


def _segment(image, model, job: SegmentJob, name: str):
    """(labels, probabilities or None, SegmentDone) of one image, with progress output."""
    import numpy as np

    from ..events import ImageRead, PlaneDone, SegmentDone, TileDone
    from ..inference.segment import iter_segment, predict_probabilities

    progress, done, planes = None, None, []
    try:
        for event in iter_segment(image, model, job.config, keep_probabilities=job.probabilities):
            if isinstance(event, ImageRead) and event.diameter is not None and event.estimated:
                print(f"{name}: object diameter estimated at {event.diameter:.1f} px", file=sys.stderr)
            elif isinstance(event, TileDone):
                progress = progress or Progress(name, event.total, "tile")
                progress.update(event.done)
            elif isinstance(event, PlaneDone):
                planes.append(event.probabilities)
            elif isinstance(event, SegmentDone):
                done = event
    finally:
        if progress is not None:
            progress.close()
    probabilities = None
    if job.probabilities and any(p is None for p in planes):
        # planes segmented chunk by chunk keep no probabilities: predict them on their own
        read = done.read
        probabilities = predict_probabilities(image, model, job.config.replace(diameter=read.diameter,
                                                                                 channel=read.channel))
    elif job.probabilities:
        probabilities = np.stack(planes, axis=1) if done.labels.ndim == 3 else planes[0]
    return done.labels, probabilities, done


def _segment_on_cluster(image, model, job: SegmentJob):
    import dask

    from ..inference.chunked import predict_lazy, segment_lazy
    from ..inference.labels import sequential_labels, stack_planes

    labels = segment_lazy(image, model, job.config)
    if job.probabilities:
        labels, probabilities = dask.compute(labels, predict_lazy(image, model, job.config))
    else:
        labels, probabilities = labels.compute(), None
    planes = [sequential_labels(plane) for plane in labels] if labels.ndim == 3 else None
    return (stack_planes(planes) if planes else sequential_labels(labels)), probabilities


def segment_file(path: Path, model, job: SegmentJob) -> dict:
    """Segment one file into ``job.out``; returns its summary row. Raises for unusable input."""
    from ..io import is_zarr_folder
    from ..io import read_image_file, write_tiff

    if path.is_dir() and not is_zarr_folder(path):
        raise ValueError(f"{path}: a folder with no image files ({', '.join(SUPPORTED_SUFFIXES)}, OME-Zarr, ...)")
    outputs = _outputs(path, job)
    existing = [p for p in outputs if p.exists()]
    if existing and not job.overwrite:
        raise ValueError(f"{existing[0]} exists; pass --overwrite to replace it")
    file = read_image_file(path)
    image = file.data
    # the axes the file declares (OME-TIFF, ImageJ, OME-Zarr, CZI, ...) unless --axes says otherwise
    job = dataclasses.replace(job, config=job.config if job.config.axes else job.config.replace(axes=file.axes))
    row = {"file": str(path), "status": "ok", "labels": str(outputs[0])}
    if job.labels_format == "ome-zarr":
        return row | _segment_to_zarr(file, model, job, outputs)
    if job.scheduler:
        labels, probabilities = _segment_on_cluster(image, model, job)
        row.update(objects=int(labels.max()) if labels.ndim == 2 else "")
    else:
        labels, probabilities, done = _segment(image, model, job, path.name)
        read = done.read
        row.update(objects=done.objects, seconds=f"{done.seconds:.2f}", modality=read.modality, axes=read.axes,
                   diameter_px="" if read.diameter is None else f"{read.diameter:.1f}",
                   diameter_from="" if read.diameter is None else ("estimated" if read.estimated else "given"))
    write_tiff(outputs[0], labels)
    if probabilities is not None:
        write_tiff(outputs[1], probabilities)
    _write_outlines(labels, outputs, job)
    row["written"] = outputs
    return row


def _segment_to_zarr(file, model, job: SegmentJob, outputs: list[Path]) -> dict:
    """Labels (and probabilities) written as OME-Zarr chunk by chunk: the image is never whole in memory.

    Ids are unique per plane but not sequential, and Z planes are labelled one by one
    (:func:`napari_unet.segment_lazy`)."""
    from ..io import write_ome_zarr
    from ..inference.chunked import predict_lazy, segment_lazy
    from ..inference.layout import describe_image

    layout = describe_image(file.data, axes=job.config.axes)
    axes = (layout.stack_axis or "") + "YX"
    write_ome_zarr(outputs[0], segment_lazy(file.data, model, job.config), axes, pixel_size=file.pixel_size,
                   labels=True, chunk_size=job.config.chunk_size)
    if job.probabilities:
        write_ome_zarr(outputs[1], predict_lazy(file.data, model, job.config), "C" + axes,
                       pixel_size=file.pixel_size, chunk_size=job.config.chunk_size)
    return {"objects": "", "axes": layout.axes, "written": outputs}


def _write_outlines(labels, outputs: list[Path], job: SegmentJob) -> None:
    from ..io import write_imagej_rois, write_outline_text

    for path in outputs:
        if path.name.endswith("_rois.zip"):
            write_imagej_rois(path, labels)
        elif path.name.endswith("_outlines.txt"):
            write_outline_text(path, labels)


def _describe(row: dict) -> str:
    parts = [f"{row['objects']} objects"] if row.get("objects", "") != "" else []
    if row.get("diameter_px"):
        parts.append(f"diameter {row['diameter_px']} px ({row['diameter_from']})")
    if row.get("modality"):
        parts.append(row["modality"])
    if row.get("seconds"):
        parts.append(f"{row['seconds']} s")
    return f"{row['file']}: " + (", ".join(parts) or "segmented") + " -> " + ", ".join(str(p) for p in row["written"])


def write_summary(out: Path, rows: list[dict]) -> Path:
    from ..io import atomic_write

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(out / SUMMARY, write)


def segment_files(paths: list[Path], model, job: SegmentJob) -> int:
    """Segment every file; an unusable one is one error line and does not stop the others."""
    failures, claimed, rows = 0, {}, []
    for path in paths:
        try:
            stem = output_stem(path)
            if stem in claimed:
                raise ValueError(f"its results would overwrite those of {claimed[stem]} "
                                 f"({job.out / stem}_labels.tif); segment it into another --out folder")
            row = segment_file(path, model, job)
            claimed[stem] = path
            rows.append(row)
            print(_describe(row), flush=True)
        except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as error:
            failures += 1
            message = one_line_message(error)
            message = message if message.startswith(str(path)) else f"{path}: {message}"
            rows.append({"file": str(path), "status": f"error: {message}"})
            print(f"error: {message}", file=sys.stderr)
    write_summary(job.out, rows)
    return EXIT_INPUT_ERROR if failures else 0


def _config(args) -> SegmentConfig:
    return SegmentConfig(diameter=args.diameter, channel=args.channel, invert=args.invert, axes=args.axes,
                         tile_size=args.tile_size, batch_size=args.batch_size,
                         device="cpu" if args.scheduler else args.device, precision=args.precision,
                         prune_level=args.prune_level, flips=args.flips, min_size=args.min_size,
                         threshold=args.threshold, foreground=args.foreground, split_depth=args.split_depth,
                         seeds=args.seeds, stitch=args.stitch)


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
    row = segment_file(image_path, model, job)
    labels_path = row["written"][0]
    scores = evaluate(read_image(labels_path), truth)
    print(f"sample image: {image_path} ({image.shape[0]}x{image.shape[1]}), ground truth: {truth_path}")
    print(f"labels: {labels_path} ({int(scores['n_pred'])} cells found, {int(scores['n_truth'])} in the ground truth)")
    print(f"AP@0.5 = {scores['ap50']:.3f}   AP@0.75 = {scores['ap75']:.3f}   IoU = {scores['iou']:.3f}")
    print(f'view it: pip install "napari-unet[napari]", then: napari {image_path} {labels_path}')
    return 0
