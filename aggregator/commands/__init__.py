"""The commands of ``balanced-news``, one module per group: ``parser`` (every command's options
and help), ``cycle`` (run, poll, publish, worker), ``serving`` (serve), ``database`` (db),
``sources`` (the listing and the OPML import), ``page`` (extract), ``demo``. Each command is a
function of the parsed options returning an exit status, raising :mod:`aggregator.errors`;
:mod:`aggregator.cli` dispatches to them and turns what they raise into one line.
"""

from __future__ import annotations

from pathlib import Path

from aggregator.errors import Unavailable

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def read_given(path: str) -> bytes:
    """A file a command was given, or :class:`Unavailable` naming it as it was given."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise Unavailable(f"{path}: {exc.strerror or exc}") from None
