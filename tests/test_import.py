"""The core must load without Qt, napari or magicgui (scripts, clusters, CI workers)."""

import json
import subprocess
import sys

CORE_MODULES = [
    "napari_unet", "napari_unet.config", "napari_unet.checks", "napari_unet.events", "napari_unet.io",
    "napari_unet.devices", "napari_unet.models", "napari_unet.inference.segment", "napari_unet.inference.chunked",
    "napari_unet.inference.diameter", "napari_unet.training.loop", "napari_unet.training.pretrain",
    "napari_unet.cli", "napari_unet.cli.parser", "napari_unet.metrics", "napari_unet.synth",
    "napari_unet.io.ome_zarr", "napari_unet.interop.bioimageio", "napari_unet.models.package", "napari_unet.cli.export",
]
GUI_PACKAGES = ("qtpy", "napari", "magicgui", "PyQt5", "PyQt6")


def test_core_imports_without_gui_libraries():
    code = (
        "import importlib, json, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "import napari_unet as nu\n"
        "nu.create_model, nu.segment, nu.predict_probabilities, nu.load_model\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {GUI_PACKAGES!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_package_import_does_not_load_torch():
    code = "import sys, napari_unet; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
