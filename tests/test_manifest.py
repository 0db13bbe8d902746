"""The npe2 manifest: valid, names the three widgets and the sample, and keeps napari's start light."""

import subprocess
import sys

import pytest

pytest.importorskip("npe2")


def test_manifest_is_valid_and_lists_the_widgets_and_the_sample():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-unet")
    assert {widget.display_name for widget in manifest.contributions.widgets} == {
        "Segment", "Annotate and fine-tune", "Batch segment"}
    assert [sample.key for sample in manifest.contributions.sample_data] == ["nuclei"]


def test_npe2_validate_passes():
    result = subprocess.run([sys.executable, "-c", "from npe2.cli import main; main()", "validate", "napari-unet"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_loading_the_manifest_and_widget_modules_does_not_import_torch():
    # what napari does at start and when it builds the Plugins menu; torch comes later,
    # when a widget is opened or run
    code = (
        "import sys\n"
        "from npe2 import PluginManifest\n"
        "PluginManifest.from_distribution('napari-unet').validate_imports()\n"
        "import napari_unet._widgets.segment, napari_unet._widgets.finetune, napari_unet._widgets.batch\n"
        "import napari_unet.sample_data\n"
        "assert 'napari_unet._widgets.segment' in sys.modules\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sample_data_is_an_image_and_its_ground_truth_labels():
    from napari_unet.sample_data import sample_nuclei_layers

    (image, image_options, image_kind), (truth, truth_options, truth_kind) = sample_nuclei_layers()
    assert (image_kind, truth_kind) == ("image", "labels")
    assert image.shape == truth.shape == (384, 384)
    assert truth.max() > 50 and truth_options["name"] != image_options["name"]
