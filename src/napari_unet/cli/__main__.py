"""``python -m napari_unet.cli ...``: the ``napari-unet`` command where the script is not on PATH."""

import sys

from . import main

sys.exit(main())
