"""Model files: safetensors tensors + JSON metadata. Loading never unpickles anything.

A model file is a plain safetensors file whose metadata holds one JSON document under the
key ``napari_unet``: format version, architecture config, normalisation, class names,
working object diameter, training history and the package version that wrote it. The
header is read and checked (size, keys, shapes) before a single tensor is allocated.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
from importlib import resources
from pathlib import Path

import torch

from ..config import Labelling, ModelConfig, Normalization, config_from_dict
from ..devices import resolve_device
from .base import DIAMETER_RULES, SegmentationModel
from .errors import MAX_HEADER_BYTES, ModelFileError
from .registry import build_network

FORMAT = "napari-unet-model"
FORMAT_VERSION = 1
METADATA_KEY = "napari_unet"
SUFFIX = ".safetensors"
_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def _package_version() -> str:
    from .. import __version__

    return __version__


def _pretrained_dir():
    return resources.files("napari_unet") / "pretrained"


def list_models() -> list[str]:
    """Names of the models shipped with the package (usable wherever a model is asked for)."""
    folder = _pretrained_dir()
    if not folder.is_dir():
        return []
    return sorted(entry.name[: -len(SUFFIX)] for entry in folder.iterdir() if entry.name.endswith(SUFFIX))


def _document(model: SegmentationModel) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "config": model.config.__dict__,
        "normalization": model.normalization.__dict__,
        "class_names": list(model.class_names),
        "history": model.history,
        "diameter": model.diameter,
        "diameter_bias": model.diameter_bias,
        "diameter_rule": model.diameter_rule,
        "labelling": dataclasses.asdict(model.labelling),
        # the one labelling setting files held before "labelling": what earlier versions read
        "foreground": model.labelling.foreground,
        "channel_names": None if model.channel_names is None else list(model.channel_names),
        "package_version": _package_version(),
    }


def model_to_bytes(model: SegmentationModel) -> bytes:
    """The bytes of ``model``'s safetensors file (what :func:`save_model` writes)."""
    from safetensors.torch import save

    if not isinstance(model, SegmentationModel):
        raise TypeError(f"model must be a SegmentationModel, got {type(model).__name__}")
    tensors = {key: value.detach().to("cpu").contiguous().clone()
               for key, value in model.network.state_dict().items()}
    return save(tensors, metadata={METADATA_KEY: json.dumps(_document(model))})


def save_model(model: SegmentationModel, path) -> Path:
    """Write ``model`` to ``path`` atomically (temporary file in the same folder, then rename).

    A crash mid-write leaves any previous file at ``path`` intact and no partial file under
    its name. Returns the path written.
    """
    from ..io import atomic_write

    if not isinstance(model, SegmentationModel):
        raise TypeError(f"model must be a SegmentationModel, got {type(model).__name__}")
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ValueError(f"path must end in {SUFFIX} (model files are safetensors), got {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"path: folder {str(path.parent)!r} does not exist")
    data = model_to_bytes(model)
    return atomic_write(path, lambda temporary: Path(temporary).write_bytes(data))


def read_header(path) -> tuple[dict, dict]:
    """Return ``(tensor_entries, metadata_document)`` of a model file after checking it.

    Raises :class:`ModelFileError` for anything that is not a complete napari-unet
    safetensors file, without allocating more than the (bounded) header.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such file")
    with open(path, "rb") as stream:
        return _parse_header(stream, path.stat().st_size, path)


def _parse_header(stream, size: int, source) -> tuple[dict, dict]:
    prefix = stream.read(9)
    (header_bytes,) = struct.unpack("<Q", prefix[:8]) if len(prefix) >= 8 else (None,)
    # a safetensors file starts with its header's length and then the header's "{"; only a
    # file that is not one is checked for the zip / pickle signatures of torch checkpoints
    # (a header length may well start with the byte a pickle starts with)
    looks_safetensors = header_bytes is not None and prefix[8:9] == b"{" and header_bytes <= size - 8
    if not looks_safetensors and (prefix[:2] == b"PK" or prefix[:1] == b"\x80"):
        raise ModelFileError(
            source, "this is a PyTorch pickle checkpoint; napari-unet only loads safetensors "
                    "model files because unpickling can run arbitrary code")
    if len(prefix) < 8:
        raise ModelFileError(source, f"not a model file (only {size} bytes)")
    if header_bytes > min(MAX_HEADER_BYTES, size - 8):
        raise ModelFileError(
            source, f"not a safetensors model file (header announces {header_bytes} bytes, file has {size})")
    try:
        header = json.loads(prefix[8:] + stream.read(max(0, header_bytes - 1)))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(source, "not a safetensors model file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(source, "not a safetensors model file (header is not a JSON object)")
    document = _metadata_document(header.pop("__metadata__", None) or {}, source)
    _check_tensor_entries(header, header_bytes, size, source)
    return header, document


def _metadata_document(metadata: dict, source) -> dict:
    if METADATA_KEY not in metadata:
        raise ModelFileError(source, "a safetensors file but not a napari-unet model (no napari_unet metadata)")
    try:
        document = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError:
        raise ModelFileError(source, "napari_unet metadata is not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(source, "napari_unet metadata has an unknown format")
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(source, f"written by a newer napari-unet (format {document['format_version']}); "
                                     "upgrade napari-unet to load it")
    return document


def _check_tensor_entries(header: dict, header_bytes: int, size: int, source) -> None:
    end = 0
    for key, entry in header.items():
        try:
            start, stop = entry["data_offsets"]
            expected = _DTYPE_BYTES[entry["dtype"]] * int(torch.Size(entry["shape"]).numel())
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(source, f"tensor {key!r} has a malformed header entry") from None
        if stop - start != expected:
            raise ModelFileError(source, f"tensor {key!r} announces {stop - start} bytes for shape "
                                         f"{entry['shape']} ({expected} expected)")
        end = max(end, stop)
    if 8 + header_bytes + end != size:
        raise ModelFileError(source, f"file is truncated or padded: tensors need {8 + header_bytes + end} "
                                     f"bytes, file has {size}")


def _model_from_document(path, header: dict, document: dict) -> SegmentationModel:
    try:
        config = config_from_dict(ModelConfig, document["config"])
        normalization = config_from_dict(Normalization, document.get("normalization", {}))
        network = build_network(config)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(path, f"incompatible architecture metadata: {error}") from None
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    stored = {key: tuple(entry["shape"]) for key, entry in header.items()}
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        detail = "; ".join(part for part in (
            f"missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}{'...' if len(unexpected) > 3 else ''}" if unexpected else "",
        ) if part)
        raise ModelFileError(path, f"tensors do not match the {config.arch} architecture ({detail})")
    wrong = [key for key in expected if expected[key] != stored[key]]
    if wrong:
        key = wrong[0]
        raise ModelFileError(path, f"tensor {key!r} has shape {list(stored[key])}, the architecture "
                                   f"needs {list(expected[key])}")
    return SegmentationModel(
        network=network,
        normalization=normalization,
        class_names=tuple(document.get("class_names", ())) or SegmentationModel.class_names,
        name=str(document.get("name", Path(path).stem)),
        history=list(document.get("history", [])),
        diameter=_diameter(path, document.get("diameter")),
        diameter_bias=_diameter(path, document.get("diameter_bias", 1.0), "diameter_bias"),
        diameter_rule=_diameter_rule(path, document.get("diameter_rule", "confidence")),
        labelling=_labelling(path, document),
        channel_names=_channel_names(path, document.get("channel_names"), config.in_channels),
    )


def _labelling(path, document: dict) -> Labelling:
    """The file's labelling settings; files written before they were calibrated together
    store only the foreground threshold."""
    stored = document.get("labelling", {"foreground": document.get("foreground", Labelling.foreground)})
    if not isinstance(stored, dict):
        raise ModelFileError(path, f"labelling must be a mapping, got {stored!r}")
    try:
        return config_from_dict(Labelling, stored)
    except (TypeError, ValueError) as error:
        raise ModelFileError(path, f"labelling: {error}") from None


def _channel_names(path, names, in_channels: int) -> tuple[str, ...] | None:
    if names is None:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names) \
            or len(names) > in_channels:
        raise ModelFileError(path, f"channel_names must be 1 to {in_channels} names, got {names!r}")
    return tuple(names)


def _diameter(path, value, name: str = "diameter") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ModelFileError(path, f"{name} must be a positive number, got {value!r}")
    return float(value)


def _diameter_rule(path, value) -> str:
    if value not in DIAMETER_RULES:
        raise ModelFileError(path, f"diameter_rule must be one of {', '.join(DIAMETER_RULES)}, got {value!r}")
    return value


def model_from_bytes(data: bytes, device: str = "auto", source="model bytes") -> SegmentationModel:
    """A model from the bytes of its file (checked exactly as :func:`load_model` checks files)."""
    header, document = _parse_header(io.BytesIO(data), len(data), source)
    return _model_with_tensors(source, header, document, data, device)


def _model_with_tensors(source, header: dict, document: dict, data: bytes, device: str) -> SegmentationModel:
    from safetensors import SafetensorError
    from safetensors.torch import load

    target = resolve_device(device)
    model = _model_from_document(source, header, document)
    try:
        tensors = load(data)
    except SafetensorError as error:
        raise ModelFileError(source, f"corrupt tensor data ({error})") from None
    bad = [key for key, value in tensors.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        raise ModelFileError(source, f"tensor {bad[0]!r} holds NaN or infinite values")
    model.network.load_state_dict(tensors)
    model.network.to(target).eval()
    return model


def resolve_model_path(name_or_path) -> Path:
    """The file of a shipped model name or a path; ModelFileError when there is none."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"model must be a model, a shipped model name or a file path, got {name_or_path!r}")
    path = Path(name_or_path)
    if not path.exists() and isinstance(name_or_path, str) and name_or_path in list_models():
        return Path(str(_pretrained_dir() / f"{name_or_path}{SUFFIX}"))
    if not path.exists():
        shipped = ", ".join(list_models()) or "none"
        raise ModelFileError(path, f"no such file, and not a shipped model name (shipped: {shipped})")
    return path


def load_model(name_or_path, device: str = "auto") -> SegmentationModel:
    """Load a shipped model by name (see :func:`list_models`) or a model file by path.

    Parameters
    ----------
    name_or_path : str, Path or SegmentationModel
        A shipped model's name, a ``.safetensors`` path, a bioimage.io package (``.zip``)
        that napari-unet exported (the model file inside it is loaded; its pickled torch
        weights never are), or a model (returned on ``device``).
    device : str
        "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".

    Raises
    ------
    ModelFileError
        The file is missing, a pickle, corrupt, truncated, or not a compatible model.
    """
    if isinstance(name_or_path, SegmentationModel):
        name_or_path.network.to(resolve_device(device))
        return name_or_path
    path = resolve_model_path(name_or_path)
    from .package import is_package, read_package_model

    if is_package(path):
        return model_from_bytes(read_package_model(path), device, source=path)
    # the header is checked before the (bounded) tensor data is read
    header, document = read_header(path)
    return _model_with_tensors(path, header, document, path.read_bytes(), device)
