"""Lazy (dask) prediction equals the eager one; chunked labels agree across chunk borders."""

import dask.array as da
import numpy as np
import pytest

import napari_unet as nu
from napari_unet.inference.labels import labels_to_classes, probabilities_to_labels
from napari_unet.inference.chunked import ModelPayload, _worker_model, label_lazy, predict_lazy, segment_lazy
from napari_unet.synth import SynthConfig, synth_dataset


@pytest.mark.parametrize("options", [{}, {"padding": "same"}, {"upsampling": "bilinear"}])
@pytest.mark.parametrize("shape, chunk, tile", [
    ((100, 130), 32, 16),   # last chunk narrower than the network context
    ((7, 300), 64, None),
    ((1, 1), 16, None),
    ((3, 40, 50), 16, 16),  # stack: one chunk per plane
    ((60, 70, 3), 32, None),  # RGB
])
def test_lazy_equals_eager(options, shape, chunk, tile, rng):
    model = nu.create_model("unet", depth=2, base_channels=8, **options)
    image = rng.random(shape).astype(np.float32)
    axes = "ZYX" if len(shape) == 3 and shape[-1] != 3 else None
    eager = nu.predict_probabilities(image, model, tile_size=tile, device="cpu", axes=axes)
    lazy = predict_lazy(image, model, chunk_size=chunk, tile_size=tile, device="cpu", axes=axes)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5)


def test_lazy_reads_a_dask_source_in_chunks(tiny_model, rng):
    image = rng.integers(0, 4000, (90, 120)).astype(np.uint16)
    source = da.from_array(image, chunks=23)
    lazy = predict_lazy(source, tiny_model, chunk_size=32, device="cpu")
    assert len(lazy.chunks[1]) > 1 and len(lazy.chunks[2]) > 1
    one_chunk = lazy[:, :32, :32].compute()
    np.testing.assert_allclose(one_chunk, nu.predict_probabilities(image, tiny_model, device="cpu")[:, :32, :32],
                               atol=1e-5)


def test_lazy_refuses_bad_chunk_size(tiny_model):
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        predict_lazy(np.zeros((16, 16)), tiny_model, chunk_size=0)


def test_model_payload_round_trips_through_the_checked_loader(tiny_model, rng):
    payload = ModelPayload.from_model(tiny_model)
    assert payload.data[8:9] == b"{"  # a safetensors header, not a pickle
    loaded = _worker_model(payload, "cpu")
    assert loaded is _worker_model(payload, "cpu")  # cached per process
    image = rng.random((40, 40)).astype(np.float32)
    np.testing.assert_allclose(nu.predict_probabilities(image, loaded, device="cpu"),
                               nu.predict_probabilities(image, tiny_model, device="cpu"), atol=1e-6)


def _one_hot(labels):
    return np.moveaxis(np.eye(3, dtype=np.float32)[labels_to_classes(labels)], -1, 0)


@pytest.mark.parametrize("chunk, overlap", [(40, 32), (64, 48), (57, 40)])
def test_chunked_labels_match_whole_image_labels(chunk, overlap):
    (_, truth), = synth_dataset(1, seed=3, config=SynthConfig(shape=(200, 230)))
    probabilities = _one_hot(truth)
    eager = probabilities_to_labels(probabilities)
    lazy = label_lazy(da.from_array(probabilities, chunks=(3, chunk, chunk)), overlap=overlap).compute()
    assert lazy.dtype == np.uint32
    assert len(np.unique(lazy)) == len(np.unique(eager))  # no cell cut in two, none merged
    # each whole-image cell is one chunked cell (ties in the watershed may move single pixels)
    for cell in range(1, eager.max() + 1):
        ids, counts = np.unique(lazy[eager == cell], return_counts=True)
        assert counts.max() >= 0.98 * counts.sum(), (cell, ids, counts)
    majority = [np.bincount(lazy[eager == cell].astype(np.int64)).argmax() for cell in range(1, eager.max() + 1)]
    assert len(set(majority)) == eager.max()  # no id shared by two cells


def test_chunked_labels_of_a_stack_are_per_plane():
    pairs = synth_dataset(2, seed=5, config=SynthConfig(shape=(96, 96)))
    probabilities = np.stack([_one_hot(labels) for _, labels in pairs], axis=1)
    lazy = label_lazy(da.from_array(probabilities, chunks=(3, 1, 48, 48)), overlap=32).compute()
    assert lazy.shape == (2, 96, 96)
    for plane, (_, labels) in enumerate(pairs):
        assert len(np.unique(lazy[plane])) == len(np.unique(probabilities_to_labels(probabilities[:, plane])))


def test_label_lazy_refuses_bad_input():
    with pytest.raises(ValueError, match=r"probabilities must be \(3, Y, X\)"):
        label_lazy(da.zeros((2, 10, 10)))
    with pytest.raises(ValueError, match="overlap must be a non-negative integer"):
        label_lazy(da.zeros((3, 10, 10)), overlap=-1)
    with pytest.raises(ValueError, match="seeds must be one of"):
        label_lazy(da.zeros((3, 10, 10)), seeds="neck")


def test_label_lazy_passes_seeds_on():
    # two overlapping discs predicted as one blob: only distance seeds split them
    y, x = np.indices((60, 140))
    blob = (np.hypot(y - 30, x - 55) < 12) | (np.hypot(y - 30, x - 75) < 12)  # across the chunk border at 64
    probabilities = np.stack([~blob, blob, np.zeros_like(blob)]).astype(np.float32)
    for seeds, cells in (("distance", 2), ("interior", 1)):
        lazy = label_lazy(da.from_array(probabilities, chunks=(3, 64, 64)), overlap=48, seeds=seeds).compute()
        assert len(np.unique(lazy)) - 1 == cells


def test_label_lazy_and_segment_lazy_use_the_split_depth():
    # a dumbbell across the chunk border: a neck 4 px thinner than the smaller disc
    y, x = np.indices((60, 140))
    blob = (np.hypot(y - 30, x - 56) < 11) | (np.hypot(y - 30, x - 74) < 9)
    probabilities = np.stack([~blob, blob, np.zeros_like(blob)]).astype(np.float32)
    counts = {depth: len(np.unique(label_lazy(da.from_array(probabilities, chunks=(3, 64, 64)), overlap=48,
                                              split_depth=depth).compute())) - 1
              for depth in (0.5, 8.0)}
    assert counts == {0.5: 2, 8.0: 1}


def test_segment_lazy_takes_the_models_labelling(tiny_model, monkeypatch):
    from napari_unet.inference import chunked

    seen = []
    monkeypatch.setattr(chunked, "label_lazy", lambda probabilities, **options: seen.append(options) or
                        da.zeros(probabilities.shape[1:], dtype=np.uint32, chunks=probabilities.chunks[1:]))
    tiny_model.labelling = nu.Labelling(threshold=0.3, foreground=0.8, split_depth=2.5, min_size=7)
    segment_lazy(np.zeros((40, 40), np.float32), tiny_model, device="cpu", overlap=8)
    segment_lazy(np.zeros((40, 40), np.float32), tiny_model, device="cpu", overlap=8, split_depth=0.5, min_size=3)
    common = {"overlap": 8, "seeds": "distance", "threshold": 0.3, "foreground": 0.8}
    assert seen == [common | {"split_depth": 2.5, "min_size": 7}, common | {"split_depth": 0.5, "min_size": 3}]


def test_segment_lazy_gives_labels_of_the_image_shape(tiny_model, rng):
    image = rng.random((70, 90)).astype(np.float32)
    labels = segment_lazy(image, tiny_model, chunk_size=32, overlap=16, device="cpu")
    assert labels.shape == image.shape and labels.dtype.kind == "u"
    assert labels.compute().shape == image.shape


def test_huge_planes_are_segmented_chunk_by_chunk(tiny_model, rng, monkeypatch):
    from napari_unet.inference import chunked
    from napari_unet.inference.labels import sequential_labels

    image = (rng.random((150, 170)) * 1000).astype(np.uint16)
    calls = []
    original = chunked.segment_plane_chunked
    monkeypatch.setattr(chunked, "segment_plane_chunked",
                        lambda *args, **options: calls.append(1) or original(*args, **options))
    labels = nu.segment(image, tiny_model, device="cpu", chunked_above=100 * 100, chunk_size=64)
    assert calls
    expected = sequential_labels(segment_lazy(image, tiny_model, device="cpu", chunk_size=64).compute())
    np.testing.assert_array_equal(labels, expected)


def test_chunked_planes_keep_their_probabilities_predicted_once(tiny_model, rng, monkeypatch):
    from napari_unet.events import PlaneDone
    from napari_unet.inference import chunked

    tiny_model.diameter = 20.0
    image = rng.random((150, 170)).astype(np.float32)
    options = dict(device="cpu", precision="fp32", diameter=26.0, chunk_size=64)
    blocks = []
    original = chunked._network_probabilities
    monkeypatch.setattr(chunked, "_network_probabilities", lambda *a, **k: blocks.append(1) or original(*a, **k))
    done = [e for e in nu.iter_segment(image, tiny_model, keep_probabilities=True, chunked_above=50 * 50, **options)
            if isinstance(e, PlaneDone)][0]
    chunks = len(blocks)
    blocks.clear()
    labels = nu.segment(image, tiny_model, chunked_above=50 * 50, **options)
    assert chunks == len(blocks) > 1  # the probabilities cost no second prediction
    np.testing.assert_array_equal(done.labels, labels)
    expected = nu.predict_probabilities(image, tiny_model, device="cpu", precision="fp32", diameter=26.0)
    np.testing.assert_allclose(done.probabilities, expected, atol=1e-5)


def test_rescaled_chunks_read_only_what_they_borrow(tiny_model, rng):
    """Chunks of a rescaled image, with several tiles each: the tiles stay within the context
    a chunk borrows from its neighbours, and the result is the eager one."""
    tiny_model.diameter = 20.0
    image = rng.random((300, 330)).astype(np.float32)
    for diameter in (11.0, 13.5, 37.0):
        eager = nu.predict_probabilities(image, tiny_model, device="cpu", precision="fp32", diameter=diameter,
                                         tile_size=48)
        lazy = predict_lazy(image, tiny_model, device="cpu", precision="fp32", diameter=diameter, tile_size=48,
                            chunk_size=96)
        assert len(lazy.chunks[1]) > 1
        np.testing.assert_array_equal(lazy.compute(), eager)


def test_small_chunks_fold_into_a_neighbour_at_either_end():
    from napari_unet.inference.chunk_labels import _merge_small_chunks

    assert _merge_small_chunks((10, 50), 16) == (60,)  # the first chunk is the small one
    assert _merge_small_chunks((50, 10), 16) == (60,)
    assert _merge_small_chunks((40, 5, 40), 16) == (45, 40)
    assert _merge_small_chunks((64, 64), 16) == (64, 64)
