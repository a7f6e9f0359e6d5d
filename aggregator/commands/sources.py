"""``sources``: each source's state, and the import of another reader's OPML export."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from aggregator import polling, schedule
from aggregator.commands import read_given
from aggregator.config import (
    Config,
    Source,
    config_from_args,
    is_http_url,
    parse_sources,
    source_of,
    source_toml,
)
from aggregator.errors import UsageError
from aggregator.publish import write_atomic
from aggregator.publish.opml import parse_opml
from aggregator.store import Store, StoreType, utcnow
from aggregator.vocab import LEANS


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


def import_opml(config: Config, file: str | None, lean: str | None) -> int:
    """Append the OPML file's new feeds to the sources file as validated [[source]] tables."""
    if not file:
        raise UsageError("sources import: name the OPML file to import")
    feeds = parse_opml(read_given(file), file)
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
        table = {
            "id": _new_id(feed.title, ids),
            "name": feed.title,
            "homepage": feed.homepage
            if feed.homepage and is_http_url(feed.homepage)
            else _origin(feed.feed),
            "feed": feed.feed,
            "lean": chosen,
            "rated_by": f"imported from {Path(file).name}; lean set by the operator",
        }
        source = source_of(table, str(config.sources_path))
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


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def print_sources(
    config: Config, store: StoreType | None, out: TextIO, now: datetime | None = None
) -> None:
    """One row per configured source, from the store (``None``: no database yet, every source
    new): what each source is doing, who owns it where that is known, and a warning when due
    sources pile up (polling cannot keep up, or no scheduler is running)."""
    now = now or utcnow()
    rows = store.source_states() if store is not None else {}
    failures = store.extract_failures() if store is not None else {}
    # Who owns each outlet, where sources.toml says ("-": not known).
    owned = max((len(src.owner) for src in config.sources), default=0)
    width = max(owned, len("OWNER"))
    header = (
        f"{'SOURCE':<22} {'LEAN':<10} {'KIND':<7} {'STATUS':<8} {'SINCE':<16} "
        f"{'LAST POLL':<16} {'HTTP':>4} {'MS':>6} {'ENTRIES':>7} {'EXTRACT FAILS':>13} "
        f"{'LAST NEW':<16} {'NEXT POLL':<16} {'OWNER':<{width}} LAST ERROR"
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
            f"{_when(row.next_poll_at if row else None):<16} {src.owner or '-':<{width}} "
            f"{'; '.join(errors)}",
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
