"""The install: a headless core, extras for the viewer and the formats, and no extra that touches torch."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GUI = {"napari", "magicgui", "qtpy", "pyqt5", "pyqt6", "pyside2", "pyside6", "npe2"}


def _names(requirements) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_the_core_installs_without_napari_or_a_qt_binding():
    assert _names(PROJECT["dependencies"]) & GUI == set()
    assert {"torch", "numpy", "dask", "tifffile", "safetensors"} <= _names(PROJECT["dependencies"])


def test_the_napari_extra_brings_the_viewer_with_a_qt6_binding():
    napari = _names(PROJECT["optional-dependencies"]["napari"])
    assert {"napari", "magicgui", "qtpy", "pyqt6"} <= napari and "pyqt5" not in napari


def test_the_test_extra_holds_what_the_tests_import():
    extras = PROJECT["optional-dependencies"]
    test = extras["test"]
    included = next(r for r in test if r.startswith("napari-unet["))
    names = _names(test)
    for extra in re.search(r"\[(.*)\]", included).group(1).split(","):
        names |= _names(extras[extra])
    assert {"napari", "pyqt6", "pytest-qt", "pytest-xvfb", "hypothesis", "distributed", "zarr",
            "bioimageio.core", "pytest"} <= names


def test_no_extra_asks_for_torch_or_torchvision():
    for name, requirements in PROJECT["optional-dependencies"].items():
        assert not _names(requirements) & {"torch", "torchvision"}, name
