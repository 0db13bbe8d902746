"""How a model file is refused: one error type, and the size past which a header is not ours."""

from __future__ import annotations

# a header bigger than this is not ours: refuse before reading it into memory
MAX_HEADER_BYTES = 16 * 2**20


class ModelFileError(ValueError):
    """A file that is not a usable napari-unet model; the message names file and problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
