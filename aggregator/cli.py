"""The ``balanced-news`` command: run, poll, publish, sources, extract, demo, serve, worker, db.

Every command takes ``--sources``, ``--db``, ``--out`` and ``--allow-private-hosts`` (each with
an environment variable; ``db`` takes only ``--db``). A configuration problem, or a database
whose schema is out of date, is one line on stderr and exit status 2; failing sources are
reported but never fail a cycle. Commands raise :mod:`aggregator.errors`; :func:`main` alone
turns them (and the database's and the system's errors) into that line and status.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from aggregator import __version__, demo, extract, logs, polling, schedule, workers
from aggregator.config import (
    DEFAULT_DB,
    ENV_DB,
    ENV_STATUS_TOKEN,
    LEANS,
    Config,
    Source,
    add_common_arguments,
    config_from_args,
    db_url_from_args,
    is_http_url,
    parse_sources,
    private_hosts_allowed,
    source_toml,
)
from aggregator.errors import (
    BalancedNewsError,
    ConfigError,
    ExtractionError,
    FetchError,
    SchemaError,
    Unavailable,
    UsageError,
)
from aggregator.fetch import Fetcher
from aggregator.pipeline import PAGE_ACCEPT, CycleReport, Pipeline
from aggregator.progress import TerminalProgress
from aggregator.publish import write_atomic
from aggregator.publish.files import check_folder
from aggregator.publish.opml import parse_opml
from aggregator.store import (
    Store,
    StoreType,
    connect,
    schema_state,
    shown_url,
    upgrade,
    utcnow,
    why,
)
from aggregator.store.queue import ensure_queue_schema, queue_available

EXIT_CONFIG = 2
EXIT_RUNTIME = 1
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


# --- commands -----------------------------------------------------------------------------------


def check_targets(config: Config) -> None:
    """What a command writes to, checked before the first poll, not after it: the database
    (reachable, writable, this version's schema), then the output folder."""
    connect(config.db_url).dispose()
    check_folder(config.out_dir)


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_targets(config)
    return schedule.run(config, args.once)


def cmd_poll(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    progress = TerminalProgress()
    with Pipeline(config, progress=progress) as pipeline:
        results = pipeline.poll()
    progress.close()
    for r in results:
        line = f"{r.source_id:<24} {r.outcome:<13}"
        line += f" {r.error or r.note}" if r.error or r.note else f" +{r.new_entries}"
        print(line)
    report = CycleReport(sources=results)
    ok = len(results) - len(report.failed) - len(report.waiting)
    print(f"Sources: {ok} ok, {len(report.failed)} failing, {len(report.waiting)} waiting")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_targets(config)
    progress = TerminalProgress()
    report = CycleReport()
    with Pipeline(config, progress=progress) as pipeline:
        pipeline.process(report)
    progress.close()
    print_report(report)
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.action == "import":
        return import_opml(config, args.file, args.lean)
    found = Store.open_existing(config.db_url)  # a listing creates nothing
    try:
        print_sources(config, found, sys.stdout)
    finally:
        if found is not None:
            found.close()
    return 0


def serve_config(args: argparse.Namespace) -> Config:
    """What ``serve`` serves: the output folder (which must exist), with the database and
    sources file that published into it (recorded beside it) unless --db/--sources or their
    environment variables say otherwise."""
    config = config_from_args(args, origin=True)
    if not config.out_dir.is_dir():
        raise ConfigError(
            f"output folder {config.out_dir}: no such folder (publish into it first: "
            f"balanced-news run --once --out {config.out_dir})"
        )
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    from aggregator import serve

    config = serve_config(args)
    # an out-of-date schema is refused now, not per request
    connect(config.db_url, writable=False).dispose()
    print(f"Serving {config.out_dir}/ at http://{args.host}:{args.port}/", file=sys.stderr)
    who = (
        f"loopback clients, and requests sending {ENV_STATUS_TOKEN}"
        if config.status_token
        else f"loopback clients only; set {ENV_STATUS_TOKEN} to open it to others"
    )
    print(f"Status page: /status ({who})", file=sys.stderr)
    serve.serve(config, args.host, args.port)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    workers.check_worker_config(config)  # before procrastinate is imported: one line
    from aggregator.workers.runner import run_worker

    check_targets(config)
    queues = None if args.queues == "all" else [args.queues]
    run_worker(config, args.name, queues)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    return _db_action(args.action, db_url_from_args(args))


def _db_action(action: str, url: str) -> int:
    if action == "upgrade":
        before, after = upgrade(url)
        if before.state == "current":
            print(f"Database already at schema {after.head}: nothing to do")
        elif before.state == "empty":
            print(f"Database created at schema {after.head}")
        else:
            print(f"Database upgraded from schema {before.describe()} to {after.head}")
        if queue_available():
            queue = ensure_queue_schema(url, upgrade=True)
            if queue.created:
                print("Task queue tables (procrastinate, for `balanced-news worker`) created")
            elif queue.applied:
                print(
                    f"Task queue tables (procrastinate) upgraded: {len(queue.applied)} "
                    f"migrations applied ({', '.join(queue.applied)})"
                )
        return 0
    found = schema_state(url)
    print(f"schema: {found.describe()}; this version: {found.head}; state: {found.state}")
    return 0 if found.state == "current" else 1


def import_opml(config: Config, file: str | None, lean: str | None) -> int:
    """Append the OPML file's new feeds to the sources file as validated [[source]] tables."""
    if not file:
        raise UsageError("sources import: name the OPML file to import")
    feeds = parse_opml(_read(file), file)
    known = {url for src in config.sources for url in src.feeds}
    ids = {src.id for src in config.sources}
    added: list[Source] = []
    for feed in feeds:
        if feed.feed in known:
            continue
        chosen = lean or feed.lean or _ask_lean(feed.title, feed.feed)
        if chosen is None:
            raise UsageError(
                f"{file}: {feed.title!r}: lean required "
                f"(pass --lean or answer the question in a terminal)"
            )
        source = Source(
            id=_new_id(feed.title, ids),
            name=feed.title,
            homepage=feed.homepage
            if feed.homepage and is_http_url(feed.homepage)
            else _origin(feed.feed),
            feeds=(feed.feed,),
            lean=chosen,
            rated_by=f"imported from {Path(file).name}; lean set by the operator",
        )
        ids.add(source.id)
        known.add(feed.feed)
        added.append(source)
    if not added:
        print(f"Nothing to import: every feed in {file} is already in {config.sources_path}")
        return 0
    old = config.sources_path.read_text(encoding="utf-8")
    new = old.rstrip("\n") + "\n\n" + "\n".join(source_toml(s) for s in added)
    parse_sources(new, str(config.sources_path))  # the whole file again, before writing it
    write_atomic(config.sources_path, new.encode("utf-8"))
    print(f"Added {len(added)} sources to {config.sources_path}:")
    for s in added:
        print(f"  {s.id:<24} {s.lean:<10} {s.feeds[0]}")
    return 0


def _ask_lean(title: str, url: str) -> str | None:
    """Ask the operator for a feed's lean; None when nobody can answer (no terminal, EOF)."""
    if not sys.stdin or not sys.stdin.isatty():
        return None
    while True:
        try:
            answer = input(f"Lean of {title} ({url}) [{', '.join(LEANS)}]: ").strip()
        except EOFError:
            return None
        if answer in LEANS:
            return answer
        print(f"  please answer one of: {', '.join(LEANS)}", file=sys.stderr)


def _new_id(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "source"
    if not base[0].isalnum():
        base = "s" + base
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def cmd_extract(args: argparse.Namespace) -> int:
    target: str = args.target
    rules = _source_rules(args) if args.source else None
    scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*)://", target)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise UsageError(
            f"extract {target}: cannot read {scheme.group(1)}:// URLs "
            "(give an http(s) URL or a file)"
        )
    if scheme:
        with Fetcher(allow_private_hosts=private_hosts_allowed(args)) as fetcher:
            res = fetcher.get(target, accept=PAGE_ACCEPT)
        if res.error:
            raise FetchError(f"{target}: {res.error}")
        html, url = extract.decode_page(res.content or b"", res.content_type), res.final_url
    else:
        html, url = extract.decode_page(_read(target)), None
    if rules is not None:
        html = extract.strip_elements(html, rules.strip)
    try:
        found = extract.extract_article(html, url, select=rules.select if rules else None)
    except ExtractionError as exc:
        raise ExtractionError(f"{target}: {exc}") from None
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
    else:
        for key, value in found.as_dict().items():
            if key != "text":
                print(f"{key + ':':<8} {value or '-'}")
        print()
        print(found.text)
    return 0


def _read(path: str) -> bytes:
    """A file a command was given, or :class:`Unavailable` naming it as it was given."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise Unavailable(f"{path}: {exc.strerror or exc}") from None


def _source_rules(args: argparse.Namespace) -> Source:
    """The source ``extract --source`` names, for its content rules."""
    config = config_from_args(args)
    try:
        return config.source(args.source)
    except KeyError:
        raise ConfigError(f"{config.sources_path}: no source {args.source!r}") from None


DEMO_SOURCES_FILE = "demo-sources.toml"


def cmd_demo(args: argparse.Namespace) -> int:
    if args.sources:
        raise ConfigError(
            "demo: --sources is not used: the demo polls its own sample outlets; "
            f"for your sources run `balanced-news run --once --sources {args.sources}`"
        )
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="balanced-news-demo-"))
    # A --db at an old schema is refused before anything is made; the default lives in --out.
    db_url = args.db or f"sqlite:///{out.resolve() / 'demo.db'}"
    engine = connect(db_url) if args.db else None
    check_folder(out)
    engine = engine or connect(db_url)
    try:
        web = demo.SampleWeb(demo.SITE, port=args.port)
    except OSError as exc:
        raise Unavailable(
            f"demo: cannot serve the sample outlets on 127.0.0.1:{args.port}: "
            f"{exc.strerror or exc} (choose another with --port)"
        ) from None
    with web:
        # Written out with the sample web's address: serve reads it, and a person can too.
        sources_path = out / DEMO_SOURCES_FILE
        write_atomic(sources_path, web.render(demo.SOURCES.read_text("utf-8")).encode())
        settings, sources = parse_sources(sources_path.read_text("utf-8"), str(sources_path))
        config = Config(
            sources=sources,
            settings=settings,
            sources_path=sources_path,
            db_url=db_url,
            out_dir=out,
            allow_private_hosts=True,  # the sample outlets live on 127.0.0.1
        )
        print(f"Serving {len(sources)} sample outlets at {web.base}/ ...", file=sys.stderr)
        progress = TerminalProgress()
        with Pipeline(config, engine, progress=progress) as pipeline:
            report = pipeline.run_cycle()
        progress.close()
    engine.dispose()
    print_report(report)
    print(f"See it: balanced-news serve --out {out}  (then open http://127.0.0.1:8000/)")
    return 0


_COMMANDS = {
    "run": cmd_run,
    "poll": cmd_poll,
    "publish": cmd_publish,
    "sources": cmd_sources,
    "extract": cmd_extract,
    "demo": cmd_demo,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "db": cmd_db,
}


# --- output -------------------------------------------------------------------------------------


def print_report(report: CycleReport, stream: TextIO | None = None) -> None:
    print("\n".join(report.summary()), file=stream or sys.stdout)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def print_sources(
    config: Config, store: StoreType | None, out: TextIO, now: datetime | None = None
) -> None:
    """One row per configured source, from the store (``None``: no database yet, every source
    new): what each source is doing, and a warning when due sources pile up (polling cannot
    keep up, or no scheduler is running)."""
    now = now or utcnow()
    rows = store.source_states() if store is not None else {}
    failures = store.extract_failures() if store is not None else {}
    header = (
        f"{'SOURCE':<22} {'LEAN':<10} {'KIND':<7} {'STATUS':<8} {'SINCE':<16} "
        f"{'LAST POLL':<16} {'HTTP':>4} {'MS':>6} {'ENTRIES':>7} {'EXTRACT FAILS':>13} "
        f"{'LAST NEW':<16} {'NEXT POLL':<16} LAST ERROR"
    )
    print(header, file=out)
    for src in config.sources:
        row = rows.get(src.id)
        status = "disabled" if not src.enabled else (row.status if row else "new")
        ms = f"{row.mean_response_ms:.0f}" if row and row.mean_response_ms is not None else "-"
        http = str(row.last_http_status) if row and row.last_http_status else "-"
        failed = failures.get(src.id)
        errors = [row.last_error] if row and row.last_error else []
        errors += [f"extract: {failed.last_error}"] if failed else []
        print(
            f"{src.id:<22} {src.lean:<10} {src.kind:<7} {status:<8} "
            f"{_when(row.failing_since if row else None):<16} "
            f"{_when(row.last_poll_at if row else None):<16} {http:>4} {ms:>6} "
            f"{row.entries if row else 0:>7} {failed.count if failed else 0:>13} "
            f"{_when(row.last_new_entry_at if row else None):<16} "
            f"{_when(row.next_poll_at if row else None):<16} {'; '.join(errors)}",
            file=out,
        )
    enabled = {src.id for src in config.enabled_sources}
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
