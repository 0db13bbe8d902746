"""Helpers for the tests of the data build scripts in ``benchmarks/data/``: load a script
as a module and make a small git repository in a source's layout."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BUILDS = Path(__file__).resolve().parents[1] / "benchmarks" / "data"


def load_build(name: str):
    """The module ``benchmarks/data/<name>.py`` (``sources`` or ``build_<source>``)."""
    if str(BUILDS) not in sys.path:
        sys.path.insert(0, str(BUILDS))
    spec = importlib.util.spec_from_file_location(f"_data_build_{name}", BUILDS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def make_repository(folder: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    """A git repository at ``folder`` with ``files`` (path -> bytes) in one commit;
    returns its git directory and the commit."""
    folder.mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True).stdout

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-q", "-m", "data")
    return folder / ".git", git("rev-parse", "HEAD").decode().strip()


def png_bytes(array) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", array, extension=".png")


def tif_bytes(array) -> bytes:
    import io

    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


def build(module, git_dir, commit, out) -> dict[str, dict]:
    """Run a build script's command line on a repository at ``commit``; its index rows by id."""
    source = dataclasses.replace(module.SOURCE, commit=commit)
    assert module.build_main(source, module.samples, ["--git-dir", str(git_dir), "--out", str(out)]) == 0
    with open(out / "index.csv", newline="") as stream:
        rows = {row["id"]: row for row in csv.DictReader(stream)}
    assert json.loads((out / "SOURCE.json").read_text())["commit"] == commit
    return rows
