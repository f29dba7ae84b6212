"""``python -m snncc``: the same as the ``snncc`` console script."""

import sys

from snncc.cli import main

sys.exit(main())
