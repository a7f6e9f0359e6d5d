"""Progress output for long runs: one updating line per stage on a terminal, quiet elsewhere."""

from __future__ import annotations

import sys
from typing import TextIO


class TerminalProgress:
    """Callable as a pipeline ``progress``: ``[fetch] 12/40 nypost: new (+8)``.

    On a terminal the line is redrawn in place; when output goes to a file or a pipe nothing is
    printed, so logs stay clean (the summary at the end says what happened).
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._open = False

    def __call__(self, stage: str, done: int, total: int, detail: str) -> None:
        if not self.enabled:
            return
        line = f"[{stage}] {done}/{total} {detail}"
        width = 100
        if len(line) > width:
            line = line[: width - 1] + "…"
        self.stream.write("\r" + line.ljust(width))
        self._open = True
        if done >= total:
            self.stream.write("\n")
            self._open = False
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
