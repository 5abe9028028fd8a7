"""``python -m bench.soak``: see ``bench.soak``."""

from __future__ import annotations

import sys

from bench.soak.cli import main

if __name__ == "__main__":
    sys.exit(main())
