"""Typed configuration shared by the API, the command line, the widgets and model files.

Every option lives here once, as a frozen dataclass with its default. Model files store
``ModelConfig`` and ``Normalization`` as JSON, so a saved model rebuilds itself exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ARCHITECTURES = ("unet", "unetplusplus")
PADDINGS = ("valid", "same")
UPSAMPLINGS = ("transpose", "bilinear")
PRECISIONS = ("fp32", "bf16", "fp16")
CLASS_NAMES = ("background", "interior", "boundary")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a segmentation network.

    Parameters
    ----------
    arch : {"unet", "unetplusplus"}
        U-Net (Ronneberger et al. 2015) or UNet++ (Zhou et al. 2018).
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
        Learned 2x2 transposed convolution, or bilinear interpolation followed by a 1x1
        convolution that halves the channels.
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
        _check_choice("arch", self.arch, ARCHITECTURES)
        _check_positive_int("depth", self.depth)
        _check_positive_int("base_channels", self.base_channels)
        _check_positive_int("in_channels", self.in_channels)
        _check_positive_int("out_channels", self.out_channels, minimum=2)
        _check_choice("padding", self.padding, PADDINGS)
        _check_choice("upsampling", self.upsampling, UPSAMPLINGS)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.deep_supervision and self.arch != "unetplusplus":
            raise ValueError("deep_supervision=True needs arch='unetplusplus'")


@dataclass(frozen=True)
class Normalization:
    """How raw intensities are mapped to network input, once per image or plane.

    ``low`` and ``high`` percentiles map to 0 and 1 (values outside are kept, not clipped).
    """

    kind: str = "percentile"
    low: float = 1.0
    high: float = 99.8

    def __post_init__(self):
        _check_choice("normalization kind", self.kind, ("percentile",))
        if not 0.0 <= self.low < self.high <= 100.0:
            raise ValueError(
                f"normalization percentiles need 0 <= low < high <= 100, got low={self.low}, high={self.high}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Options of fine-tuning and pretraining (see :func:`napari_unet.iter_finetune`).

    Parameters
    ----------
    iterations : int
        Optimiser steps.
    learning_rate : float
        Peak learning rate (cosine decay after a short warm-up).
    optimizer : {"adam", "sgd"}
        Adam, or SGD with the paper's momentum of 0.99.
    batch_size : int
        Patches per step.
    patch_size : int
        Output size of a training patch in pixels; the input adds the network's context.
    w0, sigma : float
        Border weight map of the U-Net paper (eq. 2): height w0 >= 0, width sigma > 0 in
        pixels.
    class_balance : bool
        Multiply in the class-frequency weights w_c.
    augment : bool
        Flips, rotations, elastic deformation and intensity changes.
    freeze_batchnorm : bool
        Keep batch-norm statistics fixed (recommended when fine-tuning on few cells).
    validate_every : int
        Steps between validation scores (when held-out annotations are given).
    seed : int
        Seed of patch sampling, augmentation and drop-out.
    workers : int
        Background processes preparing patches (0: prepare them between steps).
    device : str
        "auto", "cpu", "cuda", "cuda:N" or "mps".
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of forward and backward passes.
    """

    iterations: int = 300
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
    precision: str = "fp32"

    def __post_init__(self):
        _check_positive_int("iterations", self.iterations)
        _check_positive_int("batch_size", self.batch_size)
        _check_positive_int("patch_size", self.patch_size, minimum=8)
        _check_choice("optimizer", self.optimizer, ("adam", "sgd"))
        _check_choice("precision", self.precision, PRECISIONS)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        _check_positive_int("validate_every", self.validate_every)
        _check_positive_int("workers", self.workers, minimum=0)
        if not self.w0 >= 0:
            raise ValueError(f"w0 must be >= 0, got {self.w0!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0 pixels, got {self.sigma!r}")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def config_from_dict(cls, data: dict):
    """Build a config dataclass from a JSON dict, refusing unknown keys with a clear message."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)
