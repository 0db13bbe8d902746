"""What every command shares: one-line errors, progress output, options read from files."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from ..io import one_line_message

EXIT_INPUT_ERROR = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A user-facing failure: printed as one line."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


class Progress:
    """Progress of a long job: a bar on a terminal; otherwise (logs, batch jobs) a plain
    line at most every ``every`` seconds, so long runs are never silent and short ones quiet."""

    def __init__(self, description: str, total: int, unit: str, every: float = 10.0):
        self.description, self.total, self.unit, self.every = description, total, unit, every
        self.interactive = sys.stderr.isatty()
        self.started = self.last = time.perf_counter()
        self.bar = None
        if self.interactive:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=description, unit=unit, leave=False, file=sys.stderr)

    def update(self, done: int, detail: str = "") -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if detail:
                self.bar.set_postfix_str(detail, refresh=False)
            return
        now = time.perf_counter()
        if now - self.last >= self.every or (done == self.total and self.last > self.started):
            self.last = now
            left = (now - self.started) / max(done, 1) * (self.total - done)
            extra = f", {detail}" if detail else ""
            self.write(f"{self.description}: {done}/{self.total} {self.unit}s{extra}, about {left / 60:.1f} min left")

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def output_folder(out: Path) -> Path:
    """Create ``--out`` (and its parents) unless something that is not a folder is in the way."""
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            what = "is" if folder == out else f"{folder} is"
            raise CommandError(f"--out {out}: {what} a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"--out {out}: cannot create the folder ({error.strerror or error})") from None
    return out


def load_model_option(model, device: str, prune_level: int | None = None):
    """``--model`` as a loaded model; problems become one-line errors naming the option."""
    from ..models import ModelFileError, load_model

    if Path(model).is_dir():
        raise CommandError(f"--model {model}: is a folder, not a model file")
    try:
        loaded = load_model(model, device=device)
    except ModelFileError as error:
        raise CommandError(f"--model {error}") from None
    levels = loaded.network.levels
    if prune_level is not None and prune_level not in levels:
        if len(levels) == 1:
            raise CommandError(f"--prune-level: only a UNet++ trained with deep supervision can be pruned; "
                               f"{loaded.name!r} is a {loaded.config.arch} of depth {loaded.config.depth}")
        raise CommandError(f"--prune-level: prune_level must be one of {list(levels)} for {loaded.name!r}, "
                           f"got {prune_level}")
    return loaded


def read_file(path: Path, option: str):
    from ..io import read_image

    try:
        return read_image(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"{option} {one_line_message(error)}") from None


def read_labels(path: Path, option: str):
    from ..checks import check_labels

    return check_labels(read_file(path, option), name=f"{option} {path}")


_REGION = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*$")


def parse_region(text: str, owner: str, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``Y0:Y1,X0:X1`` -> ``(y0, y1, x0, x1)`` inside ``shape``; ``owner`` names the image in errors."""
    match = _REGION.match(text)
    if match is None:
        raise CommandError(f"--region {text!r}: expected Y0:Y1,X0:X1 in pixels (ends exclusive), e.g. 0:128,64:256")
    y0, y1, x0, x1 = (int(value) for value in match.groups())
    if not (y0 < y1 <= shape[0] and x0 < x1 <= shape[1]):
        raise CommandError(f"--region {text} (for {owner}): empty or outside the image of "
                           f"{shape[0]}x{shape[1]} pixels")
    return y0, y1, x0, x1
