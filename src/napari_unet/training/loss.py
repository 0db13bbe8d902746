"""The weighted loss of the U-Net paper, the optimiser and the learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..config import TrainConfig

WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.05


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


NORMALISATIONS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
# top-level modules of the output layers (U-Net: head; UNet++: heads)
OUTPUT_LAYERS = ("head", "heads")


def trainable_parameters(network, part: str) -> list[torch.nn.Parameter]:
    """The parameters fine-tuning changes (``TrainConfig.trainable``): all of them, all but
    the encoder's, or the normalisation layers' and the output layer's. The rest are frozen
    (``requires_grad`` off, so the backward pass skips them)."""
    named = list(network.named_parameters())
    if part == "all":
        chosen = {id(p) for _, p in named}
    elif part == "decoder":
        chosen = {id(p) for name, p in named if name.split(".")[0] != "encoder"}
    else:
        norms = [p for module in network.modules() if isinstance(module, NORMALISATIONS)
                 for p in module.parameters(recurse=False)]
        if not norms:
            raise ValueError(f"trainable={part!r}: the network has no normalisation layers to train "
                             "(choose 'all' or 'decoder')")
        chosen = {id(p) for p in norms} | {id(p) for name, p in named if name.split(".")[0] in OUTPUT_LAYERS}
    for _, parameter in named:
        parameter.requires_grad_(id(parameter) in chosen)
    return [p for _, p in named if id(p) in chosen]


def make_optimizer(network, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or SGD with the U-Net paper's momentum of 0.99, over the parameters
    ``config.trainable`` names (the others frozen)."""
    parameters = trainable_parameters(network, config.trainable)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.learning_rate, momentum=0.99)
    return torch.optim.Adam(parameters, lr=config.learning_rate)


def learning_rate_factor(progress: float) -> float:
    """Share of the peak learning rate at ``progress`` (0-1) of a run: a linear warm-up over
    the first 5 %, then a cosine decay to 5 % of the peak at the end."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < WARMUP_FRACTION:
        return progress / WARMUP_FRACTION
    done = (progress - WARMUP_FRACTION) / (1 - WARMUP_FRACTION)
    return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * done))


def make_scheduler(optimizer: torch.optim.Optimizer, progress) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`learning_rate_factor` of ``progress()``.

    ``progress`` returns how far the run is (0-1) when the scheduler steps: steps done over
    steps planned, or time spent over the time budget, whichever is further. Step the
    scheduler once after every optimiser step; ``optimizer.param_groups[0]["lr"]`` is then
    the rate of the next step.
    """
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda _: learning_rate_factor(progress()))


def train_mode(network, freeze_batchnorm: bool) -> None:
    """Training mode; frozen batch norms keep their statistics (few cells to fine-tune on)."""
    network.train()
    if freeze_batchnorm:
        for module in network.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
