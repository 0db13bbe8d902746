"""Every file and folder napari-unet writes goes through here: written under a temporary
name in the target folder, flushed, given the permissions the umask allows (readable by
the group on shared lab storage, not private like a temporary file) and only then renamed,
so a crash never leaves a half-written file under the final name."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, then move the finished file to ``path``.

    The temporary file lives in the target folder (so the final rename is atomic), is
    flushed to disk, and gets the permissions ``0666 & ~umask`` before it takes the name.
    On any failure it is removed and ``path`` (if it existed) is left as it was.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~umask)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_folder(path, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_folder)``, then move the finished folder to ``path``.

    The folder (e.g. an OME-Zarr image) takes its name only once every file in it is
    written, with the permissions the umask allows; a folder already at ``path`` is
    replaced then. On any failure the temporary folder is removed and ``path`` is left as
    it was.
    """
    path = Path(path)
    temporary = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    aside = None  # where a folder already at ``path`` waits until the new one is in place
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(temporary)
        for root, _, files in os.walk(temporary):
            os.chmod(root, 0o777 & ~umask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~umask)
        if path.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, aside / "previous")
        os.replace(temporary, path)
    except BaseException:
        if aside is not None and (aside / "previous").exists():
            os.replace(aside / "previous", path)
        shutil.rmtree(temporary, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return path
