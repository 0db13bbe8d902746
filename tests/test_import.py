"""The core must load without Qt, napari or magicgui (scripts, clusters, CI workers)."""

import json
import subprocess
import sys

CORE_MODULES = [
    "napari_unet", "napari_unet.config", "napari_unet.models", "napari_unet.tiling",
    "napari_unet.predict", "napari_unet.instances", "napari_unet.images", "napari_unet.cli",
    "napari_unet.io_images", "napari_unet.devices",
]


def test_core_imports_without_gui_libraries():
    code = (
        "import importlib, json, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "import napari_unet as nu\n"
        "nu.create_model, nu.segment, nu.predict_probabilities, nu.load_model\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('qtpy', 'napari', 'magicgui', 'PyQt5'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_package_import_does_not_load_torch():
    code = "import sys, napari_unet; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
