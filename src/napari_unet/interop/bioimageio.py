"""bioimage.io model packages for Fiji (deepImageJ), ilastik and bioimage.io.

:func:`export_bioimageio` writes one zip file that follows the bioimage.io model spec 0.5
(``rdf.yaml``): ``pytorch_state_dict`` weights with the self-contained architecture source
(:mod:`napari_unet.models.standalone`), the same network as ``torchscript``, a test input
and the output it must give, the axes with the halo that tiling needs, the pre-processing
that the spec can express and a model card (``README.md``) that says what it cannot.

The napari-unet model file itself (safetensors) travels inside as an attachment:
:mod:`napari_unet.models.package` takes it back out for ``load_model("cells.zip")``.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..inference.appearance import CLIP, Appearance, model_channels
from ..models import SegmentationModel, load_model
from ..models.io import model_to_bytes
from ..models.package import MODEL_FILE, RDF_NAMES, sha256
from ..models.registry import ARCHITECTURES
from ..models.standalone import ARCHITECTURE_CALLABLE, ProbabilityNetwork, architecture_source
from .geometry import PackageGeometry, input_channel_names, package_geometry

FORMAT_VERSION = "0.5.4"
INPUT_ID, OUTPUT_ID = "raw", "probabilities"
# the smallest output edge of the test tensors (pixels), so the test shows whole cells
TEST_OUTPUT_SIZE = 64
_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+- ()")


def _package_name(name: str) -> str:
    """``name`` in the characters bioimage.io allows, at least 5 of them."""
    cleaned = "".join(character if character in _NAME_CHARACTERS else "-" for character in name).strip() or "cells"
    return cleaned if len(cleaned) >= 5 else f"{cleaned} U-Net"


def _test_input(model: SegmentationModel, size: int, test_image) -> np.ndarray:
    """(1, in_channels, size, size) float32: the middle of ``test_image`` (default: the sample)."""
    if test_image is None:
        from ..sample_data import sample_nuclei

        test_image = sample_nuclei()[0]
    image = np.asarray(test_image)
    colour = image.ndim == 3 and image.shape[-1] in (3, 4)
    if image.ndim != (3 if colour else 2):
        raise ValueError(f"test_image must be a (Y, X) or (Y, X, 3|4) image, got shape {image.shape}")
    channels = model_channels(image, Appearance(colour=colour, inverted=False), model.config.in_channels)
    short = [max(0, size - n) for n in channels.shape[1:]]
    channels = np.pad(channels, [(0, 0)] + [(s // 2, s - s // 2) for s in short], mode="reflect")
    top, left = ((n - size) // 2 for n in channels.shape[1:])
    return np.ascontiguousarray(channels[np.newaxis, :, top:top + size, left:left + size], dtype=np.float32)


def preprocess(raw: np.ndarray, model: SegmentationModel) -> np.ndarray:
    """What the package's ``preprocessing`` does to a (1, C, Y, X) input, as bioimage.io tools do it."""
    low, high = np.percentile(raw, [model.normalization.low, model.normalization.high])
    return np.clip((raw - low) / (high - low + 1e-6), *CLIP).astype(np.float32)


def _networks(model: SegmentationModel, example: torch.Tensor, context: int):
    """(eager, traced) probability networks on the CPU in fp32; the caller's model is not moved."""
    eager = ProbabilityNetwork(copy.deepcopy(model.network), context).to("cpu", torch.float32).eval()
    with warnings.catch_warnings():
        # torch.jit.trace is what bioimage.io's torchscript format needs; the crops it warns
        # about depend on the input size only through shapes, which the trace records
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(eager, example, check_trace=False)
    return eager, traced


def _torchscript_bytes(traced) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchscript is what bioimage.io reads
        return _bytes(lambda buffer: torch.jit.save(traced, buffer))


def _bytes(save) -> bytes:
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()


def _tiff_bytes(tensor: np.ndarray) -> bytes:
    """A (1, C, Y, X) tensor as a TIFF of C grey-level planes (how viewers show a sample)."""
    import tifffile

    return _bytes(lambda buffer: tifffile.imwrite(buffer, tensor, photometric="minisblack"))


def _cover(test_input: np.ndarray, test_output: np.ndarray) -> bytes:
    """PNG: the test input (grey) beside the predicted interior (green) and boundary (magenta)."""
    from PIL import Image

    grey = test_input[0].mean(axis=0)
    low, high = np.percentile(grey, [1, 99.8])
    grey = np.clip((grey - low) / max(high - low, 1e-6), 0, 1)
    interior, boundary = test_output[0, 1], test_output[0, 2]
    colour = np.stack([boundary, interior, boundary], axis=-1)
    picture = np.concatenate([np.repeat(grey[..., np.newaxis], 3, axis=-1), colour], axis=1)
    return _bytes(lambda buffer: Image.fromarray((picture * 255).astype(np.uint8)).save(buffer, format="PNG"))


def _file(files: dict, name: str) -> dict:
    return {"source": name, "sha256": sha256(files[name])}


def _tensors(model: SegmentationModel, geometry: PackageGeometry, files: dict) -> dict:
    """The ``inputs`` and ``outputs`` of the rdf: axes, sizes, halo, data and processing."""
    spatial = [{"type": "space", "id": axis, "size": {"min": geometry.minimum, "step": geometry.step}}
               for axis in ("y", "x")]
    outputs = [{"type": "space", "id": axis, "size": {"tensor_id": INPUT_ID, "axis_id": axis}, "halo": geometry.halo}
               for axis in ("y", "x")]
    norm = model.normalization
    raw = {
        "id": INPUT_ID,
        "description": "image, bright objects on a dark background, at the model's working object size "
                       "(see the documentation)",
        "axes": [{"type": "batch"}, {"type": "channel", "channel_names": input_channel_names(model)}] + spatial,
        "test_tensor": _file(files, "test_input.npy"),
        "sample_tensor": _file(files, "sample_input.tif"),
        "data": {"type": "float32"},
        "preprocessing": [
            {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
            {"id": "scale_range", "kwargs": {"axes": ["channel", "y", "x"], "min_percentile": norm.low,
                                             "max_percentile": norm.high}},
            {"id": "clip", "kwargs": {"min": CLIP[0], "max": CLIP[1]}},
        ],
    }
    probabilities = {
        "id": OUTPUT_ID,
        "description": f"class probabilities ({', '.join(model.class_names)}; softmax inside the network)",
        "axes": [{"type": "batch"}, {"type": "channel", "channel_names": list(model.class_names)}] + outputs,
        "test_tensor": _file(files, "test_output.npy"),
        "sample_tensor": _file(files, "sample_output.tif"),
        "data": {"type": "float32", "range": [0.0, 1.0]},
    }
    return {"inputs": [raw], "outputs": [probabilities]}


def _weights(model: SegmentationModel, geometry: PackageGeometry, files: dict) -> dict:
    version = torch.__version__.split("+")[0]
    return {
        "pytorch_state_dict": _file(files, "weights.pt") | {
            "architecture": _file(files, "napari_unet_architecture.py") | {
                "callable": ARCHITECTURE_CALLABLE, "kwargs": {"context": geometry.halo, **model.config.__dict__}},
            "pytorch_version": version},
        "torchscript": _file(files, "weights_torchscript.pt") | {"pytorch_version": version,
                                                                  "parent": "pytorch_state_dict"},
    }


def _rdf(model: SegmentationModel, geometry: PackageGeometry, files: dict, model_file: str, *, name: str,
         description: str | None, authors, license: str) -> dict:
    from .. import __version__

    arch = model.config.arch
    entry = ARCHITECTURES[arch]
    return {
        "format_version": FORMAT_VERSION,
        "type": "model",
        "name": _package_name(name),
        "description": description or (f"{entry.title} for cell / nucleus "
                                       "instance segmentation: background, interior and boundary probabilities "
                                       f"(exported by napari-unet {__version__})"),
        "authors": [{"name": str(author)} for author in authors],
        # every architecture here grows out of the U-Net paper
        "cite": [ARCHITECTURES["unet"].citation] + ([entry.citation] if arch != "unet" else []),
        "license": license,
        "tags": ["napari-unet", arch, "pytorch", "2d",
                 "instance-segmentation", "cells", "nuclei"],
        "documentation": "README.md",
        "covers": ["cover.png"],
        "timestamp": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        **_tensors(model, geometry, files),
        "weights": _weights(model, geometry, files),
        "attachments": [_file(files, model_file)],
        "config": {"napari_unet": {"model_file": model_file, "package_version": __version__,
                                   "diameter": model.diameter, "normalization": dict(model.normalization.__dict__),
                                   "class_names": list(model.class_names),
                                   "labelling": dataclasses.asdict(model.labelling)}},
    }


def export_bioimageio(model, path, *, name: str | None = None, description: str | None = None,
                      authors=(), license: str = "BSD-3-Clause", test_image=None) -> Path:
    """Write ``model`` as a bioimage.io model package (one zip file) for Fiji, ilastik and bioimage.io.

    Parameters
    ----------
    model : SegmentationModel, str or path
        A model, a shipped model's name or a model file; it is not moved or changed.
    path : str or Path
        The zip file to write (atomically); its folder must exist.
    name : str, optional
        The package's name (default: the model's); bioimage.io allows letters, digits,
        spaces and ``_+-()``, others become "-".
    description : str, optional
        One sentence on what the model segments (default: a generic one).
    authors : sequence of str
        Names of the people who made the model (bioimage.io asks for one before upload).
    license : str
        SPDX identifier of the weights' licence.
    test_image : (Y, X) or (Y, X, 3|4) ndarray, optional
        Image whose middle becomes the package's test input (default: the bundled sample).

    Returns
    -------
    Path
        ``path``. Validate it with ``bioimageio test PATH`` (``pip install "napari-unet[bioimageio]"``).

    Raises
    ------
    ValueError
        ``path`` does not end in ".zip" or its folder does not exist; ``test_image`` is not
        an image.
    """
    from ..io import atomic_write
    from .model_card import model_card

    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise ValueError(f"path must end in .zip (a bioimage.io package is a zip file), got {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"path: folder {str(path.parent)!r} does not exist")
    if not isinstance(model, SegmentationModel):
        model = load_model(model, device="cpu")
    geometry = package_geometry(model.network)
    files = _package_files(model, geometry, test_image)
    model_file = MODEL_FILE
    rdf = _rdf(model, geometry, files, model_file, name=name or model.name, description=description,
               authors=authors, license=license)
    files["README.md"] = model_card(model, rdf, geometry, path.name).encode()
    files = {RDF_NAMES[0]: yaml_text(rdf).encode()} | files

    def write(temporary: str) -> None:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, data in files.items():
                archive.writestr(member, data)

    return atomic_write(path, write)


def _package_files(model: SegmentationModel, geometry: PackageGeometry, test_image) -> dict[str, bytes]:
    """Every file of the package but the rdf and the model card: test tensors, weights in both
    formats, the architecture's source, the cover and napari-unet's own model file."""
    raw = _test_input(model, geometry.input_for_output(TEST_OUTPUT_SIZE), test_image)
    example = torch.from_numpy(preprocess(raw, model))
    eager, traced = _networks(model, example, geometry.halo)
    with torch.inference_mode():
        output = eager(example).numpy()
    return {
        "test_input.npy": _bytes(lambda buffer: np.save(buffer, raw)),
        "test_output.npy": _bytes(lambda buffer: np.save(buffer, output)),
        "sample_input.tif": _tiff_bytes(raw),
        "sample_output.tif": _tiff_bytes(output),
        "weights.pt": _bytes(lambda buffer: torch.save(eager.state_dict(), buffer)),
        "weights_torchscript.pt": _torchscript_bytes(traced),
        "napari_unet_architecture.py": architecture_source(model.config.arch, model.class_names).encode(),
        "cover.png": _cover(raw, output),
        MODEL_FILE: model_to_bytes(model),
    }


def yaml_text(document: dict) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
