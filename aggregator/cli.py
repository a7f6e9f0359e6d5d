"""The ``balanced-news`` command: run, poll, publish, sources, extract, demo, serve, worker, db.

Every command takes ``--sources``, ``--db``, ``--out`` and ``--allow-private-hosts`` (each with
an environment variable; ``db`` takes only ``--db``). A configuration problem, or a database
whose schema is out of date, is one line on stderr and exit status 2; failing sources are
reported but never fail a cycle. Commands raise :mod:`aggregator.errors`; :func:`main` alone
turns them (and the database's and the system's errors) into that line and status.

This module parses the command line, sets up logging, runs the command and turns what went
wrong into that one line; the commands themselves are in :mod:`aggregator.commands`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from aggregator import logs
from aggregator.commands import EXIT_CONFIG, EXIT_RUNTIME, cycle, database, demo, page, serving
from aggregator.commands import sources as sources_command
from aggregator.commands.cycle import check_targets, print_report
from aggregator.commands.parser import DEMO_PORT, build_parser
from aggregator.commands.serving import serve_config
from aggregator.commands.sources import import_opml, print_sources
from aggregator.config import db_url_from_args
from aggregator.errors import BalancedNewsError, ConfigError, SchemaError, UsageError
from aggregator.store import shown_url, why

__all__ = [
    "DEMO_PORT",
    "EXIT_CONFIG",
    "EXIT_RUNTIME",
    "build_parser",
    "check_targets",
    "import_opml",
    "main",
    "print_report",
    "print_sources",
    "serve_config",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Whatever goes wrong in the environment is one line on stderr naming
    what failed and where (a traceback only with -v): exit 2 when the configuration must
    change (a wrong URL, a file where a folder belongs), 1 when the world must (a database
    down or read-only, a folder we may not write, a page that would not load)."""
    args = build_parser().parse_args(argv)
    logs.setup(
        logging.INFO if _long_running(args) else logging.WARNING, args.verbose, args.log_format
    )
    handler = _COMMANDS[args.command]
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BalancedNewsError as exc:
        return _fail(args, *_line_and_status(exc))
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nobody to say it to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_RUNTIME
    except SQLAlchemyError as exc:
        where = shown_url(db_url_from_args(args))
        return _fail(args, f"database {where}: {why(exc)}", EXIT_RUNTIME)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args, f"{where}{exc.strerror or exc}", EXIT_RUNTIME)


def _line_and_status(exc: BalancedNewsError) -> tuple[str, int]:
    """The one place our exception tree meets the operator: the configuration or the command
    line must change (exit 2), or the world must (exit 1)."""
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}", EXIT_CONFIG
    if isinstance(exc, UsageError | SchemaError):
        return str(exc), EXIT_CONFIG
    return str(exc), EXIT_RUNTIME


def _fail(args: argparse.Namespace, line: str, status: int) -> int:
    if args.verbose:
        traceback.print_exc()
    print(f"balanced-news: {line}", file=sys.stderr)
    return status


def _long_running(args: argparse.Namespace) -> bool:
    """The scheduler and the server log what they do: nobody watches a terminal for months."""
    return (args.command == "run" and not args.once) or args.command in ("serve", "worker")


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cycle.cmd_run,
    "poll": cycle.cmd_poll,
    "publish": cycle.cmd_publish,
    "sources": sources_command.cmd_sources,
    "extract": page.cmd_extract,
    "demo": demo.cmd_demo,
    "serve": serving.cmd_serve,
    "worker": cycle.cmd_worker,
    "db": database.cmd_db,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
