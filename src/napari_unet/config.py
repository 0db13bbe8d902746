"""Typed configuration shared by the API, the command line, the widgets and model files.

Every option lives here once, as a frozen dataclass with its default: ``ModelConfig`` and
``Normalization`` (stored in model files, so a saved model rebuilds itself exactly),
``PredictConfig`` / ``SegmentConfig`` (every prediction entry point) and ``TrainConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .checks import (check_axes, check_bool, check_channel, check_choice, check_non_negative_number,
                     check_open_probability, check_positive_int, check_positive_number)

PADDINGS = ("valid", "same")
UPSAMPLINGS = ("transpose", "bilinear")
# "auto" is resolved per device by napari_unet.devices.resolve_precision
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CLASS_NAMES = ("background", "interior", "boundary")
SEEDS = ("distance", "interior")
Z_LABELLINGS = ("volume", "link")
TRAINABLE = ("all", "decoder", "normalisation")
# axis letters an image may be described with (napari_unet.inference.layout)
AXES_LETTERS = "TZCYX"


class _Replaceable:
    """``replace(**changes)`` that names an unknown option instead of a bare TypeError."""

    def replace(self, **changes):
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown {type(self).__name__} option(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a segmentation network.

    Parameters
    ----------
    arch : str
        A name of :data:`napari_unet.models.registry.ARCHITECTURES`: "unet" (Ronneberger et
        al. 2015) or "unetplusplus" (Zhou et al. 2018); checked when the network is built.
    depth : int
        Number of 2x2 poolings (the paper uses 4).
    base_channels : int
        Channels of the first level; doubled at every level.
    in_channels : int
        Image channels the network reads.
    out_channels : int
        Classes of the per-pixel softmax.
    padding : {"valid", "same"}
        "valid" (unpadded) convolutions as in the paper, or zero-padded "same" ones.
    upsampling : {"transpose", "bilinear"}
        Learned 2x2 transposed convolution, or bilinear interpolation and a 1x1 convolution.
    batch_norm : bool
        Batch normalisation after every 3x3 convolution.
    dropout : float
        Drop-out probability at the end of the contracting path.
    deep_supervision : bool
        UNet++ only: one output head per nested decoder column.
    """

    arch: str = "unet"
    depth: int = 4
    base_channels: int = 32
    in_channels: int = 1
    out_channels: int = len(CLASS_NAMES)
    padding: str = "valid"
    upsampling: str = "transpose"
    batch_norm: bool = True
    dropout: float = 0.0
    deep_supervision: bool = False

    def __post_init__(self):
        if not isinstance(self.arch, str) or not self.arch:
            raise ValueError(f"arch must be an architecture name, got {self.arch!r}")
        for name in ("depth", "base_channels", "in_channels", "out_channels"):
            check_positive_int(name, getattr(self, name), minimum=2 if name == "out_channels" else 1)
        check_choice("padding", self.padding, PADDINGS)
        check_choice("upsampling", self.upsampling, UPSAMPLINGS)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


@dataclass(frozen=True)
class Normalization:
    """How raw intensities are mapped to network input, once per image or plane.

    ``low`` and ``high`` percentiles map to 0 and 1 (values outside are kept, not clipped).
    """

    kind: str = "percentile"
    low: float = 1.0
    high: float = 99.8

    def __post_init__(self):
        check_choice("normalization kind", self.kind, ("percentile",))
        if not 0.0 <= self.low < self.high <= 100.0:
            raise ValueError(
                f"normalization percentiles need 0 <= low < high <= 100, got low={self.low}, high={self.high}"
            )


@dataclass(frozen=True)
class Labelling:
    """How a model's class probabilities become instance labels: stored in model files,
    calibrated on held-out images (:func:`napari_unet.training.calibrate.calibrate_labelling`).

    Parameters
    ----------
    threshold : float
        Interior probability threshold in (0, 1): the seeds of the cells.
    foreground : float
        Foreground probability threshold in (0, 1): higher draws cells tighter (a
        class-balanced loss makes 0.5 draw them too large).
    split_depth : float
        Pixels (at the model's scale) by which the narrowest part between two cells must be
        thinner than the smaller cell for them to be split (``seeds="distance"``): larger
        merges more.
    min_size : int
        Objects with fewer pixels at the model's scale are removed.
    """

    threshold: float = 0.5
    foreground: float = 0.5
    split_depth: float = 1.0
    min_size: int = 15

    def __post_init__(self):
        check_open_probability("threshold", self.threshold)
        check_open_probability("foreground", self.foreground)
        check_positive_number("split_depth", self.split_depth)
        check_positive_int("min_size", self.min_size, minimum=0)


@dataclass(frozen=True)
class PredictConfig(_Replaceable):
    """How images are read and predicted: the options of every prediction entry point.

    Parameters
    ----------
    diameter : float, optional
        Typical object diameter in the input's pixels. The image is rescaled so objects
        have the model's working diameter. None: estimated from the image (models with a
        working diameter), or no rescaling (models without one).
    channel : int or tuple of int, optional
        Channel to segment of a multi-channel image (axis "C"), or several channels in the
        order the model reads them (e.g. ``(1, 0)``: cytoplasm, nucleus). None: the model's
        own channels (a model fine-tuned on several channels), else the one channel the model
        is most confident in.
    invert : bool, optional
        Negate intensities (dark objects on a bright background). None: detected.
    axes : str, optional
        Axis letters of the input, e.g. "YX", "YXC" (RGB), "CYX", "ZYX", "TYX", "ZCYX".
        None: guessed from the shape (see :func:`napari_unet.inference.layout.describe_image`).
    tile_size : int, optional
        Output pixels per tile edge (rounded up to the network alignment); None: from the
        free memory.
    batch_size : int, optional
        Tiles per forward pass; None: from the free memory.
    device : str
        "auto" (CUDA, MPS, CPU), "cpu", "cuda", "cuda:N" or "mps".
    precision : {"auto", "fp32", "bf16", "fp16"}
        "auto": bf16 where the hardware runs it natively (recent CUDA GPUs, CPUs with
        AVX-512 BF16 or AMX), else fp32.
    prune_level : int, optional
        UNet++ with deep supervision: run only the sub-network ending at X(0, level).
    flips : bool
        Test-time augmentation: also predict every tile mirrored along Y, X and both and
        average the four (mirrored back). Smoother outlines and fewer split or missed
        cells for four times the compute; the object-size estimate is not repeated.
    chunk_size : int
        Pixels per chunk edge of lazy (dask) and chunked computation.
    chunked_above : int
        Planes with more pixels than this are segmented chunk by chunk, in bounded memory.
    denoise : float, optional
        Gaussian sigma (input pixels) smoothing planes (and a Z stack across planes, by sigma
        / z step) before the network; None: from the noise (:mod:`napari_unet.inference.denoise`).
    """

    diameter: float | None = None
    channel: int | tuple[int, ...] | None = None
    invert: bool | None = None
    axes: str | None = None
    tile_size: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    precision: str = "auto"
    prune_level: int | None = None
    flips: bool = False
    chunk_size: int = 1024
    chunked_above: int = 4096 * 4096
    denoise: float | None = None

    def __post_init__(self):
        check_positive_number("diameter", self.diameter, optional=True)
        if isinstance(self.channel, (tuple, list)):
            object.__setattr__(self, "channel", tuple(self.channel))
        check_channel(self.channel)
        if self.invert is not None and not isinstance(self.invert, bool):
            raise ValueError(f"invert must be True, False or None (detect), got {self.invert!r}")
        check_axes(self.axes, AXES_LETTERS)
        check_positive_int("tile_size", self.tile_size, optional=True)
        check_positive_int("batch_size", self.batch_size, optional=True)
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {self.device!r}")
        check_choice("precision", self.precision, PRECISIONS)
        check_positive_int("prune_level", self.prune_level, optional=True)
        check_bool("flips", self.flips)
        check_positive_int("chunk_size", self.chunk_size)
        check_positive_int("chunked_above", self.chunked_above)
        check_non_negative_number("denoise", self.denoise, optional=True)


@dataclass(frozen=True)
class SegmentConfig(PredictConfig):
    """:class:`PredictConfig` plus how probabilities become instance labels. The four
    labelling fields left at None take the model's calibrated values (:class:`Labelling`).

    Parameters
    ----------
    threshold, foreground : float, optional
        Interior (the seeds of the cells) and foreground probability thresholds in (0, 1);
        a higher foreground threshold draws cells tighter.
    split_depth : float, optional
        How much thinner (pixels at the model's scale) the neck between two touching
        cells must be than the smaller cell for them to be split: larger merges more.
    min_size : int, optional
        Objects with fewer pixels (of the input; voxels for a volume) are removed.
    seeds : {"distance", "interior"}
        How touching cells are split: at the neck between them, or only along a predicted
        boundary (rods, filaments). See :func:`napari_unet.probabilities_to_labels`.
    overlap : int
        Pixels (at the model's scale) each chunk borrows from its neighbours when labels
        are computed chunk by chunk; larger than the largest cell.
    stitch : bool
        Give a Z stack 3-D objects (one id per cell through the planes); False labels each
        plane on its own. Time series (T) are always labelled frame by frame.
    z_labelling : {"volume", "link"}
        3-D objects from the planes' probabilities labelled as one volume (3-D watershed), or
        each plane's cells linked to the next plane's by overlap (also for chunked planes).
    z_step : float, optional
        Z spacing in pixels of the planes (voxel depth / width); None: a file's voxel size, a
        napari layer's scale, else 1.
    """

    threshold: float | None = None
    foreground: float | None = None
    split_depth: float | None = None
    min_size: int | None = None
    seeds: str = "distance"
    overlap: int = 64
    stitch: bool = True
    z_labelling: str = "volume"
    z_step: float | None = None

    def __post_init__(self):
        super().__post_init__()
        check_open_probability("threshold", self.threshold, optional=True)
        check_open_probability("foreground", self.foreground, optional=True)
        check_positive_number("split_depth", self.split_depth, optional=True)
        check_positive_int("min_size", self.min_size, minimum=0, optional=True)
        check_choice("seeds", self.seeds, SEEDS)
        check_positive_int("overlap", self.overlap, minimum=0)
        check_bool("stitch", self.stitch)
        check_choice("z_labelling", self.z_labelling, Z_LABELLINGS)
        check_positive_number("z_step", self.z_step, optional=True)

    def labelling(self, calibrated: Labelling, factor: float = 1.0) -> Labelling:
        """The labelling settings in force: ``calibrated`` (the model's) with the fields
        set here; ``min_size`` converted from input pixels to the model's grid, which is
        the input rescaled by ``factor``."""
        changes = {name: getattr(self, name) for name in ("threshold", "foreground", "split_depth")
                   if getattr(self, name) is not None}
        if self.min_size is not None:
            changes["min_size"] = int(round(self.min_size * factor * factor))
        return dataclasses.replace(calibrated, **changes)


def resolve_config(cls, config, changes: dict):
    """``config`` (an instance of ``cls``, or None for the defaults) with ``changes`` applied."""
    if config is None:
        config = cls()
    elif not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    return config.replace(**changes) if changes else config


@dataclass(frozen=True)
class TrainConfig(_Replaceable):
    """Options of fine-tuning and pretraining (see :func:`napari_unet.iter_finetune`).

    Parameters
    ----------
    iterations : int
        Optimiser steps (at most, with a time budget).
    minutes : float, optional
        Time budget: training stops after the step that uses it up (the learning-rate
        schedule follows the time spent). None: exactly ``iterations`` steps.
    learning_rate : float
        Peak learning rate (cosine decay after a short warm-up).
    optimizer : {"adam", "sgd"}
        Adam, or SGD with the paper's momentum of 0.99.
    batch_size : int
        Patches per step.
    patch_size : int
        Output size of a training patch in pixels; the input adds the network's context.
    w0, sigma : float
        Border weight map of the U-Net paper (eq. 2): height w0 >= 0, width sigma > 0 px.
    class_balance : bool
        Multiply in the class-frequency weights w_c.
    augment : bool
        Flips, rotations, elastic deformation and intensity changes.
    freeze_batchnorm : bool
        Keep batch-norm statistics fixed (recommended when fine-tuning on few cells).
    validate_every, seed : int
        Steps between validation scores; the seed of patch sampling, augmentation, drop-out.
    workers : int
        Background processes preparing patches (0: prepare them between steps).
    device, precision : str
        "auto", "cpu", "cuda", "cuda:N" or "mps"; the autocast precision, "auto", "fp32",
        "bf16" or "fp16" (see :class:`PredictConfig`).
    diameter : float, optional
        Typical diameter (pixels) of the annotated cells. A model with a working diameter
        is trained on the images rescaled so the cells have that diameter, as prediction
        will show them. None: the median diameter of the annotated cells.
    anchor : float
        Pull toward the starting weights (>= 0): after every step each weight moves back
        toward its start by ``learning rate x anchor`` of the distance (decoupled L2-SP), so
        a few cells adapt the model without it forgetting its pretraining. 0: no pull; never
        for random weights. Default chosen on the DSB2018 ``train`` split (docs/benchmarks.md).
    holdout, keep_worse : float, bool
        Without validation images, a share (0-0.5) of the annotated cells (6 or more) is
        held out and scored as training goes (:mod:`napari_unet.training.holdout`); the
        start's weights are kept when tuning never beats them, unless ``keep_worse``.
    confident_cells : bool
        Self-training: the starting model's confident objects and background outside the
        annotation are learned too (:mod:`napari_unet.training.pseudo`).
    trainable : {"all", "decoder", "normalisation"}
        What fine-tuning changes: every weight, all but the encoder, or the normalisation
        layers' scales and shifts and the output layer.
    blend : bool
        With held-out cells: the halfway blend of the start's and the tuned weights is
        scored too, and kept when it is at least as good (weight-space ensembling).
    """

    iterations: int = 300
    minutes: float | None = None
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 4
    patch_size: int = 96
    w0: float = 10.0
    sigma: float = 5.0
    class_balance: bool = True
    augment: bool = True
    freeze_batchnorm: bool = True
    validate_every: int = 50
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    precision: str = "auto"
    diameter: float | None = None
    anchor: float = 10.0
    holdout: float = 0.25
    keep_worse: bool = False
    confident_cells: bool = False
    trainable: str = "all"
    blend: bool = False

    def __post_init__(self):
        if not 0 <= self.holdout <= 0.5:
            raise ValueError(f"holdout must be a share of the annotated cells in [0, 0.5], got {self.holdout!r}")
        for name in ("confident_cells", "blend", "keep_worse"):
            check_bool(name, getattr(self, name))
        for name, choices in (("optimizer", ("adam", "sgd")), ("precision", PRECISIONS), ("trainable", TRAINABLE)):
            check_choice(name, getattr(self, name), choices)
        for name, minimum in (("iterations", 1), ("batch_size", 1), ("patch_size", 8), ("validate_every", 1),
                              ("workers", 0)):
            check_positive_int(name, getattr(self, name), minimum=minimum)
        for name in ("diameter", "minutes", "learning_rate", "sigma"):
            check_positive_number(name, getattr(self, name), optional=name in ("diameter", "minutes"))
        for name in ("anchor", "w0"):
            check_non_negative_number(name, getattr(self, name))


def config_from_dict(cls, data: dict):
    """Build a config dataclass from a JSON dict, refusing unknown keys with a clear message."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)
