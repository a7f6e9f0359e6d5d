"""The command line: every command, its options and its help text."""

from __future__ import annotations

import argparse

from aggregator import __version__, logs
from aggregator.config import DEFAULT_DB, ENV_DB, add_common_arguments
from aggregator.vocab import LEANS

DEMO_PORT = 8765

_DESCRIPTION = """\
Turn many outlets' RSS/Atom feeds into one balanced, well-attributed Atom feed.

Start with `balanced-news demo` (no internet needed), then edit sources.toml and run
`balanced-news run --once` or `balanced-news run` (keeps polling until stopped).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="balanced-news",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def logging_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="log each step, libraries' chatter included, and show tracebacks",
        )
        sub.add_argument(
            "--log-format",
            choices=logs.LOG_FORMATS,
            default="text",
            help="text (default) or json: one JSON object per line, for log shippers",
        )

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_common_arguments(sub)
        logging_options(sub)
        return sub

    run = command(
        "run",
        "Poll every source at its interval and publish after changes, until stopped "
        "(Ctrl-C or SIGTERM). With --once: one full cycle, then exit.",
    )
    run.add_argument("--once", action="store_true", help="run one full cycle and exit")
    command("poll", "Fetch, parse and store every enabled source; publish nothing.")
    command(
        "publish",
        "Extract, group and rewrite what `poll` stored, then write the feed (no feed polling).",
    )
    src = command(
        "sources",
        "Show each source: lean, status (ok, failing since, parked), last poll, HTTP status, "
        "mean response time, entries, last new entry, next poll, last error. "
        "`sources import FILE.opml` adds the feeds of another reader's OPML export.",
    )
    src.add_argument("action", nargs="?", choices=["import"], help="import an OPML file")
    src.add_argument("file", nargs="?", metavar="FILE.opml", help="the OPML file to import")
    src.add_argument(
        "--lean",
        choices=LEANS,
        help="the lean of every imported feed (otherwise the file's /lean/ category, else asked)",
    )
    ex = command(
        "extract",
        "Print what article extraction finds on a page (a file or a URL), to debug a site.",
    )
    ex.add_argument("target", metavar="PATH_OR_URL", help="an HTML file or an http(s) URL")
    ex.add_argument("--json", action="store_true", help="print JSON (text, title, author, ...)")
    ex.add_argument(
        "--source",
        metavar="ID",
        help="read the page with this source's content rules (select, strip) from the sources file",
    )
    dm = command(
        "demo",
        "Serve the bundled sample outlets on 127.0.0.1 and run one full cycle over them; "
        "works with no internet. Output goes to --out (default: a new temporary folder).",
    )
    dm.set_defaults(out=None)
    dm.add_argument(
        "--port",
        type=int,
        default=DEMO_PORT,
        help=f"port of the sample outlets on 127.0.0.1 (default {DEMO_PORT}: the same every "
        "time, so a second demo into the same folder finds the same articles)",
    )
    sv = command(
        "serve",
        "Serve the published feeds and pages over HTTP (ETag, 304, gzip), "
        "with /healthz and /metrics.",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    wk = command(
        "worker",
        "Run one worker against PostgreSQL (poll, extract, group, rewrite, publish as tasks "
        "shared with every other worker on the same database), until Ctrl-C or SIGTERM, which "
        "let its running tasks finish. Start as many as needed, on any host. [workers] in the "
        "sources file tunes them.",
    )
    wk.add_argument("--name", help="the worker's name in logs (default: HOST-PID)")
    wk.add_argument(
        "--queues",
        choices=["poll", "process", "all"],
        default="all",
        help="poll: only claim and poll sources; process: only extract, group, rewrite and "
        "publish (the publisher); all (default): both",
    )
    dbp = commands.add_parser(
        "db",
        help="The database schema: `db upgrade` creates or upgrades it (run after installing "
        "a new version); `db status` says whether it is current.",
        description="Create or upgrade the database schema (SQLite or PostgreSQL), or show it. "
        "Back the database up first (docs/deploy.md).",
    )
    dbp.add_argument("action", choices=["upgrade", "status"], help="what to do")
    dbp.add_argument(
        "--db", metavar="URL", help=f"SQLAlchemy database URL (env {ENV_DB}; default {DEFAULT_DB})"
    )
    logging_options(dbp)
    return parser
