"""The ``balanced-news`` command: run, poll, publish, sources, extract and demo.

Every command takes ``--sources``, ``--db``, ``--out`` and ``--allow-private-hosts`` (each with
an environment variable). A configuration problem is one line on stderr and exit status 2;
failing sources are reported but never fail a cycle.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select

from aggregator import __version__, demo, extract, polling, schedule
from aggregator.config import (
    Config,
    ConfigError,
    add_common_arguments,
    config_from_args,
    parse_sources,
    private_hosts_allowed,
)
from aggregator.db import EntryRow, SourceRow, utcnow
from aggregator.fetch import Fetcher
from aggregator.pipeline import PAGE_ACCEPT, CycleReport, Pipeline
from aggregator.progress import TerminalProgress

EXIT_CONFIG = 2

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

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_common_arguments(sub)
        sub.add_argument("-v", "--verbose", action="store_true", help="log each step")
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
    command(
        "sources",
        "Show each source: lean, status (ok, failing since, parked), last poll, HTTP status, "
        "mean response time, entries, last new entry, next poll, last error.",
    )
    ex = command(
        "extract",
        "Print what article extraction finds on a page (a file or a URL), to debug a site.",
    )
    ex.add_argument("target", metavar="PATH_OR_URL", help="an HTML file or an http(s) URL")
    ex.add_argument("--json", action="store_true", help="print JSON (text, title, author, ...)")
    dm = command(
        "demo",
        "Serve the bundled sample outlets on 127.0.0.1 and run one full cycle over them; "
        "works with no internet. Output goes to --out (default: a new temporary folder).",
    )
    dm.set_defaults(out=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or _long_running(args) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s" if args.verbose else "%(message)s",
        stream=sys.stderr,
    )
    handler = _COMMANDS[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"balanced-news: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _long_running(args: argparse.Namespace) -> bool:
    """The scheduler logs what it does: nobody watches a terminal for months."""
    return args.command == "run" and not args.once


# --- commands -----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    return schedule.run(config_from_args(args), args.once)


def cmd_poll(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    progress = TerminalProgress()
    results = Pipeline(config, progress=progress).poll()
    progress.close()
    for r in results:
        line = f"{r.source_id:<24} {r.outcome:<13}"
        line += f" {r.error or r.note}" if r.error or r.note else f" +{r.new_entries}"
        print(line)
    failed = sum(r.outcome == "error" for r in results)
    waiting = sum(r.outcome == "waiting" for r in results)
    print(f"{len(results) - waiting} sources polled, {failed} failed, {waiting} waiting")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    progress = TerminalProgress()
    report = CycleReport()
    Pipeline(config, progress=progress).process(report)
    progress.close()
    print_report(report)
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    print_sources(Pipeline(config), sys.stdout)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    target: str = args.target
    if target.startswith(("http://", "https://")):
        with Fetcher(allow_private_hosts=private_hosts_allowed(args)) as fetcher:
            res = fetcher.get(target, accept=PAGE_ACCEPT)
        if res.error:
            print(f"balanced-news: {target}: {res.error}", file=sys.stderr)
            return 1
        html, url = res.content, res.final_url
    else:
        try:
            html, url = Path(target).read_bytes(), None
        except OSError as exc:
            print(f"balanced-news: {target}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    try:
        found = extract.extract_article(html, url)
    except extract.ExtractionError as exc:
        print(f"balanced-news: {target}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
    else:
        for key, value in found.as_dict().items():
            if key != "text":
                print(f"{key + ':':<8} {value or '-'}")
        print()
        print(found.text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="balanced-news-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    db_url = args.db or f"sqlite:///{out / 'demo.db'}"
    with demo.SampleWeb(demo.SITE) as web:
        settings, sources = parse_sources(
            web.render(demo.SOURCES.read_text(encoding="utf-8")), str(demo.SOURCES)
        )
        config = Config(
            sources=sources,
            settings=settings,
            sources_path=demo.SOURCES,
            db_url=db_url,
            out_dir=out,
            allow_private_hosts=True,  # the sample outlets live on 127.0.0.1
        )
        print(f"Serving {len(sources)} sample outlets at {web.base}/ ...", file=sys.stderr)
        progress = TerminalProgress()
        report = Pipeline(config, progress=progress).run_cycle()
        progress.close()
    print_report(report)
    return 0


_COMMANDS = {
    "run": cmd_run,
    "poll": cmd_poll,
    "publish": cmd_publish,
    "sources": cmd_sources,
    "extract": cmd_extract,
    "demo": cmd_demo,
}


# --- output -------------------------------------------------------------------------------------


def print_report(report: CycleReport, stream: TextIO | None = None) -> None:
    print("\n".join(report.summary()), file=stream or sys.stdout)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def print_sources(pipeline: Pipeline, out: TextIO, now: datetime | None = None) -> None:
    """One row per configured source, from the database: what each source is doing, and a
    warning when due sources pile up (polling cannot keep up, or no scheduler is running)."""
    now = now or utcnow()
    with pipeline.session() as s:
        rows = {r.id: r for r in s.scalars(select(SourceRow))}
        counts = dict(
            s.execute(select(EntryRow.source_id, func.count()).group_by(EntryRow.source_id)).all()
        )
    header = (
        f"{'SOURCE':<22} {'LEAN':<10} {'KIND':<7} {'STATUS':<8} {'SINCE':<16} "
        f"{'LAST POLL':<16} {'HTTP':>4} {'MS':>6} {'ENTRIES':>7} {'LAST NEW':<16} "
        f"{'NEXT POLL':<16} LAST ERROR"
    )
    print(header, file=out)
    for src in pipeline.config.sources:
        row = rows.get(src.id)
        status = "disabled" if not src.enabled else (row.status if row else "new")
        ms = f"{row.mean_response_ms:.0f}" if row and row.mean_response_ms is not None else "-"
        http = str(row.last_http_status) if row and row.last_http_status else "-"
        error = (row.last_error or "") if row else ""
        print(
            f"{src.id:<22} {src.lean:<10} {src.kind:<7} {status:<8} "
            f"{_when(row.failing_since if row else None):<16} "
            f"{_when(row.last_poll_at if row else None):<16} {http:>4} {ms:>6} "
            f"{counts.get(src.id, 0):>7} {_when(row.last_new_entry_at if row else None):<16} "
            f"{_when(row.next_poll_at if row else None):<16} {error}",
            file=out,
        )
    enabled = {src.id for src in pipeline.config.enabled_sources}
    grace = timedelta(seconds=2 * schedule.TICK_SECONDS)
    late = polling.backlog((r.next_poll_at for r in rows.values() if r.id in enabled), now, grace)
    if late:
        print(
            f"warning: {late} of {len(enabled)} sources are overdue by more than "
            f"{grace.total_seconds() / 60:g} minutes: polling cannot keep up "
            "(raise [settings] concurrency) or no scheduler is running",
            file=out,
        )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
