"""Fine-tune with a budget: the defaults of a user's fine-tuning run, the run itself with
live previews, and writing its model file — the same for the command line and the widget.

The command line maps its options to :func:`budget_config` and the events to progress
lines; the widget maps its fields the same way and the events to its loss plot, status
line and preview layer. Neither decides a default of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..config import TrainConfig
from ..events import Preview, TrainFinished, TrainStep

# a user's fine-tuning runs for a time budget unless a step count is asked for
DEFAULT_MINUTES = 2.0
# the step cap of a time-budgeted run: high enough that the clock ends it
MAX_STEPS = 100_000


def budget_config(*, minutes: float | None = None, iterations: int | None = None, **changes) -> TrainConfig:
    """The :class:`TrainConfig` of a budgeted run.

    ``minutes`` alone: that time budget (at most :data:`MAX_STEPS` steps); ``iterations``
    alone: exactly that many steps; both: the budget, capped at ``iterations`` steps;
    neither: :data:`DEFAULT_MINUTES`. ``changes``: other TrainConfig fields (None keeps the
    default).
    """
    if minutes is None and iterations is None:
        minutes = DEFAULT_MINUTES
    if iterations is None:
        iterations = MAX_STEPS
    fields = {key: value for key, value in changes.items() if value is not None}
    return TrainConfig(minutes=minutes, iterations=iterations, **fields)


def check_model_output(out, overwrite: bool) -> Path:
    """``out`` as the path of a model file to write: a .safetensors name in an existing
    folder, not already there unless ``overwrite``. ValueError says what is wrong."""
    from ..models.io import SUFFIX

    out = Path(out)
    if out.suffix != SUFFIX:
        raise ValueError(f"{out}: model files end in {SUFFIX}")
    if not out.parent.is_dir():
        raise ValueError(f"{out}: folder {out.parent} does not exist")
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: exists; pass --overwrite to replace it")
    return out


def iter_finetune_previews(model, images, labels, regions, config: TrainConfig, preview_window=None,
                           preview_every: int = 25) -> Iterator:
    """The events of :func:`napari_unet.iter_finetune`, plus a :class:`Preview` of
    ``preview_window`` every ``preview_every`` steps (and at the end); returns the
    ``TrainFinished`` event.

    Previews are segmented at the annotated cells' diameter (the scale of the training).
    """
    from ..inference.segment import segment
    from ..training.annotations import check_annotations, training_scale
    from ..training.loop import iter_finetune

    _, diameter = training_scale(model, check_annotations(images, labels, regions), config)
    for event in iter_finetune(model, images, labels, regions=regions, config=config):
        if isinstance(event, TrainFinished):
            return event
        yield event
        last = isinstance(event, TrainStep) and event.step == event.iterations
        if preview_window is not None and isinstance(event, TrainStep) and (event.step % preview_every == 0 or last):
            yield Preview(event.step, segment(preview_window, event.model, device=str(event.model.device),
                                              diameter=diameter))
    return None


def write_finetuned(finished: TrainFinished, out, *, overwrite: bool, keep_collapsed: bool) -> Path:
    """Write the model of a finished run to ``out``, or ValueError saying why it is not
    written (diverged, collapsed, not better than the start, or ``out`` appeared meanwhile)."""
    from ..models import save_model

    out = Path(out)
    if finished.reason != "completed":
        raise ValueError(f"training diverged, nothing written: {finished.message}")
    if finished.collapsed and not keep_collapsed:
        raise ValueError(f"nothing written: {finished.message} (or pass --keep-collapsed to write it anyway)")
    if finished.kept_start:
        raise ValueError(f"nothing written: {finished.message.split(';')[0]} (pass --keep-worse to write the "
                         "fine-tuned model anyway)")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out}: appeared during training; pass --overwrite to replace it")
    finished.model.name = out.stem
    return save_model(finished.model, out)
