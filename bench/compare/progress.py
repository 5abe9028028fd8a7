"""A one-line progress bar on stderr (redrawn in place on a terminal, a line per step otherwise)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, width: int = 30) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.width = width
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        """Show ``label`` as the step now running."""
        filled = self.width * self.done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self.started
        line = f"[{bar}] {self.done}/{self.total} {elapsed:5.0f}s {label}"
        end = "\r" if self.tty else "\n"
        sys.stderr.write(f"\x1b[2K{line}{end}" if self.tty else line + end)
        sys.stderr.flush()

    def advance(self) -> None:
        self.done += 1

    def close(self) -> None:
        self.step("done")
        if self.tty:
            sys.stderr.write("\n")
