"""bioimage.io packages napari-unet exported, read back: the napari-unet model file inside, nothing else.

:func:`napari_unet.export_bioimageio` puts the model's own safetensors file into the
package (named in ``config.napari_unet.model_file`` of ``rdf.yaml``, its checksum among the
attachments). :func:`read_package_model` takes exactly that file back out, so
``load_model("cells.zip")`` never unpickles the package's torch weights (a pickle can run
code) and a package from another tool is refused with a message that says so.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import PurePosixPath

from .errors import MAX_HEADER_BYTES, ModelFileError

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
MODEL_FILE = "napari_unet_model.safetensors"
# a packaged model file larger than this is refused before it is read
MAX_MODEL_BYTES = 2**32


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_package(path) -> bool:
    """Whether ``path`` is a zip file with a bioimage.io description (``rdf.yaml``) at its root."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name in archive.namelist() for name in RDF_NAMES)
    except (zipfile.BadZipFile, OSError):
        return False


def _member(archive: zipfile.ZipFile, member: str, limit: int, source) -> bytes:
    """The bytes of ``member``, refusing names outside the root and sizes over ``limit``."""
    if not member or PurePosixPath(member).name != member or member not in archive.namelist():
        raise ModelFileError(source, f"the package names a model file {member!r} that is not at its root")
    size = archive.getinfo(member).file_size
    if size > limit:
        raise ModelFileError(source, f"{member} announces {size} bytes, more than a model file can hold ({limit})")
    with archive.open(member) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ModelFileError(source, f"{member} holds more than {limit} bytes")
    return data


def read_package_model(path) -> bytes:
    """The napari-unet model file (safetensors bytes) inside a package napari-unet exported.

    Only the attachment named in ``config.napari_unet.model_file`` is read (its checksum
    checked against the description); the package's pickled torch weights never are.

    Raises
    ------
    ModelFileError
        Not a package napari-unet exported, a damaged one, or a checksum that does not match.
    """
    import yaml

    try:
        with zipfile.ZipFile(path) as archive:
            rdf_name = next(name for name in RDF_NAMES if name in archive.namelist())
            rdf = yaml.safe_load(_member(archive, rdf_name, MAX_HEADER_BYTES, path))
            ours = (rdf.get("config") or {}).get("napari_unet") if isinstance(rdf, dict) else None
            if not isinstance(ours, dict) or "model_file" not in ours:
                raise ModelFileError(path, "a bioimage.io package that napari-unet did not export (no napari_unet "
                                           "model file in its config); napari-unet loads only its own packages, "
                                           "because other packages' torch weights are pickles")
            member = str(ours["model_file"])
            data = _member(archive, member, MAX_MODEL_BYTES, path)
    except (zipfile.BadZipFile, yaml.YAMLError, KeyError) as error:
        raise ModelFileError(path, f"damaged bioimage.io package ({error})") from None
    recorded = {entry.get("source"): entry.get("sha256") for entry in rdf.get("attachments") or []
                if isinstance(entry, dict)}
    if recorded.get(member) != sha256(data):
        raise ModelFileError(path, f"{member} does not match the checksum in {rdf_name}: the package was changed")
    return data
