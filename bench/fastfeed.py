"""The RSS fast path (aggregator/fastfeed.py) against feedparser, document by document.

For every feed document of the shared corpora (../shared/fixtures/feeds: feedparser's own
ill-formed and encoding cases, with their HTTP header when they carry one), the project's
fixtures (tests/fixtures, the demo outlets) and bench/poll.py's generated feeds, each parsed
with no content type and as application/rss+xml: whether the fast path took it, whether the
:class:`ParsedFeed` it gave equals feedparser's (it must, always), and the milliseconds each
took per document.

    python bench/fastfeed.py

No set here was used to tune anything: the fast path's subset was written from feedparser's
source; these documents only check it. Figures are printed, never asserted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

from poll import render_feed

from aggregator import fastfeed
from aggregator.parse import parse_feed

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "feeds"

URL = "http://example.com/news/feed.xml"
_HEADER_RE = re.compile(rb"^Header:\s*Content-type:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)


def documents() -> Iterator[tuple[str, str, bytes, str | None]]:
    """(corpus, name, bytes, content type) for every document, under each content type."""
    corpora = [
        ("shared", sorted(p for p in SHARED.rglob("*") if p.is_file() and "LICENSE" not in p.name)),
        ("tests", sorted((ROOT / "tests" / "fixtures").rglob("*.xml"))),
        ("demo", sorted((ROOT / "aggregator" / "demo" / "site").rglob("*.xml"))),
    ]
    for corpus, paths in corpora:
        for path in paths:
            data = path.read_bytes()
            header = _HEADER_RE.search(data)
            types = [header.group(1).decode("latin-1")] if header else [None, "application/rss+xml"]
            for kind in types:
                yield corpus, str(path.name), data, kind
    for i in range(200):
        for version in (0, 1):
            yield "bench", f"poll-{i}-{version}", render_feed(i, version), "application/rss+xml"


def main() -> int:
    if not SHARED.is_dir():
        print(f"{SHARED} is not here: the shared corpora are skipped")
    rows: dict[str, list[int]] = {}
    times = {"fast": 0.0, "feedparser": 0.0}
    taken_docs = 0
    for corpus, name, data, kind in documents():
        row = rows.setdefault(corpus, [0, 0, 0])
        row[0] += 1
        started = time.perf_counter()
        fast = parse_feed(data, url=URL, content_type=kind, fast=True)
        middle = time.perf_counter()
        slow = parse_feed(data, url=URL, content_type=kind, fast=False)
        ended = time.perf_counter()
        if fastfeed.parse(data, URL, kind) is None:
            continue
        row[1] += 1
        taken_docs += 1
        times["fast"] += middle - started
        times["feedparser"] += ended - middle
        if fast == slow:
            row[2] += 1
        else:
            print(f"DIFFERENT: {corpus} {name} ({kind}):\n  fast: {fast}\n  feedparser: {slow}")
    print(f"{'corpus':<8} {'documents':>9} {'fast path':>9} {'same as feedparser':>19}")
    for corpus, (total, taken, same) in rows.items():
        print(f"{corpus:<8} {total:>9} {taken:>9} {same:>19}")
    if taken_docs:
        fast_ms = 1000 * times["fast"] / taken_docs
        slow_ms = 1000 * times["feedparser"] / taken_docs
        print(
            f"per document the fast path took: {fast_ms:.2f} ms fast, {slow_ms:.2f} ms "
            f"feedparser ({slow_ms / fast_ms:.0f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
