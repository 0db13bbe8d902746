"""Fine-tuning (and pretraining) with the U-Net recipe: border weight maps, elastic
augmentation, sparse annotations.

``iter_finetune`` is a generator of small typed events (one per optimiser step) so a
widget can show progress and stop at any step; ``finetune`` drains it for scripts. The
caller's model is never modified: training works on a copy, handed out with each event.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from ..config import TrainConfig
from ..devices import autocast, is_out_of_memory, resolve_device, resolve_precision
from ..events import Notice, TrainFinished, TrainStep, Validation
from ..models import SegmentationModel, load_model
from .annotations import check_annotations, check_validation_pairs, prepare_annotations, training_scale
from .augment import AugmentConfig
from .holdout import BLEND_SHARES, MIN_CELLS, better, blend, held_out_summary, score_held_out, split_held_out
from .loss import make_optimizer, make_scheduler, train_mode, weighted_loss
from .patches import PatchSampler
from .pseudo import with_confident_cells
from .scores import own_annotation_scores, validate


def _channel_names(checked, model: SegmentationModel) -> tuple[str, ...] | None:
    """The channels a model trained on these images reads: several channels last (not
    colour) make a multi-channel model; otherwise the starting model's stay."""
    counts = {item.image.shape[-1] if item.axes == "YXC" else 1 for item in checked}
    if all(count in (1, 3, 4) for count in counts) and not (counts == {1} and model.channel_names):
        return model.channel_names
    if len(counts) > 1:
        raise ValueError(f"the training images have different numbers of channels ({sorted(counts)}): give "
                         "every image the same channels")
    count = counts.pop()
    if count > model.config.in_channels:
        raise ValueError(f"the training images have {count} channels; model {model.name!r} reads "
                         f"{model.config.in_channels}")
    return model.channel_names or tuple(f"channel {index}" for index in range(count))


def _snapshot(network) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in network.state_dict().items()}


def _parameters_finite(network) -> bool:
    # one reduction and one device sync for the whole network; an overflowing sum counts
    # as divergence too
    return bool(torch.isfinite(torch.stack([p.detach().float().sum() for p in network.parameters()]).sum()))


class _Training:
    """The state of one fine-tuning run, stepped by :func:`iter_finetune`."""

    def __init__(self, model, images, labels, regions, validation, config: TrainConfig,
                 augmentation: AugmentConfig | None, sampling):
        self.config = config
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        # a model object is copied where it is: load_model would move the caller's network
        self.model = copy.deepcopy(model) if isinstance(model, SegmentationModel) else load_model(model, device="cpu")
        self.network = self.model.network
        checked = check_annotations(images, labels, regions)
        self.factor, self.diameter = training_scale(self.model, checked, config)
        self.model.channel_names = _channel_names(checked, self.model)
        self.validation = check_validation_pairs(validation)
        # without held-out images, a share of the user's own cells checks that training helps
        self.held_out = self.held_start = self.held_best = None
        if not self.validation and config.holdout > 0:
            checked, self.held_out = split_held_out(checked, config.holdout)
        self.held_image = None if self.held_out is None else checked[self.held_out.image_index].image
        began = time.perf_counter()
        if config.confident_cells and self.model.history:  # random weights are sure of nothing worth learning
            checked = with_confident_cells(self.model, checked, self.held_out, diameter=self.diameter,
                                           factor=self.factor, device=self.device, precision=self.precision)
        labelling_seconds = time.perf_counter() - began
        self.annotations = prepare_annotations(self.model, [c.image for c in checked], [c.labels for c in checked],
                                               [c.annotated for c in checked], config, factor=self.factor)
        self.sampler = PatchSampler(self.network, self.annotations, config, augmentation, sampling)
        # channels-last convolutions run markedly faster on CPUs (and with AMP on GPUs)
        self.network.to(self.device, memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.network, config)
        # the weights a positive ``anchor`` pulls back to: those of a trained model (random
        # weights of a model with no history hold nothing worth keeping)
        anchored = config.anchor > 0 and bool(self.model.history)
        self.start = [p.detach().clone() for p in self.network.parameters()] if anchored else None
        self.steps_done = 0
        # the budget starts after the annotations are prepared; self-training's predictions count in it
        self.started = time.perf_counter() - labelling_seconds
        self.scheduler = make_scheduler(self.optimizer, self.progress)
        use_scaler = self.precision == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type) if use_scaler else None
        torch.manual_seed(config.seed)
        self.batch_size = config.batch_size
        self.batches = self.sampler.batches(config.seed, config.batch_size, config.workers)
        # the weights that last gave a finite loss, and the number of steps that produced them
        self.verified, self.verified_step = _snapshot(self.network), 0
        self.recent: list[float] = []
        self.best: tuple[float, dict | None, dict | None] = (-1.0, None, None)

    def progress(self) -> float:
        """How far the run is (0-1): steps over ``iterations``, or time over the budget."""
        steps = (self.steps_done + 1) / self.config.iterations
        if self.config.minutes is None:
            return steps
        return max(steps, (time.perf_counter() - self.started) / (60 * self.config.minutes))

    def out_of_time(self) -> bool:
        return self.config.minutes is not None and time.perf_counter() - self.started >= 60 * self.config.minutes

    def _forward_backward(self, inputs, classes, weights) -> float:
        inputs = inputs.to(self.device, memory_format=torch.channels_last)
        classes, weights = classes.to(self.device), weights.to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.precision):
            heads = self.network.forward_heads(inputs)
        loss = weighted_loss(heads, classes, weights)
        if not torch.isfinite(loss):
            return float(loss.detach())
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self._pull_to_start()
        return float(loss.detach())

    @torch.no_grad()
    def _pull_to_start(self) -> None:
        """Decoupled L2-SP: move every weight back toward its starting value by
        ``learning rate x anchor`` of the distance (capped at all of it)."""
        if self.start is None:
            return
        share = min(1.0, self.optimizer.param_groups[0]["lr"] * self.config.anchor)
        for parameter, start in zip(self.network.parameters(), self.start):
            parameter.lerp_(start, share)

    def step(self, step: int) -> Iterator[TrainStep | Notice | TrainFinished]:
        """One optimiser step (retried with half the batch after running out of memory)."""
        rate = self.optimizer.param_groups[0]["lr"]
        while True:
            inputs, classes, weights = (tensor[:self.batch_size] for tensor in next(self.batches))
            train_mode(self.network, self.config.freeze_batchnorm)
            before = _snapshot(self.network)
            try:
                loss = self._forward_backward(inputs, classes, weights)
                break
            except Exception as error:  # noqa: BLE001 - only allocation failures are retried
                if not is_out_of_memory(error) or self.batch_size == 1:
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.batch_size //= 2
                yield Notice(step=step, message=f"out of memory: continuing with batch size {self.batch_size}")
        if math.isfinite(loss):
            self.verified, self.verified_step = before, step
        problem = (f"loss became {loss}" if not math.isfinite(loss)
                   else None if _parameters_finite(self.network) else "weights became non-finite")
        if problem is not None:
            yield self._diverged(problem, step, rate)
            return
        self.steps_done = done = step + 1
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
            self.scheduler.step()
        self.recent = (self.recent + [loss])[-20:]
        elapsed = time.perf_counter() - self.started
        self.network.eval()
        yield TrainStep(step=done, iterations=self.config.iterations, loss=loss, learning_rate=rate, elapsed=elapsed,
                        eta=self._eta(elapsed, done), batch_size=self.batch_size, model=self.model)

    def _eta(self, elapsed: float, done: int) -> float:
        by_steps = elapsed / done * (self.config.iterations - done)
        if self.config.minutes is None:
            return by_steps
        return max(0.0, min(by_steps, 60 * self.config.minutes - elapsed))

    def _diverged(self, problem: str, step: int, rate: float) -> TrainFinished:
        # a non-finite loss usually means the previous step already blew the weights up,
        # so the weights restored are the last ones whose loss was finite
        self.network.load_state_dict(self.verified)
        self.network.eval()
        self.model.history.append(self.history_entry(self.verified_step, "diverged"))
        kept = f"the weights after step {self.verified_step}" if self.verified_step else "the starting weights"
        return TrainFinished(model=self.model, steps=self.verified_step, reason="diverged", message=(
            f"{problem} at step {step + 1} (learning rate {rate:.2g}); {kept}, the last with a finite "
            f"loss, were restored — try a lower learning rate"))

    def before_training(self) -> Iterator[Validation | Notice]:
        """The starting model on the held-out cells (what tuning must beat), or a Notice
        that there were too few cells to hold any out."""
        if self.held_out is not None:
            yield self.validate(0)
        elif not self.validation and self.config.holdout > 0:
            yield Notice(step=0, message=f"fewer than {MIN_CELLS} annotated cells: none held out, so nothing "
                                         "checks that fine-tuning helps (annotate more cells for that check)")

    @property
    def checks(self) -> bool:
        """Whether the run is scored as it goes (held-out images, or held-out cells)."""
        return bool(self.validation) or self.held_out is not None

    def validate(self, step: int) -> Validation:
        if self.held_out is not None:
            return self._score_held_out(step)
        metrics = validate(self.model, self.validation, self.config, self.diameter)
        if metrics["ap50"] > self.best[0]:
            self.best = (metrics["ap50"], _snapshot(self.network), {"step": step, **metrics})
        return Validation(step=step, metrics=metrics, model=self.model)

    def _score_held_out(self, step: int) -> Validation:
        """Score the held-out cells; remember the start's weights (step 0) and the best tuned ones."""
        self.network.eval()
        metrics = {"step": step, **self._held_out_scores()}
        if step == 0:
            self.held_start = (metrics, _snapshot(self.network))
        elif self.held_best is None or better(metrics, self.held_best[0]):
            self.held_best = (metrics, _snapshot(self.network))
        return Validation(step=step, metrics=metrics, model=self.model)

    def _held_out_scores(self) -> dict:
        return score_held_out(self.model, self.held_out, self.held_image, diameter=self.diameter,
                              device=self.device, precision=self.precision)

    def _keep_held_out_choice(self) -> dict | None:
        """Load the weights the held-out cells choose: the best tuned ones (or, with
        ``config.blend``, a blend of them with the start's, if it scores as well) if they beat
        the start (or ``keep_worse``), else the start's. Returns what was measured and kept."""
        if self.held_start is None or self.held_best is None:
            return None
        (before, start), (after, tuned) = self.held_start, self.held_best
        share = 1.0
        if self.config.blend and self.model.history:
            self.network.eval()
            for candidate in BLEND_SHARES:
                self.network.load_state_dict(blend(start, tuned, candidate))
                metrics = {"step": after["step"], **self._held_out_scores()}
                if not better(after, metrics):  # a tie goes to the blend: as good here, and nearer the start
                    after, share = metrics, candidate
            tuned = tuned if share == 1.0 else blend(start, tuned, share)
        improved = better(after, before)
        # random starting weights (no training history) are nothing to keep
        keep_tuned = improved or self.config.keep_worse or not self.model.history
        kept = "fine-tuned" if keep_tuned else "start"
        self.network.load_state_dict(tuned if kept == "fine-tuned" else start)
        return {"cells": self.held_out.cells, "before": before, "after": after, "improved": improved, "kept": kept,
                "blend": share}

    def finish(self, steps: int) -> TrainFinished:
        held = self._keep_held_out_choice()
        if self.best[1] is not None:
            # the best-scoring weights on the held-out annotations (or cells) are the ones kept
            self.network.load_state_dict(self.best[1])
        self.network.eval()
        own = own_annotation_scores(self.model, self.annotations, self.device, self.precision)
        # a collapse is a failure of this run: with the starting weights kept there is none to report
        collapsed = own["matched"] == 0 and not (held is not None and held["kept"] == "start")
        entry = self.history_entry(steps, "completed")
        entry.update(training_scores=own, collapsed=collapsed)
        if self.best[1] is not None:
            entry["validation"] = self.best[2]
        if held is not None:
            entry["held_out"] = held
        self.model.history.append(entry)
        if collapsed:
            message = (f"after {steps} steps the model finds none of the {own['cells']} annotated cells on its own "
                       "training images: annotate more cells (and background around them), train longer, or lower "
                       "the learning rate")
        else:
            message = (f"{steps} steps, final loss {np.mean(self.recent):.4f}, finds {own['matched']} of its "
                       f"{own['cells']} training cells")
        return TrainFinished(model=self.model, steps=steps, reason="completed", collapsed=collapsed, held_out=held,
                             message=message if held is None else f"{held_out_summary(held)}; {message}")

    def history_entry(self, steps: int, outcome: str) -> dict:
        augmentation = self.sampler.augment
        return {
            "kind": "finetune",
            # the how-many-th fine-tuning round of this lineage of weights
            "round": sum(entry.get("kind") == "finetune" for entry in self.model.history) + 1,
            "outcome": outcome,
            "steps": steps,
            "seconds": round(time.perf_counter() - self.started, 1),
            "final_loss": float(np.mean(self.recent)) if self.recent else None,
            "annotated_cells": int(sum(np.unique(a.labels[a.labels > 0]).size for a in self.annotations)),
            "annotated_diameter": self.diameter,
            "config": {key: value for key, value in self.config.__dict__.items() if key != "device"},
            # lists, as JSON gives them back
            "augmentation": None if augmentation is None else {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(augmentation).items()},
            "date": time.strftime("%Y-%m-%d"),
        }


def iter_finetune(model, images, labels, *, regions=None, validation: Sequence | None = None,
                  config: TrainConfig | None = None, augmentation: AugmentConfig | None = None,
                  sampling: Sequence[float] | None = None,
                  ) -> Iterator[TrainStep | Validation | Notice | TrainFinished]:
    """Fine-tune a copy of ``model`` on annotated images, yielding an event per step.

    Parameters
    ----------
    model : SegmentationModel, str or path
        Starting point (a shipped name such as "nuclei", a file, or a model). Not
        modified, nor moved to another device.
    images : (Y, X) or (Y, X, 3) array, or a list of them
        Not modified.
    labels : (Y, X) int array, or a list (one per image)
        Inside the regions 0 is background and k > 0 is cell k.
    regions : None, or a list (one per image) of None | (Y, X) bool mask | [(y0, y1, x0, x1), ...]
        Where the labels are complete. Outside, nothing is learned (not even background).
    validation : list of (image, labels), optional
        Held-out fully annotated images, scored every ``config.validate_every`` steps; the
        best-scoring weights (AP@0.5) are kept.
    config : TrainConfig, optional
    augmentation : AugmentConfig, optional
        Ranges of the augmentations (default: :class:`AugmentConfig`); used when
        ``config.augment``.
    sampling : sequence of float, optional
        Relative probability of drawing a patch from each image (default: proportional to
        its annotated area).

    Yields
    ------
    TrainStep, Validation, Notice, and finally TrainFinished
        Every event carries the same model object, updated in place: the weights of the
        moment, in eval mode. Stopping the iteration early (``close()`` or ``break``)
        leaves it usable. ``Notice``: the batch was halved after running out of memory.
        ``TrainFinished.reason`` is "completed", or "diverged" when the loss or the weights
        became non-finite (the last weights whose loss was finite are restored).
        ``TrainFinished.collapsed`` says the model finds none of its own annotated cells
        (it is handed out, but should not be used or saved without a look).

    Raises
    ------
    ValueError
        Before the first event, for unusable annotations (no cell, shape mismatch, ...).
    """
    config = config or TrainConfig()
    run = _Training(model, images, labels, regions, validation, config, augmentation, sampling)
    try:
        yield from run.before_training()
        done = 0
        while done < config.iterations:
            for event in run.step(done):
                yield event
                if isinstance(event, TrainFinished):
                    return
            done += 1
            last = done == config.iterations or run.out_of_time()
            if run.checks and (done % config.validate_every == 0 or last):
                yield run.validate(done)
            if last:
                break
        yield run.finish(done)
    finally:  # weights frozen for this run (TrainConfig.trainable) are free again for the next
        run.network.requires_grad_(True)


def finetune(model, images, labels, *, regions=None, validation=None, config: TrainConfig | None = None,
             callback: Callable[[object], None] | None = None) -> SegmentationModel:
    """Blocking :func:`iter_finetune`: returns the fine-tuned copy of ``model``.

    ``callback`` is called with every event (e.g. to print progress). A run that diverged
    warns (RuntimeWarning) and returns the last weights whose loss was finite; a collapsed
    model (it finds none of its own annotated cells) is returned with a RuntimeWarning.
    """
    finished = None
    for event in iter_finetune(model, images, labels, regions=regions, validation=validation, config=config):
        if callback is not None:
            callback(event)
        if isinstance(event, TrainFinished):
            finished = event
    if finished.reason == "diverged" or finished.collapsed:
        warnings.warn(finished.message, RuntimeWarning, stacklevel=2)
    return finished.model
