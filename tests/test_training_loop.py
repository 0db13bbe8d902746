"""Fine-tuning: sparse annotations, weight maps, events, cancellation, divergence, OOM."""

import copy
import math
import warnings

import numpy as np
import pytest
import torch

import napari_unet as nu
from napari_unet.config import TrainConfig
from napari_unet.events import Notice, TrainFinished, TrainStep, Validation
from napari_unet.inference.labels import labels_to_classes
from napari_unet.synth import SynthConfig, synth_dataset
from napari_unet.training import loop
from napari_unet.training.annotations import annotated_mask, prepare_annotations, training_weight_map
from napari_unet.training.loop import iter_finetune
from napari_unet.training.loss import make_scheduler, weighted_loss
from napari_unet.training.patches import PatchSampler

# no cells held out: the held-out check has tests of its own (test_holdout.py)
CONFIG = TrainConfig(iterations=3, batch_size=2, patch_size=32, device="cpu", validate_every=2, holdout=0.0)
REGION = (8, 48, 8, 48)


@pytest.fixture(scope="module")
def samples():
    return synth_dataset(2, seed=3, config=SynthConfig(shape=(64, 64)))


@pytest.fixture
def sample(samples):
    return samples[0]


def state(model) -> dict:
    return {key: value.detach().clone() for key, value in model.network.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def events_of(model, image, labels, **options) -> list:
    options.setdefault("config", CONFIG)
    return list(iter_finetune(model, image, labels, **options))


def finished(events) -> TrainFinished:
    assert isinstance(events[-1], TrainFinished)
    return events[-1]


def all_finite(model) -> bool:
    return all(torch.isfinite(p).all() for p in model.network.parameters())


# --------------------------------------------------------------------------------------
# sparse annotations


def test_rectangles_and_masks_mark_the_same_area():
    mask = annotated_mask((20, 30), [(2, 5, 3, 9), (10, 20, 0, 1)])
    expected = np.zeros((20, 30), dtype=bool)
    expected[2:5, 3:9] = True
    expected[10:20, 0:1] = True
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(annotated_mask((20, 30), expected), expected)
    assert annotated_mask((20, 30), None).all()


def test_weights_are_zero_outside_the_regions(tiny_model, sample):
    image, labels = sample
    (annotation,) = prepare_annotations(tiny_model, image, labels, [[REGION]], CONFIG)
    inside = annotated_mask(labels.shape, [REGION])
    assert (annotation.weights[~inside] == 0).all()
    assert (annotation.labels[~inside] == 0).all()
    edge = inside & ~annotated_mask(labels.shape, [(REGION[0] + 1, REGION[1] - 1, REGION[2] + 1, REGION[3] - 1)])
    assert (annotation.weights[inside & ~edge] > 0).all()
    assert (annotation.weights[edge & (labels == 0)] > 0).all()


def test_a_cell_cut_by_a_region_edge_gets_no_false_boundary(tiny_model):
    labels = np.zeros((64, 64), dtype=np.int32)
    labels[10:40, 10:40] = 1
    (annotation,) = prepare_annotations(tiny_model, labels.astype(np.float32), labels, [[(0, 64, 0, 25)]], CONFIG)
    # column 24 is inside the cell and the region, at the region's edge: its class is unknown
    assert (annotation.weights[10:40, 24] == 0).all()
    assert (annotation.weights[11:39, 11:24] > 0).all()
    # the cell's real outline keeps its (high) boundary weight
    assert (annotation.weights[10, 11:24] > annotation.weights[20, 20]).all()


def test_zero_weight_pixels_do_not_touch_the_loss_or_its_gradient(rng):
    logits = torch.tensor(rng.normal(size=(2, 3, 16, 16)), dtype=torch.float32, requires_grad=True)
    classes = torch.from_numpy(rng.integers(0, 3, size=(2, 16, 16)))
    weights = torch.from_numpy(rng.uniform(0.5, 2, size=(2, 16, 16)).astype(np.float32))
    weights[:, :, 8:] = 0
    loss = weighted_loss([logits], classes, weights)
    (gradient,) = torch.autograd.grad(loss, logits)
    changed = classes.clone()
    changed[:, :, 8:] = (changed[:, :, 8:] + 1) % 3
    other = weighted_loss([logits], changed, weights)
    (other_gradient,) = torch.autograd.grad(other, logits)
    assert torch.equal(loss, other)
    assert torch.equal(gradient, other_gradient)
    assert (gradient[..., 8:] == 0).all() and (gradient[..., :8] != 0).any()


@pytest.mark.parametrize("as_mask", [False, True], ids=["rectangle", "bool-mask"])
def test_labels_outside_the_regions_do_not_change_training(tiny_model, sample, as_mask):
    image, labels = sample
    inside = annotated_mask(labels.shape, [REGION])
    region = [inside] if as_mask else [[REGION]]
    scribbled = labels.copy()
    scribbled[~inside] = np.random.default_rng(0).integers(0, 9, size=int((~inside).sum()))
    start = state(tiny_model)
    reference = state(finished(events_of(tiny_model, image, labels, regions=region)).model)
    outside_changed = state(finished(events_of(tiny_model, image, scribbled, regions=region)).model)
    assert not same_weights(reference, start)
    assert same_weights(reference, outside_changed)
    # the same change inside the region is learned: the comparison above can see a difference
    inside_changed = labels.copy()
    inside_changed[REGION[0]:REGION[1], REGION[2]:REGION[3]] = 0
    inside_changed[20:30, 20:30] = 1
    assert not same_weights(reference, state(finished(events_of(tiny_model, image, inside_changed,
                                                                 regions=region)).model))


BAD_ANNOTATIONS = {
    "no cell": (lambda i, l: ([i], [np.zeros_like(l)], None), r"no annotated cell \(inside the regions\)"),
    "cells only outside": (lambda i, l: ([i], [np.pad(l[:40, :40] * 0, ((0, 24), (0, 24)), constant_values=1)],
                                         [[(0, 40, 0, 40)]]), "no annotated cell"),
    "label shape": (lambda i, l: ([i], [l[:32]], None), r"labels\[0\]: shape \(32, 64\), but images\[0\] is \(64, 64\)"),
    "fractional labels": (lambda i, l: ([i], [l + 0.5], None), r"labels\[0\] must hold integers"),
    "negative labels": (lambda i, l: ([i], [l.astype(np.int32) - 1], None), r"labels\[0\] must not be negative"),
    "region outside": (lambda i, l: ([i], [l], [[(0, 80, 0, 10)]]),
                       r"regions\[0\]: rectangle \(0, 80, 0, 10\) is empty or outside the image \(64, 64\)"),
    "empty region": (lambda i, l: ([i], [l], [[(5, 5, 0, 10)]]), r"regions\[0\]: rectangle \(5, 5, 0, 10\) is empty"),
    "not a rectangle": (lambda i, l: ([i], [l], [[(0, 10)]]),
                        r"regions\[0\] must be a bool mask or \(y0, y1, x0, x1\)"),
    "mask shape": (lambda i, l: ([i], [l], [np.ones((10, 10), bool)]),
                   r"regions\[0\] mask has shape \(10, 10\), the image is \(64, 64\)"),
    "fewer labels": (lambda i, l: ([i, i], [l], None), "got 2 images, 1 labels and 2 regions"),
    "fewer regions": (lambda i, l: ([i, i], [l, l], [None]), "got 2 images, 2 labels and 1 regions"),
    "no image": (lambda i, l: ([], [], None), "images: no image given"),
    "stack": (lambda i, l: ([np.stack([i, i])], [l], None), r"images\[0\]: shape \(2, 64, 64\) is a stack or has its channels first"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_unusable_annotations_are_refused_before_the_first_step(tiny_model, sample, case):
    build, message = BAD_ANNOTATIONS[case]
    images, labels, regions = build(*sample)
    events = iter_finetune(tiny_model, images, labels, regions=regions, config=CONFIG)
    with pytest.raises(ValueError, match=message):
        next(events)


@pytest.mark.parametrize("validation, message", [
    ([("not", "a", "pair")], r"validation\[0\] must be an \(image, labels\) pair"),
    ([(np.zeros((64, 64)), np.zeros((32, 64), int))], r"validation labels\[0\] have shape \(32, 64\)"),
    ([(np.zeros((64, 64)), np.full((64, 64), 0.5))], r"validation labels\[0\] must hold integers"),
])
def test_unusable_validation_pairs_are_refused_before_the_first_step(tiny_model, sample, validation, message):
    with pytest.raises(ValueError, match=message):
        next(iter_finetune(tiny_model, *sample, validation=validation, config=CONFIG))


def test_augmented_patches_never_teach_a_boundary_where_a_region_cuts_a_cell(tiny_model, rng):
    # one cell covers the whole image: inside the region every boundary would be false
    labels = np.ones((64, 64), dtype=np.int32)
    image = rng.normal(size=(64, 64)).astype(np.float32)
    config = CONFIG.replace(augment=True)
    sampler = PatchSampler(tiny_model.network,
                           prepare_annotations(tiny_model, image, labels, [[(0, 64, 0, 25)]], config), config)
    cut_in_view, false_boundaries = 0, 0
    for _ in range(60):
        _, classes, weights = sampler.sample(rng)
        cut_in_view += bool((classes == 2).any())
        false_boundaries += int(((classes == 2) & (weights > 0)).sum())
    assert cut_in_view > 20
    assert false_boundaries == 0


# --------------------------------------------------------------------------------------
# weight map


def touching_squares() -> np.ndarray:
    labels = np.zeros((96, 96), dtype=np.int32)
    labels[40:60, 20:40] = 1
    labels[40:60, 41:61] = 2  # one background column (x = 40) between the cells
    return labels


def test_weight_map_follows_equation_2_of_the_paper():
    labels = touching_squares()
    config = TrainConfig(w0=10.0, sigma=5.0)
    weights = training_weight_map(labels, config=config)
    counts = np.bincount(labels_to_classes(labels).ravel(), minlength=3)
    w_background = labels.size / (3 * counts[0])
    # the gap pixel is 1 px from both cells: w_c + w0 exp(-(1 + 1)^2 / (2 sigma^2)) ~ w_c + w0
    assert weights[50, 40] == pytest.approx(w_background + 10.0 * math.exp(-4 / 50), rel=1e-5)
    assert weights[50, 40] > w_background + 0.9 * 10.0
    # far from every cell (> 3.7 sigma) only the class weight remains
    assert weights[0, 0] == pytest.approx(w_background, rel=1e-6)
    assert weights[90, 90] == pytest.approx(w_background, rel=1e-6)
    # one cell alone has no second-nearest cell: no border term on its far side
    assert weights[50, 10] == pytest.approx(w_background, rel=1e-6)
    assert (weights > 0).all()


def test_weight_map_is_zero_outside_the_regions_and_balanced_inside():
    labels = touching_squares()
    weights = training_weight_map(labels, regions=[(0, 96, 0, 48)])
    assert (weights[:, 48:] == 0).all()
    assert (weights[:, :47] > 0).all()
    # the rim where the region cuts cell 2 (x = 41..60) has unknown classes: weight 0
    assert (weights[40:60, 47] == 0).all() and (weights[41:59, 46] > 0).all()
    unweighted = training_weight_map(labels, config=TrainConfig(w0=0.0, class_balance=False))
    np.testing.assert_array_equal(unweighted, np.ones(labels.shape, dtype=np.float32))


# --------------------------------------------------------------------------------------
# events, cancellation, divergence, out of memory


def test_events_report_every_step_and_finish(tiny_model, sample):
    events = events_of(tiny_model, *sample)
    steps = [e for e in events if isinstance(e, TrainStep)]
    assert [e.step for e in steps] == [1, 2, 3]
    assert all(e.iterations == 3 and np.isfinite(e.loss) and e.learning_rate > 0 and e.batch_size == 2
               for e in steps)
    assert steps[-1].eta == 0
    end = finished(events)
    assert (end.reason, end.steps) == ("completed", 3)
    assert end.model.history[-1]["outcome"] == "completed"
    assert tiny_model.history == []


def test_the_caller_images_and_labels_are_not_modified(tiny_model, sample):
    image, labels = (np.array(array) for array in sample)
    assert image.dtype == np.float32
    events_of(tiny_model, image, labels, regions=[[REGION]], config=CONFIG.replace(iterations=1))
    np.testing.assert_array_equal(image, sample[0])
    np.testing.assert_array_equal(labels, sample[1])


def test_closing_the_generator_leaves_a_usable_model_and_the_caller_model_untouched(tiny_model, sample):
    image, labels = sample
    start = state(tiny_model)
    events = iter_finetune(tiny_model, image, labels, config=CONFIG.replace(iterations=50))
    steps = []
    for event in events:
        steps.append(event)
        if len(steps) == 2:
            break
    events.close()
    last = steps[-1]
    assert isinstance(last, TrainStep) and last.step == 2
    assert same_weights(state(tiny_model), start)
    assert not same_weights(state(last.model), start)
    assert not last.model.network.training
    probabilities = nu.predict_probabilities(image, last.model, device="cpu")
    assert probabilities.shape == (3, 64, 64) and np.isfinite(probabilities).all()
    assert nu.segment(image, last.model, device="cpu").shape == (64, 64)


def poison_loss_at(monkeypatch, call: int) -> None:
    """Make the ``call``-th loss (1-based) NaN, as a diverging run would."""
    calls = []

    def loss(heads, classes, weights):
        calls.append(1)
        value = weighted_loss(heads, classes, weights)
        return value * float("nan") if len(calls) == call else value

    monkeypatch.setattr(loop, "weighted_loss", loss)


def run_with_snapshots(model, sample, iterations=10):
    """All events, the weights after every step, and the TrainFinished event."""
    snapshots, events = {}, []
    for event in iter_finetune(model, *sample, config=CONFIG.replace(iterations=iterations)):
        events.append(event)
        if isinstance(event, TrainStep):
            snapshots[event.step] = state(event.model)
    return events, snapshots, finished(events)


def test_a_nan_loss_stops_training_and_restores_the_last_weights_with_a_finite_loss(tiny_model, sample,
                                                                                     monkeypatch):
    poison_loss_at(monkeypatch, 3)
    events, snapshots, end = run_with_snapshots(tiny_model, sample)
    assert [e.step for e in events if isinstance(e, TrainStep)] == [1, 2]
    assert end.reason == "diverged"
    assert end.message.startswith("loss became nan at step 3")
    assert "the weights after step 1," in end.message and "lower learning rate" in end.message
    # the loss of step 3 is that of the weights after step 2: the last finite one came from
    # the weights after step 1, which are kept
    assert end.steps == 1
    assert same_weights(state(end.model), snapshots[1])
    assert all_finite(end.model)
    assert end.model.history[-1]["outcome"] == "diverged"


def test_weights_that_become_non_finite_are_rolled_back(tiny_model, sample, monkeypatch):
    original = loop._Training._forward_backward
    calls = []

    def step(run, *args):
        loss = original(run, *args)
        calls.append(1)
        if len(calls) == 2:  # a finite loss, but the update broke the weights
            with torch.no_grad():
                next(run.network.parameters()).view(-1)[0] = float("inf")
        return loss

    monkeypatch.setattr(loop._Training, "_forward_backward", step)
    events, snapshots, end = run_with_snapshots(tiny_model, sample)
    assert [e.step for e in events if isinstance(e, TrainStep)] == [1]
    assert (end.reason, end.steps) == ("diverged", 1)
    assert end.message.startswith("weights became non-finite at step 2")
    assert same_weights(state(end.model), snapshots[1])
    assert all_finite(end.model)


def test_a_huge_learning_rate_diverges_to_finite_weights(tiny_model, sample):
    config = CONFIG.replace(iterations=20, optimizer="sgd", learning_rate=1e9)
    end = finished(events_of(tiny_model, *sample, config=config))
    assert end.reason == "diverged" and end.steps < 20
    assert all_finite(end.model)
    assert nu.segment(sample[0], end.model, device="cpu").shape == (64, 64)


def test_out_of_memory_halves_the_batch_and_training_goes_on(tiny_model, sample, monkeypatch):
    original = loop._Training._forward_backward
    batch_sizes = []

    def step(run, inputs, *args):
        batch_sizes.append(len(inputs))
        if len(batch_sizes) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(run, inputs, *args)

    monkeypatch.setattr(loop._Training, "_forward_backward", step)
    events = events_of(tiny_model, *sample, config=CONFIG.replace(batch_size=4))
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and notices[0].step == 1
    assert notices[0].message == "out of memory: continuing with batch size 2"
    assert [e.batch_size for e in events if isinstance(e, TrainStep)] == [4, 2, 2]
    assert batch_sizes == [4, 4, 2, 2]
    assert finished(events).reason == "completed"


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory"), RuntimeError("shape mismatch")])
def test_errors_that_halving_cannot_fix_are_raised(tiny_model, sample, monkeypatch, error):
    def step(*args):
        raise error

    monkeypatch.setattr(loop._Training, "_forward_backward", step)
    with pytest.raises(type(error), match=str(error)):
        events_of(tiny_model, *sample, config=CONFIG.replace(batch_size=1))


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(tiny_model, sample):
    first = state(finished(events_of(tiny_model, *sample)).model)
    again = state(finished(events_of(tiny_model, *sample)).model)
    other = state(finished(events_of(tiny_model, *sample, config=CONFIG.replace(seed=1))).model)
    assert same_weights(first, again)
    assert not same_weights(first, other)


def test_an_anchor_keeps_a_trained_model_near_its_start(tiny_model, sample):
    trained = copy.deepcopy(tiny_model)
    trained.history.append({"kind": "pretrain", "outcome": "completed"})
    start = state(trained)

    def drift(model) -> float:
        weights = state(model)
        return float(sum(((weights[k].float() - start[k].float()) ** 2).sum() for k in start))

    def tuned(model, anchor):
        return finished(events_of(model, *sample, config=CONFIG.replace(learning_rate=1e-2, anchor=anchor))).model

    free, held = drift(tuned(trained, 0.0)), drift(tuned(trained, 60.0))
    assert 0 < held < 0.5 * free
    # learning rate x anchor >= 1 at every step: every step is undone
    pinned = dict(tuned(trained, 1e4).network.named_parameters())
    assert all(torch.allclose(pinned[k], start[k].to(pinned[k].dtype)) for k in pinned)
    assert tuned(trained, 60.0).history[-1]["config"]["anchor"] == 60.0
    # random weights (no history) hold nothing to keep: the anchor leaves them free
    assert same_weights(state(tuned(tiny_model, 1e4)), state(tuned(tiny_model, 0.0)))
    assert TrainConfig().anchor > 0  # on by default for fine-tuning


@pytest.mark.parametrize("anchor", [-1.0, float("nan"), float("inf"), "strong"])
def test_a_bad_anchor_is_refused(anchor):
    with pytest.raises(ValueError, match="anchor must be a number >= 0"):
        TrainConfig(anchor=anchor)


def test_learning_rate_warms_up_then_decays_to_five_percent():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    done = [0]
    scheduler = make_scheduler(optimizer, lambda: (done[0] + 1) / 200)
    rates = []
    for step in range(200):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        done[0] = step + 1
        scheduler.step()
    assert rates[0] == pytest.approx(1e-4)  # warm-up over 5 % = 10 steps
    assert max(rates) == pytest.approx(1e-3) and rates.index(max(rates)) == 9
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[-1] == pytest.approx(5e-5, rel=0.01)


# --------------------------------------------------------------------------------------
# validation and model files


def test_validation_scores_are_reported_and_the_best_weights_kept(tiny_model, samples, monkeypatch, tmp_path):
    (image, labels), held_out = samples
    scripted = iter([{"loss": 0.3, "ap50": 0.9, "iou": 0.8}, {"loss": 0.5, "ap50": 0.2, "iou": 0.4}])
    monkeypatch.setattr(loop, "validate", lambda model, pairs, config, diameter=None: next(scripted))
    snapshots = {}
    events = []
    config = CONFIG.replace(iterations=4)
    for event in iter_finetune(tiny_model, image, labels, validation=[held_out], config=config):
        events.append(event)
        if isinstance(event, Validation):
            snapshots[event.step] = state(event.model)
    assert [e.step for e in events if isinstance(e, Validation)] == [2, 4]
    end = finished(events)
    assert same_weights(state(end.model), snapshots[2])
    assert not same_weights(snapshots[2], snapshots[4])
    entry = end.model.history[-1]
    assert entry["validation"] == {"step": 2, "loss": 0.3, "ap50": 0.9, "iou": 0.8}
    assert (entry["kind"], entry["outcome"], entry["steps"]) == ("finetune", "completed", 4)
    assert entry["annotated_cells"] == np.unique(labels[labels > 0]).size
    loaded = nu.load_model(nu.save_model(end.model, tmp_path / "tuned.safetensors"), device="cpu")
    assert loaded.history == end.model.history
    assert same_weights(state(loaded), state(end.model))


def test_validation_measures_the_model_on_held_out_images(tiny_model, samples):
    (image, labels), held_out = samples
    events = events_of(tiny_model, image, labels, validation=[held_out], config=CONFIG.replace(iterations=2))
    (validation,) = [e for e in events if isinstance(e, Validation)]
    assert set(validation.metrics) == {"loss", "ap50", "iou"}
    assert validation.metrics["loss"] > 0
    assert 0 <= validation.metrics["ap50"] <= 1 and 0 <= validation.metrics["iou"] <= 1
    assert finished(events).model.history[-1]["validation"]["step"] == 2


def test_finetune_returns_a_model_that_segments(tiny_model_file, sample):
    image, labels = sample
    seen = []
    model = nu.finetune(tiny_model_file, image, labels, regions=[[REGION]], config=CONFIG, callback=seen.append)
    assert isinstance(model, nu.SegmentationModel)
    assert [type(e).__name__ for e in seen] == ["TrainStep"] * 3 + ["TrainFinished"]
    assert model.history[-1]["steps"] == 3
    assert nu.segment(image, model, device="cpu").shape == image.shape


def test_finetune_warns_when_training_diverged(tiny_model, sample, monkeypatch):
    poison_loss_at(monkeypatch, 1)
    start = state(tiny_model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = nu.finetune(tiny_model, *sample, config=CONFIG)
    assert [str(w.message)[:20] for w in caught if w.category is RuntimeWarning] == ["loss became nan at s"]
    assert "the starting weights" in str(caught[0].message)
    assert same_weights(state(model), start)


def test_a_time_budget_stops_within_one_step_of_it(tiny_model, sample, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: clock[0])
    original = loop._Training._forward_backward

    def step(run, *args):
        clock[0] += 7.0  # every step takes 7 s of the 60 s budget
        return original(run, *args)

    monkeypatch.setattr(loop._Training, "_forward_backward", step)
    events = events_of(tiny_model, *sample, config=CONFIG.replace(iterations=1000, minutes=1.0))
    steps = [e for e in events if isinstance(e, TrainStep)]
    assert len(steps) == 9  # 8 steps leave 4 s; the 9th uses the budget up, and training stops there
    assert steps[-1].elapsed >= 60 and steps[-2].elapsed < 60
    assert finished(events).steps == 9 and finished(events).reason == "completed"
    rates = [e.learning_rate for e in steps]
    assert rates.index(max(rates)) <= 1 and rates[-1] < 0.2 * max(rates)  # the schedule followed the time
    assert steps[0].eta <= 60


def test_the_step_budget_still_bounds_a_time_budget(tiny_model, sample):
    events = events_of(tiny_model, *sample, config=CONFIG.replace(iterations=3, minutes=60.0))
    assert [e.step for e in events if isinstance(e, TrainStep)] == [1, 2, 3]


def test_a_model_that_finds_none_of_its_cells_is_flagged(tiny_model, sample):
    end = finished(events_of(tiny_model, *sample, config=CONFIG.replace(iterations=2)))
    assert end.reason == "completed" and end.collapsed
    assert "finds none of the" in end.message
    entry = end.model.history[-1]
    assert entry["collapsed"] and entry["training_scores"]["matched"] == 0 and entry["training_scores"]["cells"] > 0
    with pytest.warns(RuntimeWarning, match="finds none of the"):
        nu.finetune(tiny_model, *sample, config=CONFIG.replace(iterations=2))


def test_a_model_that_learned_is_not_flagged(sample):
    image, labels = sample
    torch.manual_seed(0)
    model = nu.create_model("unet", depth=2, base_channels=8)
    config = TrainConfig(iterations=60, patch_size=48, batch_size=2, learning_rate=1e-2, device="cpu")
    end = finished(events_of(model, image, labels, config=config))
    scores = end.model.history[-1]["training_scores"]
    assert not end.collapsed and scores["matched"] > 0 and 0 < scores["ap50"] <= 1
