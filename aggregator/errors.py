"""Every exception we raise on purpose, as one tree under :class:`BalancedNewsError`.

A message is already the one line the operator sees, naming what failed and where;
``cli.main`` maps the tree once to that line and an exit status: 2 when the configuration or
the command line must change (:class:`ConfigError`, :class:`UsageError`, :class:`SchemaError`),
1 when the world must (everything else). The modules that raise these keep their names
importable (``config.ConfigError``, ``fetch.BlockedAddress``, ...).

Library exceptions (SQLAlchemy's, ``OSError``) are not wrapped here: ``cli.main`` maps them
beside the tree. Private control-flow signals (``fastfeed._Outside``) stay in their modules.
"""

from __future__ import annotations


class BalancedNewsError(Exception):
    """The root: anything of ours that a command may report as one line."""


class ConfigError(BalancedNewsError):
    """A configuration problem (sources file, option, environment variable, database URL),
    already phrased as the one line the operator sees."""


class WorkerModeError(ConfigError):
    """``balanced-news worker`` cannot run with this configuration or install (not
    PostgreSQL, the postgres extra missing)."""


class UsageError(BalancedNewsError):
    """A command given something it cannot use (an argument missing, a URL scheme it cannot
    read, a question nobody can answer): the command line must change."""


class Unavailable(BalancedNewsError):
    """Something the configuration names (the database, the output folder, a port, a file)
    cannot be used now: down, read-only, not ours to write. One line naming what and where,
    like :class:`ConfigError`, but the world's to fix rather than the configuration's."""


class StoreError(BalancedNewsError):
    """The database cannot be used as it is."""


class SchemaError(StoreError):
    """The database's schema is not the one this version uses; the message is the one line
    the operator sees (it names ``balanced-news db upgrade``)."""


class FetchError(BalancedNewsError):
    """A page or feed could not be fetched; the fetcher turns these into a result's
    ``error`` line, so only a one-page command (``extract URL``) ever raises one."""


class BlockedAddress(FetchError):
    """The URL points at an address we refuse to fetch (loopback, private, link-local...)."""


class TooLarge(FetchError):
    """The body (after decompression) went over the cap."""


class ExtractionError(BalancedNewsError):
    """The page gave no usable article text."""


class OpmlError(BalancedNewsError, ValueError):
    """An OPML file we cannot read, phrased as one line."""


class ModelFailure(BalancedNewsError):
    """The model's answer cannot be used; ``final`` says whether asking again could help."""

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


__all__ = [
    "BalancedNewsError",
    "BlockedAddress",
    "ConfigError",
    "ExtractionError",
    "FetchError",
    "ModelFailure",
    "OpmlError",
    "SchemaError",
    "StoreError",
    "TooLarge",
    "Unavailable",
    "UsageError",
    "WorkerModeError",
]
