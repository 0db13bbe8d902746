"""Instance labels <-> background / interior / boundary classes."""

import warnings

import numpy as np
import pytest

import napari_unet as nu
from napari_unet.inference.labels import (
    BACKGROUND,
    BOUNDARY,
    INTERIOR,
    check_labels,
    labels_to_classes,
    probabilities_to_labels,
    sequential_labels,
    smallest_label_dtype,
)


def _probabilities(classes: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """(3, Y, X) float32 probabilities that favour ``classes`` with ``confidence``."""
    one_hot = np.stack([classes == c for c in (BACKGROUND, INTERIOR, BOUNDARY)]).astype(np.float32)
    return one_hot * confidence + (1 - one_hot) * (1 - confidence) / 2


def _two_touching_squares() -> np.ndarray:
    labels = np.zeros((40, 64), dtype=np.uint16)
    labels[8:32, 8:32] = 1
    labels[8:32, 32:56] = 2  # shares the edge x = 31 | 32 with cell 1
    return labels


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` and ``b`` are the same labelling up to renumbering."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def test_two_touching_cells_are_separated_by_their_boundary():
    truth = _two_touching_squares()
    labels = probabilities_to_labels(_probabilities(labels_to_classes(truth)))
    assert labels.shape == truth.shape
    assert labels.max() == 2
    assert _same_partition(labels, truth)


def test_without_boundary_pixels_touching_cells_merge():
    # the boundary class, not luck, is what separates them above
    classes = np.where(_two_touching_squares() > 0, INTERIOR, BACKGROUND)
    labels = probabilities_to_labels(_probabilities(classes))
    assert labels.max() == 1


def test_soft_probabilities_still_separate_touching_cells(rng):
    truth = _two_touching_squares()
    noisy = _probabilities(labels_to_classes(truth), confidence=0.7) + rng.uniform(0, 0.05, (3,) + truth.shape)
    noisy /= noisy.sum(axis=0)
    labels = probabilities_to_labels(noisy.astype(np.float32))
    assert labels.max() == 2
    for cell in (1, 2):
        # the noise may hand a corner boundary pixel, which touches both cells, to either
        found = np.bincount(labels[truth == cell]).argmax()
        overlap = np.logical_and(labels == found, truth == cell).sum()
        assert found > 0 and overlap / np.logical_or(labels == found, truth == cell).sum() > 0.99


def _disc(shape, centre, radius):
    y, x = np.indices(shape)
    return np.hypot(y - centre[0], x - centre[1]) < radius


def _two_overlapping_discs() -> np.ndarray:
    """Two discs of radius 12 whose centres are 20 px apart: one blob with a neck, no boundary."""
    labels = np.zeros((40, 70), dtype=np.uint8)
    labels[_disc(labels.shape, (20, 25), 12)] = 1
    labels[_disc(labels.shape, (20, 45), 12) & (labels == 0)] = 2
    return labels


def test_distance_seeds_split_touching_cells_the_network_missed():
    # the network saw one blob (interior everywhere, no boundary between the cells)
    truth = _two_overlapping_discs()
    probabilities = _probabilities(np.where(truth > 0, INTERIOR, BACKGROUND))
    assert probabilities_to_labels(probabilities, seeds="interior").max() == 1
    labels = probabilities_to_labels(probabilities, seeds="distance")
    assert labels.max() == 2
    for cell in (1, 2):
        found = np.bincount(labels[truth == cell]).argmax()
        overlap = np.logical_and(labels == found, truth == cell).sum()
        assert found > 0 and overlap / np.logical_or(labels == found, truth == cell).sum() > 0.9


def test_distance_is_the_default_seeding():
    probabilities = _probabilities(np.where(_two_overlapping_discs() > 0, INTERIOR, BACKGROUND))
    np.testing.assert_array_equal(probabilities_to_labels(probabilities),
                                  probabilities_to_labels(probabilities, seeds="distance"))


@pytest.mark.parametrize("seeds", ["distance", "interior"])
def test_a_rod_without_a_neck_stays_one_cell(seeds):
    classes = np.zeros((40, 100), dtype=np.uint8)
    classes[14:26, 10:90] = INTERIOR
    assert probabilities_to_labels(_probabilities(classes), seeds=seeds).max() == 1


def test_distance_seeds_per_object_equal_whole_plane_h_maxima(rng):
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima

    from napari_unet.inference.labels import _h_maxima_by_object

    blobs = ndi.gaussian_filter(rng.random((120, 150)), 3) > 0.5
    surface = ndi.gaussian_filter(ndi.distance_transform_edt(blobs), 1.0)
    surface[~ndi.binary_dilation(blobs, iterations=3)] = 0
    assert ndi.label(surface > 0)[1] > 3
    np.testing.assert_array_equal(_h_maxima_by_object(surface, 1.0), h_maxima(surface, 1.0).astype(bool))


def test_unknown_seeds_are_refused():
    with pytest.raises(ValueError, match="seeds must be one of 'distance', 'interior', got 'watershed'"):
        probabilities_to_labels(_probabilities(np.zeros((8, 8), np.uint8)), seeds="watershed")


def test_segment_refuses_unknown_seeds_before_predicting(tiny_model, monkeypatch):
    from napari_unet.inference import segment

    monkeypatch.setattr(segment, "predict_plane_tiles", lambda *a, **k: pytest.fail("predicted"))
    with pytest.raises(ValueError, match="seeds must be one of"):
        nu.segment(np.zeros((16, 16), np.float32), tiny_model, seeds="neck")


def _predicts_two_overlapping_discs(monkeypatch):
    """Make every prediction the blob of :func:`_two_overlapping_discs` (no boundary)."""
    from napari_unet.inference import segment

    probabilities = _probabilities(np.where(_two_overlapping_discs() > 0, INTERIOR, BACKGROUND))

    def predicted(source, runner, tiles, geometry):
        for tile in tiles:
            yield tile, probabilities[:, tile.y, tile.x]

    monkeypatch.setattr(segment, "predict_plane_tiles", predicted)
    return np.zeros(probabilities.shape[1:], np.float32)


@pytest.mark.parametrize("seeds, cells", [("distance", 2), ("interior", 1)])
def test_segment_passes_seeds_on(seeds, cells, tiny_model, monkeypatch):
    image = _predicts_two_overlapping_discs(monkeypatch)
    assert nu.segment(image, tiny_model, device="cpu", seeds=seeds).max() == cells


@pytest.mark.parametrize("min_size, kept", [(1, 2), (9, 2), (10, 1), (15, 1), (400, 1), (401, 0)])
def test_objects_below_min_size_are_removed(min_size, kept):
    classes = np.zeros((40, 40), dtype=np.uint8)
    classes[2:22, 2:22] = INTERIOR  # 400 px
    classes[30:33, 30:33] = INTERIOR  # 9 px
    labels = probabilities_to_labels(_probabilities(classes), min_size=min_size)
    assert labels.max() == kept
    if kept == 1:
        assert (labels > 0).sum() == 400


def test_labels_are_sequential_from_one():
    classes = np.zeros((30, 90), dtype=np.uint8)
    for start in range(2, 80, 11):
        classes[5:25, start:start + 6] = INTERIOR
    classes[1:3, 9:11] = INTERIOR  # a 4-px speck, first in raster order, dropped by min_size
    labels = probabilities_to_labels(_probabilities(classes), min_size=10)
    assert np.array_equal(np.unique(labels), np.arange(0, 9))
    assert labels[15, 4] == 1 and labels[15, 15] == 2  # numbered in raster order, no gap


def test_sequential_labels_closes_gaps_for_dense_and_sparse_ids():
    dense = np.array([[0, 5, 5], [9, 0, 200]])
    assert np.array_equal(sequential_labels(dense), [[0, 1, 1], [2, 0, 3]])
    sparse = np.array([[0, 10**9], [7, 10**9]], dtype=np.uint64)  # max id >> pixel count
    relabelled = sequential_labels(sparse)
    assert np.array_equal(relabelled, [[0, 2], [1, 2]]) and relabelled.dtype == np.uint8


def test_sequential_labels_of_a_bool_mask_is_one_object():
    mask = np.array([[False, True], [True, True]])
    assert np.array_equal(sequential_labels(mask), [[0, 1], [1, 1]])


@pytest.mark.parametrize("count, dtype", [
    (0, np.uint8), (255, np.uint8), (256, np.uint16), (65_535, np.uint16), (65_536, np.uint32),
    (2**32 - 1, np.uint32), (2**32, np.uint64),
])
def test_smallest_label_dtype(count, dtype):
    assert smallest_label_dtype(count) == np.dtype(dtype)


@pytest.mark.parametrize("rows, dtype", [(10, np.uint8), (17, np.uint8), (20, np.uint16)])
def test_labels_use_the_smallest_dtype_for_their_count(rows, dtype):
    # rows x 15 separate 4x4 cells: 150, 255 and 300 objects
    classes = np.zeros((rows * 6, 15 * 6), dtype=np.uint8)
    for y in range(rows):
        for x in range(15):
            classes[y * 6 + 1:y * 6 + 5, x * 6 + 1:x * 6 + 5] = INTERIOR
    labels = probabilities_to_labels(_probabilities(classes), min_size=1)
    assert labels.dtype == dtype
    assert int(labels.max()) == rows * 15


def test_a_stack_is_labelled_plane_by_plane_in_one_dtype():
    first = _probabilities(labels_to_classes(_two_touching_squares()))
    empty = _probabilities(np.zeros((40, 64), dtype=np.uint8))
    labels = probabilities_to_labels(np.stack([first, empty, first], axis=1))
    assert labels.shape == (3, 40, 64) and labels.dtype == np.uint8
    assert [int(plane.max()) for plane in labels] == [2, 0, 2]


def test_labels_to_classes_marks_a_one_pixel_boundary():
    labels = np.zeros((8, 8), dtype=np.int32)
    labels[2:6, 2:6] = 3
    classes = labels_to_classes(labels)
    assert classes.dtype == np.uint8
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[2:6, 2:6] = BOUNDARY
    expected[3:5, 3:5] = INTERIOR
    assert np.array_equal(classes, expected)


def test_labels_to_classes_divides_touching_cells_and_keeps_its_input():
    labels = _two_touching_squares()
    before = labels.copy()
    classes = labels_to_classes(labels)
    assert np.array_equal(labels, before)
    assert (classes[8:32, 31] == BOUNDARY).all() and (classes[8:32, 32] == BOUNDARY).all()
    assert (classes[9:31, 9:31] == INTERIOR).all() and (classes[9:31, 33:55] == INTERIOR).all()
    assert (classes[labels == 0] == BACKGROUND).all()


def test_labels_to_classes_does_not_treat_the_image_edge_as_a_cell_border():
    # a cell cut by the image edge continues outside: its edge pixels stay interior
    labels = np.zeros((6, 6), dtype=np.uint8)
    labels[:, :3] = 1
    classes = labels_to_classes(labels)
    assert (classes[:, 0] == INTERIOR).all() and (classes[:, 2] == BOUNDARY).all()


def test_labels_to_classes_round_trips_through_probabilities():
    truth = np.zeros((48, 48), dtype=np.uint8)
    truth[4:20, 4:20], truth[4:20, 20:36], truth[24:44, 10:40] = 1, 2, 3  # 1 | 2 touch, 3 apart
    labels = probabilities_to_labels(_probabilities(labels_to_classes(truth)))
    assert _same_partition(labels, truth)


@pytest.mark.parametrize("labels, kwargs, message", [
    (np.array([[0.0, 1.5]]), {}, r"labels must hold integers .* values with fractions \(e.g. 1.5\)"),
    (np.array([[0.0, np.nan]]), {}, "labels must hold integers .* NaN or infinite"),
    (np.array([[1.0, np.inf]], dtype=np.float32), {}, "NaN or infinite"),
    (np.array([[0, -3]]), {}, r"labels must not be negative \(min -3\)"),
    (np.array([["a"]]), {}, "labels must hold integers .* dtype <U1"),
    (np.zeros((4,), dtype=np.uint8), {"ndim": 2}, r"labels must be 2-D \(Y, X\), got shape \(4,\)"),
    (np.zeros((2, 4, 4), dtype=np.uint8), {"ndim": 2, "name": "truth"}, r"truth must be 2-D \(Y, X\)"),
    (np.array([[0, -1]]), {"name": "validation labels"}, "validation labels must not be negative"),
])
def test_check_labels_refuses_with_the_reason(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels, **kwargs)


@pytest.mark.parametrize("labels", [np.zeros((3, 4, 4), dtype=np.uint8), np.array([[0.5]])])
def test_labels_to_classes_checks_its_input(labels):
    with pytest.raises(ValueError, match="labels must"):
        labels_to_classes(labels)


@pytest.mark.parametrize("labels, dtype", [
    (np.array([[True, False]]), np.uint8),
    (np.array([[0.0, 2.0]], dtype=np.float32), np.int64),
    (np.array([[0, 2]], dtype=np.uint16), np.uint16),
    (np.array([[0, 2]], dtype=np.int8), np.int8),
])
def test_check_labels_accepts_masks_and_whole_numbers(labels, dtype):
    checked = check_labels(labels)
    assert checked.dtype == dtype and np.array_equal(checked, [[int(v) for v in labels[0]]])


@pytest.mark.parametrize("probabilities, message", [
    (np.zeros((2, 8, 8)), r"must be \(3, Y, X\) or \(3, Z, Y, X\).*got shape \(2, 8, 8\)"),
    (np.zeros((3, 8)), r"got shape \(3, 8\)"),
    (np.full((3, 8, 8), np.nan), "NaN or infinite"),
])
def test_bad_probabilities_are_refused(probabilities, message):
    with pytest.raises(ValueError, match=message):
        probabilities_to_labels(probabilities)


@pytest.mark.parametrize("threshold", [0, 1, -0.5, 1.5])
def test_threshold_outside_the_open_unit_interval_is_refused(threshold):
    with pytest.raises(ValueError, match=f"threshold must be in \\(0, 1\\), got {threshold}"):
        probabilities_to_labels(np.zeros((3, 8, 8)), threshold=threshold)


@pytest.mark.parametrize("value", [0.0, 1 / 3, 1.0])
def test_constant_probabilities_give_valid_labels_without_warnings(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = probabilities_to_labels(np.full((3, 16, 16), value, dtype=np.float32))
    assert labels.dtype == np.uint8 and labels.max() <= 1


@pytest.mark.parametrize("image", [
    np.full((24, 24), 7.0, dtype=np.float32),
    np.zeros((24, 24), dtype=np.uint16),
    np.where(np.eye(24, dtype=bool), np.nan, 1.0),
])
def test_constant_or_nan_images_segment_to_integer_labels(image, tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numerical warning (divide by zero, NaN) ...
        warnings.filterwarnings("ignore", message="the objects cover")  # ... an untrained model may cover all
        labels = nu.segment(image, tiny_model, device="cpu")
    assert labels.shape == image.shape and labels.dtype.kind == "u"
    cells = np.unique(labels[labels > 0])
    assert np.array_equal(cells, np.arange(1, cells.size + 1))


def _spheres(shape=(9, 60, 70), seed=0):
    """Touching and separate balls in a volume, and each plane labelled on its own (shuffled ids)."""

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    volume = np.zeros(shape, np.int32)
    for k, (z, y, x, r) in enumerate([(4, 15, 15, 9), (4, 15, 33, 9), (3, 45, 50, 7), (6, 40, 20, 8)], start=1):
        volume[((zz - z) * 2) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= r * r] = k  # z step = 2 pixels
    planes = []
    for plane in volume:
        ids = np.unique(plane[plane > 0])
        mapping = np.zeros(int(volume.max()) + 1, np.int32)
        mapping[ids] = rng.permutation(len(ids)) + 1
        planes.append(mapping[plane])
    return volume, planes


def test_stitching_follows_each_cell_through_the_planes():
    from napari_unet.inference.labels import stitch_planes
    from napari_unet.metrics import match_instances

    volume, planes = _spheres()
    stitched = stitch_planes(planes)
    assert stitched.shape == volume.shape and len(np.unique(stitched)) - 1 == volume.max()
    # the same partition of the voxels as the true 3-D cells
    result = match_instances(stitched, volume, threshold=0.99)
    assert (result.tp, result.fp, result.fn) == (4, 0, 0)


def test_stitching_never_joins_separate_cells_of_neighbouring_planes():
    from napari_unet.inference.labels import stitch_planes

    first = np.zeros((20, 20), np.uint8)
    first[2:8, 2:8] = 1
    second = np.zeros((20, 20), np.uint8)
    second[12:18, 12:18] = 1  # elsewhere: another cell
    second[7:9, 7:9] = 2  # a corner touching the first: too small an overlap of the larger
    stitched = stitch_planes([first, second])
    assert len(np.unique(stitched)) - 1 == 3
    with pytest.raises(ValueError, match="min_overlap"):
        stitch_planes([first, second], min_overlap=0)


def test_segment_gives_3d_objects_for_z_and_frames_for_t(tiny_model, monkeypatch):
    from napari_unet.inference import segment as segmenting

    volume, _ = _spheres()
    classes = np.where(volume > 0, INTERIOR, BACKGROUND)
    plane_index = iter(range(10**6))
    probabilities = [_probabilities(plane) for plane in classes]

    def predicted(source, runner, tiles, geometry):
        current = probabilities[next(plane_index) % len(probabilities)]
        for tile in tiles:
            yield tile, current[:, tile.y, tile.x]

    monkeypatch.setattr(segmenting, "predict_plane_tiles", predicted)
    stack = np.zeros(volume.shape, np.float32)
    labels = nu.segment(stack, tiny_model, device="cpu", axes="ZYX", min_size=1)
    assert len(np.unique(labels)) - 1 == 4  # cells, not per-plane outlines
    frames = nu.segment(stack, tiny_model, device="cpu", axes="TYX", min_size=1)
    assert all(set(np.unique(f)) - {0} == set(range(1, int(f.max()) + 1)) for f in frames)
    assert len(np.unique(frames)) - 1 < sum(int(f.max()) for f in frames)
    flat = nu.segment(stack, tiny_model, device="cpu", axes="ZYX", min_size=1, stitch=False)
    np.testing.assert_array_equal(flat, frames)


def test_a_stricter_foreground_threshold_draws_cells_tighter():
    yy, xx = np.indices((40, 40))
    radius = np.hypot(yy - 20, xx - 20)
    probabilities = np.zeros((3, 40, 40), np.float32)
    probabilities[1] = np.clip(1.2 - radius / 8, 0, 1)  # interior fading out from the centre
    probabilities[0] = 1 - probabilities[1]
    loose = probabilities_to_labels(probabilities, min_size=1)
    tight = probabilities_to_labels(probabilities, min_size=1, foreground=0.8)
    assert loose.max() == tight.max() == 1
    assert np.count_nonzero(tight) < np.count_nonzero(loose)
    assert not (tight & ~loose.astype(bool)).any()
    with pytest.raises(ValueError, match="foreground must be in"):
        probabilities_to_labels(probabilities, foreground=1.0)


def test_segment_uses_the_models_calibrated_labelling_unless_told_otherwise(tiny_model, monkeypatch):
    from napari_unet.config import Labelling
    from napari_unet.inference import segment as segmenting

    seen = []
    original = segmenting.probabilities_to_labels
    monkeypatch.setattr(segmenting, "probabilities_to_labels",
                        lambda p, **options: seen.append(options) or original(p, **options))
    tiny_model.labelling = Labelling(threshold=0.3, foreground=0.8, split_depth=2.5, min_size=7)
    nu.segment(np.zeros((24, 24), np.float32), tiny_model, device="cpu")
    nu.segment(np.zeros((24, 24), np.float32), tiny_model, device="cpu", foreground=0.6, split_depth=0.5,
               min_size=3)
    assert seen[0] == {"threshold": 0.3, "foreground": 0.8, "split_depth": 2.5, "min_size": 7, "seeds": "distance"}
    assert seen[1] == {"threshold": 0.3, "foreground": 0.6, "split_depth": 0.5, "min_size": 3, "seeds": "distance"}


def test_split_depth_decides_whether_a_dumbbell_is_one_cell_or_two():
    yy, xx = np.mgrid[:40, :60]
    # two overlapping discs of radius 10 and 8: a neck a little narrower than the smaller one
    cell = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 100) | ((yy - 20) ** 2 + (xx - 36) ** 2 <= 64)
    probabilities = np.zeros((3, 40, 60), np.float32)
    probabilities[0] = ~cell
    probabilities[1] = cell
    assert probabilities_to_labels(probabilities, split_depth=0.5).max() == 2
    assert probabilities_to_labels(probabilities, split_depth=6.0).max() == 1
    with pytest.raises(ValueError, match="split_depth must be a positive number"):
        probabilities_to_labels(probabilities, split_depth=-1)


def test_a_given_min_size_is_converted_to_the_models_grid_and_the_rest_kept():
    from napari_unet.config import Labelling

    calibrated = Labelling(threshold=0.3, foreground=0.8, split_depth=2.0, min_size=50)
    assert nu.SegmentConfig().labelling(calibrated, 0.5) == calibrated
    assert nu.SegmentConfig(min_size=20).labelling(calibrated, 0.5) == Labelling(0.3, 0.8, 2.0, 5)
    assert nu.SegmentConfig(min_size=20, threshold=0.6).labelling(calibrated, 2.0) == Labelling(0.6, 0.8, 2.0, 80)
