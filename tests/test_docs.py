"""Every code block of the README and docs/ runs as written.

Per document, in order, in a fresh folder: ```python blocks share one namespace, ```bash
blocks run in bash (``napari-unet`` on the PATH). ```text blocks are output or pictures,
not code. A block preceded by ``<!-- not run: reason -->`` is skipped — only installs (CI
runs them), the napari GUI, and commands that need a cluster or a GPU say so.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*/*.md"))]
FENCE = re.compile(r"(?:<!--\s*(?P<skip>not run:[^>]*)-->\s*\n)?^```(?P<language>[\w-]*)\n(?P<code>.*?)^```",
                   re.MULTILINE | re.DOTALL)
RUN = {"python", "bash"}


def blocks(document: Path) -> list[tuple[str, str, str | None]]:
    return [(m["language"], m["code"], m["skip"]) for m in FENCE.finditer(document.read_text())]


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_every_code_block_runs_as_written(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                       MPLBACKEND="Agg")
    namespace = {"__name__": "__docs__"}
    for index, (language, code, skip) in enumerate(blocks(document)):
        assert language in RUN | {"text"}, f"block {index} of {document.name} has no known language: {language!r}"
        if skip or language == "text":
            continue
        where = f"{document.name}, block {index}"
        if language == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the project's own docs
        else:
            result = subprocess.run(["bash", "-e", "-c", code], capture_output=True, text=True, env=environment,
                                    timeout=600)
            assert result.returncode == 0, f"{where} failed:\n{code}\n{result.stdout}\n{result.stderr}"


def test_skipped_blocks_say_why():
    for document in DOCUMENTS:
        for _, code, skip in blocks(document):
            if skip:
                assert len(skip.split(":", 1)[1].strip()) > 10, f"{document.name}: {skip!r} gives no reason"
