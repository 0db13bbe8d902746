"""Self-training (TrainConfig.confident_cells): the starting model's confident predictions
outside the user's annotation are learned too, never near the annotation nor where the
held-out cells are scored, and only objects and background the model is sure of."""

import numpy as np
import pytest

from napari_unet.config import TrainConfig
from napari_unet.training import loop, pseudo
from napari_unet.training.annotations import check_annotations
from napari_unet.training.pseudo import RING, add_confident_cells, confident_labels


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1]) < radius


def _predicted(shape, discs):
    """Probabilities and labels of discs ``(centre, radius, interior probability)``; the
    background is sure (0.97) away from them."""
    probabilities = np.zeros((3,) + shape, np.float32)
    probabilities[0] = 0.97
    probabilities[1] = 0.02
    probabilities[2] = 0.01
    labels = np.zeros(shape, np.int32)
    for index, (centre, radius, interior) in enumerate(discs, start=1):
        disc = _disc(shape, centre, radius)
        labels[disc] = index
        probabilities[:, disc] = np.array([[(1 - interior) / 2], [interior], [(1 - interior) / 2]])
    return probabilities, labels


def test_only_sure_objects_and_sure_background_away_from_the_rest_count():
    probabilities, labels = _predicted((80, 80), [((20, 20), 8, 0.95), ((55, 55), 8, 0.6)])
    kept, counts = confident_labels(probabilities, labels)
    assert set(np.unique(kept)) == {0, 1}
    assert counts[labels == 1].all() and not counts[labels == 2].any()
    # the unsure object's surroundings stay unknown, the sure one has its ring of background
    near_unsure = _disc((80, 80), (55, 55), 8 + RING) & ~(labels == 2)
    assert not counts[near_unsure].any()
    assert counts[_disc((80, 80), (20, 20), 8 + RING - 0.5)].all()
    # background the model is not sure of is not taught either
    probabilities[0, :, 70:] = 0.8
    assert not confident_labels(probabilities, labels)[1][:, 70:].any()


def test_additions_keep_clear_of_the_annotation_and_the_held_out_window():
    shape = (96, 160)
    probabilities, labels = _predicted(shape, [((20, 40), 7, 0.95), ((20, 100), 7, 0.95), ((70, 130), 7, 0.95),
                                               ((70, 30), 7, 0.95)])
    user = np.zeros(shape, np.int32)
    user[_disc(shape, (20, 12), 6)] = 5
    annotated = np.zeros(shape, bool)
    annotated[:40, :25] = True
    item = check_annotations(np.zeros(shape, np.float32), user, [annotated])[0]
    keep_out = np.zeros(shape, bool)
    keep_out[60:80, 120:160] = True  # the held-out window cuts the third object
    added = add_confident_cells(item, probabilities, labels, diameter=14.0, keep_out=keep_out)
    # the user's labels and region are unchanged; new ids never reuse the user's
    assert (added.labels[annotated] == item.labels[annotated]).all() and added.annotated[annotated].all()
    assert set(np.unique(added.labels)) == {0, 5, 5 + 2, 5 + 4}
    # nothing within a diameter of the annotation: the first object (15 px from it) is left out whole
    from scipy import ndimage

    near = ndimage.distance_transform_edt(~annotated) <= 14
    assert not (added.annotated & near & ~annotated).any()
    assert not added.annotated[labels == 1].any()
    # nothing in the held-out window, and the object it cuts is dropped whole
    assert not added.annotated[keep_out].any() and not added.annotated[labels == 3].any()
    assert (added.labels[labels == 2] == 7).all() and (added.labels[labels == 4] == 9).all()


def test_fine_tuning_learns_the_confident_cells_but_not_where_cells_are_held_out(tiny_model, monkeypatch):
    from napari_unet.inference import segment as segment_module
    from napari_unet.synth import SynthConfig, synth_image

    tiny_model.history.append({"kind": "pretrain", "outcome": "completed"})
    image, truth = synth_image(np.random.default_rng(5), SynthConfig(shape=(128, 192), coverage=(0.3, 0.4)))
    region = (0, 128, 0, 96)  # the user painted the left half
    painted = np.zeros_like(truth)
    painted[:, :96] = truth[:, :96]
    probabilities, _ = _predicted(truth.shape, [])
    sure = np.isin(truth, np.unique(truth[:, 150:]))  # the model is sure of the cells far right
    probabilities[:, truth > 0] = np.array([[0.3], [0.5], [0.2]])
    probabilities[:, sure & (truth > 0)] = np.array([[0.02], [0.96], [0.02]])
    calls = []

    def predicted(image, model, **options):
        calls.append(options)
        return probabilities

    monkeypatch.setattr(segment_module, "predict_probabilities", predicted)
    keep_outs = []

    def recorded(item, probabilities, labels, diameter, keep_out=None):
        keep_outs.append(keep_out)
        return pseudo.add_confident_cells.__wrapped__(item, probabilities, labels, diameter, keep_out)

    recorded.__wrapped__ = pseudo.add_confident_cells
    monkeypatch.setattr(pseudo, "add_confident_cells", recorded)
    monkeypatch.setattr(loop, "prepare_annotations", lambda model, images, labels, regions, config, factor:
                        [type("A", (), {"labels": l, "annotated": r})() for l, r in zip(labels, regions)])
    monkeypatch.setattr(loop, "PatchSampler", lambda *args: type("S", (), {"batches": lambda *a: iter(())})())
    config = TrainConfig(iterations=2, device="cpu", confident_cells=True)
    run = loop._Training(tiny_model, [image], [painted], [[region]], None, config, None, None)
    learned = run.annotations[0]
    assert calls and learned.annotated[:, 150:].any()
    # the cells it is not sure of, and the held-out window, are not learned from
    unsure = (truth > 0) & ~sure & ~np.isin(truth, np.unique(truth[:, :96]))
    assert not learned.annotated[unsure].any()
    window = np.zeros(truth.shape, bool)
    window[run.held_out.window] = True
    assert len(keep_outs) == 1 and (keep_outs[0] == window).all()
    assert not (learned.annotated & window & ~(np.arange(192) < 96)[None, :]).any()
    # without the option (or with random weights) nothing is predicted or added
    calls.clear()
    plain = loop._Training(tiny_model, [image], [painted], [[region]], None, config.replace(confident_cells=False),
                           None, None)
    assert not calls and not plain.annotations[0].annotated[:, 96:].any()


def test_the_option_is_checked():
    with pytest.raises(ValueError, match="confident_cells"):
        TrainConfig(confident_cells="yes")
