"""``python -m napari_unet ...``: the ``napari-unet`` command where the script is not on PATH."""

import sys

from .cli import main

sys.exit(main())
