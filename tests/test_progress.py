"""Progress on a terminal: one line redrawn per stage; silent when output is not a terminal."""

from __future__ import annotations

import io

from aggregator.progress import TerminalProgress


def test_redraws_one_line_per_stage() -> None:
    out = io.StringIO()
    progress = TerminalProgress(out, enabled=True)
    progress("fetch", 1, 2, "alpha: new (+3)")
    progress("fetch", 2, 2, "beta: error (HTTP 500)")
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[fetch] 1/2 alpha: new (+3)" in text and "[fetch] 2/2 beta: error" in text


def test_quiet_when_not_a_terminal() -> None:
    out = io.StringIO()  # StringIO is not a tty
    progress = TerminalProgress(out)
    progress("extract", 1, 10, "https://example.com/a")
    progress.close()
    assert out.getvalue() == ""
