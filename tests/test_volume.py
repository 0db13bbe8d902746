"""Z stacks labelled as one volume (3-D distances and watershed) against linking the planes."""

import numpy as np
import pytest

import napari_unet as nu
from napari_unet.inference.labels import BACKGROUND, INTERIOR, probabilities_to_labels, stitch_planes
from napari_unet.metrics import match_instances

from test_labels import _probabilities, _spheres


def _stacked_pair(z_step: float = 1.0) -> np.ndarray:
    """Two balls of radius 9 (in pixels of the planes) stacked along z, overlapping at a neck:
    every plane shows one disc, so only their extent in z tells them apart."""
    depth = int(round(40 / z_step))
    zz, yy, xx = np.indices((depth, 32, 32))
    volume = np.zeros(zz.shape, np.int32)
    for k, centre in enumerate((11.0, 27.0), start=1):
        inside = ((zz * z_step - centre) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 <= 81) & (volume == 0)
        volume[inside] = k
    return volume


def _volume_probabilities(volume: np.ndarray) -> np.ndarray:
    """(3, Z, Y, X): interior inside every cell, no boundary predicted between them."""
    classes = np.where(volume > 0, INTERIOR, BACKGROUND)
    return np.stack([_probabilities(plane) for plane in classes], axis=1)


@pytest.mark.parametrize("z_step", [1.0, 2.0])
def test_a_volume_splits_cells_stacked_in_z_that_linked_planes_merge(z_step):
    volume = _stacked_pair(z_step)
    probabilities = _volume_probabilities(volume)
    labels = probabilities_to_labels(probabilities, min_size=1, z_step=z_step)
    result = match_instances(labels, volume, threshold=0.8)
    assert (result.tp, result.fp, result.fn) == (2, 0, 0)
    planes = probabilities_to_labels(probabilities, min_size=1)
    assert len(np.unique(stitch_planes(list(planes)))) - 1 == 1  # one disc per plane: linked into one


def test_a_volume_keeps_separate_and_side_by_side_cells():
    volume, _ = _spheres()  # four balls with a z step of 2 pixels, two touching side by side
    classes = np.where(volume > 0, INTERIOR, BACKGROUND)
    probabilities = np.stack([_probabilities(plane) for plane in classes], axis=1)
    labels = probabilities_to_labels(probabilities, min_size=1, z_step=2.0)
    result = match_instances(labels, volume, threshold=0.8)
    assert (result.tp, result.fp, result.fn) == (4, 0, 0)


def test_z_step_needs_a_stack_and_a_positive_number():
    probabilities = _volume_probabilities(_stacked_pair())
    with pytest.raises(ValueError, match="z_step"):
        probabilities_to_labels(probabilities[:, 0], z_step=1.0)
    with pytest.raises(ValueError, match="z_step"):
        probabilities_to_labels(probabilities, z_step=0.0)
    with pytest.raises(ValueError, match="z_step"):
        nu.SegmentConfig(z_step=-1)
    with pytest.raises(ValueError, match="z_labelling"):
        nu.SegmentConfig(z_labelling="stitch")


def _predicting(monkeypatch, volume):
    """segment() sees ``volume``'s cells as the network's per-plane predictions."""
    from napari_unet.inference import segment as segmenting

    classes = np.where(volume > 0, INTERIOR, BACKGROUND)
    probabilities = [_probabilities(plane) for plane in classes]
    plane_index = iter(range(10**6))

    def predicted(source, runner, tiles, geometry):
        current = probabilities[next(plane_index) % len(probabilities)]
        for tile in tiles:
            yield tile, current[:, tile.y, tile.x]

    monkeypatch.setattr(segmenting, "predict_plane_tiles", predicted)


def test_segment_labels_a_z_stack_as_a_volume_by_default(tiny_model, monkeypatch):
    volume = _stacked_pair()
    _predicting(monkeypatch, volume)
    stack = np.zeros(volume.shape, np.float32)
    labels = nu.segment(stack, tiny_model, device="cpu", axes="ZYX", min_size=1)
    result = match_instances(labels, volume, threshold=0.8)
    assert (result.tp, result.fp, result.fn) == (2, 0, 0)
    linked = nu.segment(stack, tiny_model, device="cpu", axes="ZYX", min_size=1, z_labelling="link")
    assert len(np.unique(linked)) - 1 == 1


def test_a_stack_too_large_for_a_volume_is_linked_and_says_so(tiny_model, monkeypatch):
    from napari_unet.inference import volume as volumes

    volume = _stacked_pair()
    _predicting(monkeypatch, volume)
    monkeypatch.setattr(volumes, "VOLUME_VOXELS", 1000)
    with pytest.warns(RuntimeWarning, match="linked by overlap"):
        labels = nu.segment(np.zeros(volume.shape, np.float32), tiny_model, device="cpu", axes="ZYX", min_size=1)
    assert len(np.unique(labels)) - 1 == 1


def test_the_cli_takes_the_z_step_from_the_files_voxel_size_unless_given(tiny_model_file, tmp_path, monkeypatch,
                                                                         capsys):
    import tifffile

    from napari_unet.cli import main
    from napari_unet.inference import segment as segmenting

    path = tmp_path / "stack.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(path, rng.integers(0, 255, (4, 40, 40), dtype=np.uint8), imagej=True,
                     resolution=(1 / 0.5, 1 / 0.5), metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})
    seen = []
    original = segmenting.label_volume

    def recording(planes, reading, config):
        seen.append(config.z_step)
        return original(planes, reading, config)

    monkeypatch.setattr(segmenting, "label_volume", recording)
    assert main(["segment", str(path), "--model", str(tiny_model_file), "--out", str(tmp_path / "a"),
                 "--diameter", "20"]) == 0
    assert main(["segment", str(path), "--model", str(tiny_model_file), "--out", str(tmp_path / "b"),
                 "--diameter", "20", "--z-step", "1.5"]) == 0
    assert seen == [4.0, 1.5]  # 2 um planes of 0.5 um pixels; then as given
    capsys.readouterr()
    with pytest.raises(SystemExit) as raised:
        main(["segment", str(path), "--model", str(tiny_model_file), "--out", str(tmp_path / "c"), "--z-step", "0"])
    assert raised.value.code != 0
    error = capsys.readouterr().err
    assert "--z-step" in error and "positive" in error and "Traceback" not in error


def test_a_layers_scale_gives_its_z_step():
    from types import SimpleNamespace

    from napari_unet._widgets._layers import layer_z_step

    assert layer_z_step(SimpleNamespace(scale=(2.0, 0.5, 0.5)), "ZYX") == 4.0
    assert layer_z_step(SimpleNamespace(scale=(1.0, 0.5, 0.5)), "TYX") is None
    assert layer_z_step(SimpleNamespace(scale=(0.5, 0.5)), "YX") is None


def test_the_models_smallest_area_becomes_a_balls_volume():
    from napari_unet.inference.volume import ball_voxels

    assert ball_voxels(np.pi * 16, 1.0) == round(4 / 3 * np.pi * 64)  # radius 4
    assert ball_voxels(np.pi * 16, 2.0) == round(4 / 3 * np.pi * 32)  # planes twice as far apart: half the voxels


def test_a_volume_drops_fragments_smaller_than_the_smallest_ball(tiny_model, monkeypatch):
    volume = _stacked_pair()
    volume[2:4, 1:5, 1:5] = 3  # two planes of a 16-pixel speck: above the 2-D smallest area, below a ball's
    assert tiny_model.labelling.min_size <= 16
    _predicting(monkeypatch, volume)
    labels = nu.segment(np.zeros(volume.shape, np.float32), tiny_model, device="cpu", axes="ZYX")
    result = match_instances(labels, np.where(volume == 3, 0, volume), threshold=0.8)
    assert (result.tp, result.fp, result.fn) == (2, 0, 0)
    kept = nu.segment(np.zeros(volume.shape, np.float32), tiny_model, device="cpu", axes="ZYX", min_size=10)
    assert len(np.unique(kept)) - 1 == 3  # a size given in voxels keeps it
