"""Segment image files into their outputs: which files a folder or pattern names, what the
results are called, the summary row of every input, and the files written.

The command line maps its options to a :class:`SegmentJob` and turns the events of
:func:`iter_segment_files` into progress lines; nothing here parses options or prints.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import SegmentConfig
from ..events import FileDone, FileFailed, FileStarted, PlaneDone, SegmentDone
from ..io import (SUPPORTED_SUFFIXES, atomic_write, is_image_path, is_zarr_folder, one_line_message, output_stem,
                  read_image_file, write_imagej_rois, write_ome_zarr, write_outline_text, write_tiff)

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


def output_paths(path: Path, job: SegmentJob) -> list[Path]:
    stem = output_stem(path)
    kind = ".ome.zarr" if job.labels_format == "ome-zarr" else ".tif"
    names = [f"{stem}_labels{kind}"] + ([f"{stem}_probabilities{kind}"] if job.probabilities else [])
    names += ([f"{stem}_rois.zip"] if job.rois else []) + ([f"{stem}_outlines.txt"] if job.outlines else [])
    return [job.out / name for name in names]


def with_file_z_step(config, pixel_size: dict | None):
    """``config`` with the z step of the file's voxel size (Z over X) unless one is given."""
    if config.z_step is not None or not pixel_size or not pixel_size.get("Z") or not pixel_size.get("X"):
        return config
    return config.replace(z_step=float(pixel_size["Z"]) / float(pixel_size["X"]))


def _segment(image, model, job: SegmentJob):
    """Events of one image (forwarded); returns (labels, probabilities or None, SegmentDone)."""
    from ..inference.segment import iter_segment

    done, planes = None, []
    for event in iter_segment(image, model, job.config, keep_probabilities=job.probabilities):
        if isinstance(event, PlaneDone):
            planes.append(event.probabilities)
        elif isinstance(event, SegmentDone):
            done = event
            continue
        yield event
    probabilities = None
    if job.probabilities:
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


def segment_file(path: Path, model, job: SegmentJob):
    """Segment one file into ``job.out``, yielding the segmentation's events; returns its
    summary row (``row["written"]``: the files written). Raises for unusable input."""
    if path.is_dir() and not is_zarr_folder(path):
        raise ValueError(f"{path}: a folder with no image files ({', '.join(SUPPORTED_SUFFIXES)}, OME-Zarr, ...)")
    outputs = output_paths(path, job)
    existing = [p for p in outputs if p.exists()]
    if existing and not job.overwrite:
        raise ValueError(f"{existing[0]} exists; pass --overwrite to replace it")
    file = read_image_file(path)
    image = file.data
    # the axes the file declares (OME-TIFF, ImageJ, OME-Zarr, CZI, ...) unless --axes says otherwise
    config = job.config if job.config.axes else job.config.replace(axes=file.axes)
    job = dataclasses.replace(job, config=with_file_z_step(config, file.pixel_size))
    row = {"file": str(path), "status": "ok", "labels": str(outputs[0])}
    if job.labels_format == "ome-zarr":
        return row | _segment_to_zarr(file, model, job, outputs)
    if job.scheduler:
        labels, probabilities = _segment_on_cluster(image, model, job)
        row.update(objects=int(labels.max()) if labels.ndim == 2 else "")
    else:
        labels, probabilities, done = yield from _segment(image, model, job)
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
    for path in outputs:
        if path.name.endswith("_rois.zip"):
            write_imagej_rois(path, labels)
        elif path.name.endswith("_outlines.txt"):
            write_outline_text(path, labels)


def write_summary(out: Path, rows: list[dict]) -> Path:
    def write(temporary: str) -> None:
        with open(temporary, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(out / SUMMARY, write)


def iter_segment_files(paths: list[Path], model, job: SegmentJob):
    """Segment every file, yielding a :class:`FileStarted`, the segmentation's events and a
    :class:`FileDone` (its summary row) per file; an unusable file is a :class:`FileFailed`
    and does not stop the others. The summary of all of them is written to ``job.out`` last."""
    claimed, rows = {}, []
    for index, path in enumerate(paths):
        yield FileStarted(path=path, index=index, total=len(paths))
        try:
            stem = output_stem(path)
            if stem in claimed:
                raise ValueError(f"its results would overwrite those of {claimed[stem]} "
                                 f"({job.out / stem}_labels.tif); segment it into another --out folder")
            row = yield from segment_file(path, model, job)
            claimed[stem] = path
            rows.append(row)
            yield FileDone(path=path, row=row)
        except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as error:
            message = one_line_message(error)
            message = message if message.startswith(str(path)) else f"{path}: {message}"
            rows.append({"file": str(path), "status": f"error: {message}"})
            yield FileFailed(path=path, message=message)
    write_summary(job.out, rows)


def run_to_end(events):
    """Drain a generator of events and return what it returns (e.g. :func:`segment_file`'s row)."""
    while True:
        try:
            next(events)
        except StopIteration as stop:
            return stop.value
