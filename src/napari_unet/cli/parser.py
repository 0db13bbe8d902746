"""The ``napari-unet`` command line: every option declared here, with its help text.

The commands themselves live in :mod:`.segment` and :mod:`.train`; this module only says
what can be typed and what it means.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..config import PRECISIONS, SEEDS, SegmentConfig, TrainConfig
from ..jobs.files import LABEL_FORMATS
from ..jobs.finetune import DEFAULT_MINUTES
from .common import non_negative_float, positive_float, positive_int
from .export import command_export
from .segment import command_demo, command_models, command_segment
from .train import InOrder, command_evaluate, command_finetune, command_pretrain, command_weights

DEVICE_HELP = "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps (default: auto)"
PRECISION_HELP = ("autocast precision: auto = bf16 where the hardware runs it natively (recent GPUs, CPUs "
                  "with AVX-512 BF16 or AMX; about 3x faster, labels agree with fp32 at IoU 0.999), else fp32")


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--diameter", type=positive_float,
                        help="typical object diameter in pixels; images are rescaled so objects match the "
                             "model (default: estimated from each image)")
    parser.add_argument("--channel", type=int,
                        help="channel to segment of a multi-channel image, counted from 0 (default: the one the "
                             "model is most confident in)")
    polarity = parser.add_mutually_exclusive_group()
    polarity.add_argument("--invert", dest="invert", action="store_const", const=True,
                          help="dark objects on a bright background (brightfield, stained): invert intensities")
    polarity.add_argument("--no-invert", dest="invert", action="store_const", const=False,
                          help="bright objects on a dark background (fluorescence): never invert "
                               "(default: detected from the image)")
    parser.add_argument("--axes", help="axis letters of the images, e.g. YX, YXC (RGB), CYX, ZYX, TYX, ZCYX "
                                       "(default: guessed from the shape and reported)")
    parser.add_argument("--denoise", type=non_negative_float, metavar="SIGMA",
                        help="smooth the planes (and a Z stack across its planes) with a Gaussian of SIGMA pixels "
                             "before the network; 0: never (default: only very noisy images, by their noise)")


def _add_predict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="nuclei", help="shipped model name or .safetensors file (default: nuclei)")
    parser.add_argument("--tile-size", type=positive_int,
                        help="output pixels per tile edge (default: from the free memory)")
    parser.add_argument("--batch-size", type=positive_int, help="tiles per forward pass (default: from the free memory)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    parser.add_argument("--prune-level", type=positive_int,
                        help="UNet++ trained with deep supervision: run only the sub-network of this level "
                             "(1 is fastest)")
    parser.add_argument("--flips", action="store_true",
                        help="test-time augmentation: average the predictions of each tile and its three mirror "
                             "images (4x the compute)")


def _add_segment_parser(commands) -> None:
    default = SegmentConfig()
    segment = commands.add_parser("segment", help="segment images into instance labels",
                                  description="Segment images into instance labels, one <name>_labels.tif per "
                                              "image, and a summary.csv of every input in --out.")
    segment.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                         help="image files (.tif and OME-TIFF, .png, .jpg, .bmp, .npy; OME-Zarr folders with "
                              "napari-unet[zarr]; .czi, .nd2, .lif with napari-unet[formats]), folders of them, or "
                              "quoted patterns such as 'data/*.tif'")
    segment.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    segment.add_argument("--overwrite", action="store_true",
                         help="replace results already in --out (default: refuse and report those images)")
    segment.add_argument("--probabilities", action="store_true",
                         help="also write <name>_probabilities.tif (background, interior, boundary)")
    segment.add_argument("--save-rois", action="store_true",
                         help="also write <name>_rois.zip, an ImageJ ROI set of the outlines (Fiji: ROI Manager > "
                              "More > Open, or drag the file onto Fiji)")
    segment.add_argument("--save-outlines", action="store_true",
                         help="also write <name>_outlines.txt: one line per cell (and plane), 'label: x1,y1,x2,y2,...'")
    segment.add_argument("--no-stitch", dest="stitch", action="store_false",
                         help="label every plane of a Z stack on its own (default: 3-D objects; time series "
                              "are always labelled frame by frame)")
    segment.add_argument("--z-labelling", choices=("volume", "link"), default="volume",
                         help="how a Z stack's 3-D objects are made: its planes' probabilities labelled as one "
                              "volume (default), or each plane's cells linked to the next plane's by overlap")
    segment.add_argument("--z-step", type=positive_float,
                         help="z spacing of a stack in pixels of its planes (voxel depth / pixel width; default: "
                              "the file's voxel size, else 1)")
    segment.add_argument("--min-size", type=int, help="remove objects smaller than this many pixels "
                                                       "(default: the model's calibrated size at its scale)")
    segment.add_argument("--threshold", type=float,
                         help="interior probability threshold: the seeds of the cells (default: the model's "
                              "calibrated value)")
    segment.add_argument("--foreground", type=float,
                         help="foreground probability threshold: higher draws cells tighter (default: the model's "
                              "calibrated value)")
    segment.add_argument("--split-depth", type=float,
                         help="pixels (at the model's scale) by which the neck between two touching cells must be "
                              "thinner than the smaller cell to split them: larger merges more (default: the "
                              "model's calibrated value)")
    segment.add_argument("--seeds", choices=SEEDS, default=default.seeds,
                         help="how touching cells are split: distance (at the neck between them, the default) "
                              "or interior (only along a predicted boundary; for rods and filaments)")
    segment.add_argument("--labels-format", choices=LABEL_FORMATS, default="tif",
                         help="tif: one <name>_labels.tif (the default); ome-zarr: <name>_labels.ome.zarr written "
                              "chunk by chunk for images larger than memory (ids unique per plane, not sequential; "
                              "needs napari-unet[zarr])")
    segment.add_argument("--scheduler", metavar="ADDRESS",
                         help="run on this dask.distributed scheduler (e.g. tcp://host:8786), chunk by chunk")
    _add_image_options(segment)
    _add_predict_options(segment)
    segment.set_defaults(run=command_segment)


def _add_finetune_parser(commands) -> None:
    default = TrainConfig()
    finetune = commands.add_parser(
        "finetune", help="fine-tune a model on annotated images",
        description="Fine-tune a model on annotated images and write it as one .safetensors file. "
                    "Labels: 0 = background, k > 0 = cell k. Without --region the whole image counts as "
                    "annotated (unlabelled pixels are background); with --region only the rectangles are "
                    "learned from and everything outside them is ignored.")
    finetune.add_argument("--image", dest="training", action=InOrder, required=True, metavar="IMAGE",
                          help="training image (repeat for several images)")
    finetune.add_argument("--labels", action="append", type=Path, required=True, metavar="LABELS",
                          help="instance labels of the image given at the same position (one per --image)")
    finetune.add_argument("--region", dest="training", action=InOrder, metavar="Y0:Y1,X0:X1",
                          help="annotated rectangle of the PRECEDING --image, pixels, ends exclusive "
                               "(repeatable; default: the whole image)")
    finetune.add_argument("--model", default="nuclei",
                          help="starting model: shipped name or .safetensors file (default: nuclei)")
    finetune.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    finetune.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    finetune.add_argument("--keep-collapsed", action="store_true",
                          help="write the model even if it finds none of its own annotated cells (by default such "
                               "a collapsed model is refused)")
    finetune.add_argument("--minutes", type=positive_float,
                          help=f"time budget: train for this many minutes (default: {DEFAULT_MINUTES:g} when "
                               "--iterations is not given either)")
    finetune.add_argument("--iterations", type=positive_int,
                          help="optimiser steps: exactly this many, or at most this many within --minutes")
    finetune.add_argument("--learning-rate", type=float,
                          help=f"peak learning rate (default: {default.learning_rate:g})")
    finetune.add_argument("--anchor", type=float,
                          help="pull toward the starting model's weights after every step, so a few cells adapt "
                               "it without making it forget (0: none; default: "
                               f"{default.anchor:g})")
    finetune.add_argument("--holdout", type=float, metavar="SHARE",
                          help="share of the annotated cells held out to check that fine-tuning helps: scored for "
                               "the starting model and as training goes on, the best weights kept (0 to 0.5; 0: no "
                               f"check; default: {default.holdout:g}, when at least 6 cells are annotated)")
    finetune.add_argument("--keep-worse", action="store_true",
                          help="write the fine-tuned model even when it scores below the starting model on the "
                               "held-out cells (by default nothing is written then)")
    finetune.add_argument("--batch-size", type=positive_int, help=f"patches per step (default: {default.batch_size})")
    finetune.add_argument("--patch-size", type=positive_int,
                          help=f"output pixels per patch edge (default: {default.patch_size})")
    finetune.add_argument("--seed", type=int, help=f"seed of sampling and augmentation (default: {default.seed})")
    finetune.add_argument("--device", default="auto", help=DEVICE_HELP)
    finetune.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    finetune.set_defaults(run=command_finetune)


def _add_other_parsers(commands) -> None:
    default = TrainConfig()
    evaluate = commands.add_parser("evaluate", help="score predicted labels against ground-truth labels")
    evaluate.add_argument("pred", type=Path, metavar="PRED", help="predicted instance labels (.tif, .png, .npy)")
    evaluate.add_argument("truth", type=Path, metavar="TRUTH", help="ground-truth instance labels")
    evaluate.add_argument("--json", action="store_true", help="print all scores as one JSON object")
    evaluate.set_defaults(run=command_evaluate)

    weights = commands.add_parser("weights", help="write the training weight map of a labels image (U-Net eq. 2)")
    weights.add_argument("labels", type=Path, metavar="LABELS", help="instance labels, 0 = background")
    weights.add_argument("--out", type=Path, required=True, help="weight map to write (.tif, float32)")
    weights.add_argument("--w0", type=float, default=default.w0,
                         help=f"height of the border term (default: {default.w0:g})")
    weights.add_argument("--sigma", type=float, default=default.sigma,
                         help=f"width of the border term in pixels (default: {default.sigma:g})")
    weights.add_argument("--region", action="append", metavar="Y0:Y1,X0:X1",
                         help="annotated rectangle (repeatable); weights are 0 outside")
    weights.set_defaults(run=command_weights)

    commands.add_parser("models", help="list the shipped models").set_defaults(run=command_models)

    demo = commands.add_parser("demo", help="segment the bundled sample image and score it")
    demo.add_argument("--out", type=Path, default=Path("napari-unet-demo"), help="output folder")
    demo.add_argument("--model", default="nuclei", help="shipped model name or .safetensors file (default: nuclei)")
    demo.add_argument("--device", default="auto", help=DEVICE_HELP)
    demo.set_defaults(run=command_demo)


def _add_pretrain_parser(commands) -> None:
    pretrain = commands.add_parser("pretrain", help="train the shipped nuclei model from annotated and synthetic data")
    pretrain.add_argument("--data", type=Path, required=True, action="append",
                          help="annotated folder (images/, masks/, index.csv), e.g. DSB2018 or one that "
                               "benchmarks/data/build_*.py wrote (repeat for several; val and test splits are "
                               "never read)")
    pretrain.add_argument("--recipe", choices=("nuclei", "cells"), default="nuclei",
                          help="which shipped model to train: nuclei (the default; nucleus masks) or cells (whole-cell "
                               "masks, working at 30 px cells); only the folders' images of that target are read")
    pretrain.add_argument("--exclude", action="append", metavar="SOURCE[/GROUP]",
                          help="never read this source or group of a source (kept whole for a leave-source-out "
                               "evaluation; repeatable)")
    pretrain.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    pretrain.add_argument("--iterations", type=positive_int, help="optimiser steps (default: the recipe's)")
    pretrain.add_argument("--init", type=Path, help="go on from this model file's weights (e.g. the best checkpoint "
                                                     "of an interrupted run) with a new schedule of --iterations steps")
    pretrain.add_argument("--learning-rate", type=positive_float,
                          help="peak learning rate of the schedule (default: the recipe's, 2e-3; lower it to "
                               "go on from a checkpoint with --init)")
    pretrain.add_argument("--seed", type=int, help="training seed (default: the recipe's)")
    pretrain.add_argument("--minutes", type=positive_float,
                          help="time budget of the optimisation: the learning-rate schedule follows the clock and "
                               "--iterations (default then: no cap) only caps it; reading the data and the final "
                               "calibration come on top (for a GPU lent for a few minutes)")
    pretrain.add_argument("--batch-size", type=positive_int,
                          help="patches per step (default: the recipe's, 4; raise it on a GPU)")
    pretrain.add_argument("--patch-size", type=positive_int,
                          help="output pixels per patch edge (default: the recipe's, 192; larger patches waste less "
                               "of each step on the context valid convolutions need)")
    pretrain.add_argument("--shares", metavar="GROUP=SHARE,...",
                          help="share of the patches drawn from each group of images: fluorescence, stained, "
                               "brightfield, synthetic (default: 0.4, 0.2, 0.1, 0.3; groups left out keep theirs)")
    pretrain.add_argument("--device", default="auto", help=DEVICE_HELP)
    pretrain.add_argument("--precision", choices=PRECISIONS, help="autocast precision (default: the recipe's, bf16)")
    pretrain.add_argument("--workers", type=int, default=0,
                          help="background processes preparing patches (default: 0, in the training process)")
    pretrain.set_defaults(run=command_pretrain)


def _add_export_parser(commands) -> None:
    export = commands.add_parser(
        "export", help="write a model as a bioimage.io package (Fiji/deepImageJ, ilastik, bioimage.io)",
        description="Write a model as a bioimage.io model package (spec 0.5): pytorch_state_dict and torchscript "
                    "weights, test tensors, pre-processing and a model card. napari-unet loads it back with "
                    "--model NAME.zip. See docs/interoperability.md.")
    export.add_argument("model", metavar="MODEL", help="shipped model name or .safetensors file")
    export.add_argument("--out", type=Path, required=True, help="package to write (NAME.zip)")
    export.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    export.add_argument("--name", help="package name (default: the model's name)")
    export.add_argument("--description", help="one sentence on what the model segments (default: a generic one)")
    export.add_argument("--author", action="append", metavar="NAME",
                        help="a person who made the model (repeatable; bioimage.io asks for one before upload)")
    export.add_argument("--license", default="BSD-3-Clause",
                        help="SPDX identifier of the weights' licence (default: BSD-3-Clause, napari-unet's)")
    export.add_argument("--test-image", type=Path, metavar="IMAGE",
                        help="(Y, X) or RGB image whose middle becomes the package's test input (default: the "
                             "bundled sample image)")
    export.set_defaults(run=command_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-unet", description="U-Net cell segmentation from the command line.")
    parser.add_argument("--version", action="version", version=f"napari-unet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_segment_parser(commands)
    _add_finetune_parser(commands)
    _add_other_parsers(commands)
    _add_pretrain_parser(commands)
    _add_export_parser(commands)
    return parser
