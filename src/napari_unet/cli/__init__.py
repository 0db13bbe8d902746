"""The ``napari-unet`` command: the same core functions as the Python API.

Errors are one line on stderr (``error: <file>: <what is wrong>``), never a traceback; a
failing input does not stop the others, but makes the exit code non-zero.
"""

from __future__ import annotations

import sys

from ..io import one_line_message
from .common import EXIT_USAGE, CommandError


def main(argv: list[str] | None = None) -> int:
    from .parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, TypeError, OSError, MemoryError, RuntimeError) as error:
        print(f"error: {one_line_message(error)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
