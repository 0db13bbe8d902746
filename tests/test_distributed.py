"""`napari-unet segment --scheduler` on a dask.distributed cluster started on loopback."""

import numpy as np
import pytest
import tifffile

from napari_unet import cli
from napari_unet.inference.labels import sequential_labels
from napari_unet.inference.chunked import segment_lazy

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, host="127.0.0.1",
                                  protocol="tcp", dashboard_address=None) as local:
        yield local


def test_segment_on_a_cluster_equals_the_local_chunked_run(cluster, tiny_model_file, tmp_path, rng):
    image = (rng.random((150, 170)) * 1000).astype(np.uint16)
    stack = (rng.random((5, 48, 56)) * 1000).astype(np.uint16)  # 5 planes: read as Z, not channels
    tifffile.imwrite(tmp_path / "plane.tif", image)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    out = tmp_path / "out"
    code = cli.main(["segment", str(tmp_path / "plane.tif"), str(tmp_path / "stack.tif"), "--model",
                     str(tiny_model_file), "--out", str(out), "--device", "cpu", "--probabilities",
                     "--scheduler", cluster.scheduler_address])
    assert code == 0
    local = sequential_labels(segment_lazy(image, str(tiny_model_file), device="cpu").compute(scheduler="sync"))
    remote = tifffile.imread(out / "plane_labels.tif")
    np.testing.assert_array_equal(remote, local)
    assert tifffile.imread(out / "plane_probabilities.tif").shape == (3, 150, 170)
    labels = tifffile.imread(out / "stack_labels.tif")
    assert labels.shape == stack.shape
    for plane in labels:  # each plane numbered 1..n on its own
        assert set(np.unique(plane)) - {0} == set(range(1, int(plane.max()) + 1))


def test_unreachable_scheduler_is_one_line(tiny_model_file, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    code = cli.main(["segment", str(tmp_path / "a.tif"), "--model", str(tiny_model_file), "--out",
                     str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"])
    error = capsys.readouterr().err
    assert code != 0
    assert error.count("\n") == 1 and error.startswith("error: --scheduler tcp://127.0.0.1:9")
    assert not list((tmp_path / "out").glob("*.tif"))
