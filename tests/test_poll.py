"""The polling engine against a misbehaving loopback web: every fault recorded for its own
source only, nothing stored twice, waits and moves remembered in the database."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from aggregator.cli import print_sources
from aggregator.demo import SampleWeb
from aggregator.pipeline import CycleReport, Pipeline
from aggregator.pipeline.parsing import ParserPool
from aggregator.store.schema import EntryRow, FeedRow, PollRow, SourceRow, utcnow
from tests.conftest import (
    FIXTURES,
    SITE,
    extra_source,
    hang,
    hang_mid_body,
    make_config,
    redirect,
    respond,
    trickle,
)

FEEDS = FIXTURES / "feeds"
RSS = "application/rss+xml"


def feed(*items: tuple[str, str, str], channel: str = "") -> bytes:
    """A small RSS document with (guid, link path, title) items and extra channel markup."""
    body = "".join(
        f"<item><guid>{g}</guid><link>https://example.invalid/{link}</link>"
        f"<title>{t}</title><pubDate>Tue, 24 Nov 2026 1{n}:00:00 GMT</pubDate></item>"
        for n, (g, link, t) in enumerate(items)
    )
    return f"<rss version='2.0'><channel><title>T</title>{channel}{body}</channel></rss>".encode()


def entries(pipeline: Pipeline, source_id: str | None = None) -> list[EntryRow]:
    with pipeline.session() as s:
        query = select(EntryRow).order_by(EntryRow.id)
        if source_id:
            query = query.where(EntryRow.source_id == source_id)
        return list(s.scalars(query))


def source_row(pipeline: Pipeline, source_id: str) -> SourceRow:
    with pipeline.session() as s:
        row = s.get(SourceRow, source_id)
        assert row is not None
        return row


def test_every_fault_is_recorded_for_its_source_only(web: SampleWeb, tmp_path: Path) -> None:
    good = web.body("alpha/rss.xml") or b""
    bomb = gzip.compress(b"<rss>" + b" " * 5_000_000)
    routes = {
        "slow": hang(60),  # far past the read timeout: the timeout, not the server, ends it
        "midbody": hang_mid_body(good, 60),
        "trickle": trickle(good, 0.05),
        "huge": respond(200, b"<rss>" + b"x" * 300_000, RSS),
        "bomb": respond(200, bomb, RSS, Content_Encoding="gzip"),
        "invalid": respond(200, (SITE / "broken" / "invalid.xml").read_bytes(), RSS),
        "html": respond(200, (FEEDS / "not-a-feed.html").read_bytes(), "text/html"),
        "empty": respond(200, b"", RSS),
        "err": respond(500, b"oops"),
        "busy": respond(503, b"busy", Retry_After="120"),
        "limited": respond(429, b"slow down", Retry_After="3600"),
        "gone": respond(410, b"gone"),
        "loop": redirect("/loop/rss.xml", 302),
        "chain": redirect("/chain/1", 302),
    }
    for name, handler in routes.items():
        web.routes[f"/{name}/rss.xml"] = handler
    web.routes["/loop/rss.xml"] = redirect("/loop2/rss.xml", 301)
    web.routes["/loop2/rss.xml"] = redirect("/loop/rss.xml", 302)
    for n in range(1, 9):
        web.routes[f"/chain/{n}"] = redirect(f"/chain/{n + 1}")
    config = make_config(
        web,
        tmp_path,
        extra=tuple(extra_source(web, name, f"{name}/rss.xml") for name in routes),
        # Generous for the healthy sources, which these limits also bind on a loaded machine;
        # the faulty routes hang or trickle far longer.
        timeout=3.0,
        total_timeout=6.0,
        max_feed_bytes=200_000,
        per_host=8,
    )
    pipeline = Pipeline(config)
    results = {r.source_id: r for r in pipeline.poll()}
    errors = {sid: r.error for sid, r in results.items() if r.outcome == "error"}
    assert set(errors) == set(routes)
    assert errors["slow"] == "read timed out after 3s"
    assert errors["midbody"] == "read timed out after 3s"
    assert errors["trickle"] == "took longer than 6s in total"
    assert errors["huge"] == "response too large (300005 bytes, limit 200000)"
    assert errors["bomb"] == "response too large (over 200000 bytes)"
    assert errors["invalid"].startswith("invalid feed: ")
    assert errors["html"] == "invalid feed: text/html is not an XML media type"
    assert errors["empty"] == "empty response (no feed document)"
    assert errors["err"] == "HTTP 500 Internal Server Error"
    assert errors["busy"] == "HTTP 503 Service Unavailable"
    assert errors["limited"] == "HTTP 429 Too Many Requests"
    assert errors["gone"] == "HTTP 410 Gone"
    assert errors["loop"].startswith("redirect loop: ")
    assert errors["chain"] == "too many redirects (more than 5)"
    healthy = {src.id for src in config.sources} - set(routes)
    assert {results[sid].outcome for sid in healthy} == {"new"}, "the others are unaffected"

    statuses = {sid: source_row(pipeline, sid) for sid in results}
    assert {sid for sid, row in statuses.items() if row.status == "parked"} == {"gone"}
    assert {sid for sid, row in statuses.items() if row.status == "ok"} == healthy
    assert statuses["err"].last_http_status == 500 and statuses["gone"].last_http_status == 410
    assert statuses["busy"].retry_until is not None and statuses["limited"].retry_until is not None
    assert statuses["limited"].retry_until > utcnow() + timedelta(minutes=59)
    assert statuses["err"].retry_until is None

    # Polled again: the failing ones wait (backoff, Retry-After, parked), nothing is stored
    # twice, and the healthy ones cost a 304 each.
    stored = len(entries(pipeline))
    before = {name: len(web.seen(f"/{name}/rss.xml")) for name in routes}
    again = {r.source_id: r for r in pipeline.poll()}
    assert {sid for sid, r in again.items() if r.outcome == "waiting"} == set(routes)
    assert "server asked us to wait" in (again["limited"].note or "")
    assert "parked" in (again["gone"].note or "")
    assert {name: len(web.seen(f"/{name}/rss.xml")) for name in routes} == before
    assert {again[sid].outcome for sid in healthy} == {"not-modified"}
    assert len(entries(pipeline)) == stored
    # Waiting out a failure's backoff is still failing, in the summary `run --once` prints.
    summary = CycleReport(sources=list(again.values())).summary()
    assert f"Sources: {len(healthy)} ok, {len(routes)} failing;" in summary[0]

    # The operator's view names every state, and the published notice names the parked one.
    out = io.StringIO()
    print_sources(pipeline.config, pipeline.store, out)
    table = out.getvalue()
    assert "parked" in table and "failing" in table and "HTTP 410 Gone" in table
    notice = [s for s in pipeline.failing_sources() if s.name == "Gone News"]
    assert notice and notice[0].error.startswith("parked")


def test_charsets_are_reconciled(web: SampleWeb, tmp_path: Path) -> None:
    cyrillic = (FEEDS / "windows-1251.xml").read_bytes()
    latin = (FEEDS / "iso-8859-1.xml").read_bytes()
    web.routes["/ru/rss.xml"] = respond(200, cyrillic, RSS)  # declaration only
    web.routes["/ru2/rss.xml"] = respond(200, cyrillic, "text/xml")  # header says us-ascii
    web.routes["/fr/rss.xml"] = respond(200, latin, "text/xml; charset=iso-8859-1")
    web.routes["/fr2/rss.xml"] = respond(200, latin, "application/xml; charset=utf-8")  # wrong
    names = ("ru", "ru2", "fr", "fr2")
    config = make_config(
        web, tmp_path, extra=tuple(extra_source(web, n, f"{n}/rss.xml") for n in names)
    )
    pipeline = Pipeline(config)
    results = {r.source_id: r for r in pipeline.poll(config.sources[-4:])}
    assert {results[n].outcome for n in names} == {"new"}
    for name in ("ru", "ru2"):
        assert [e.title for e in entries(pipeline, name)] == ["Городской совет утвердил бюджет"]
    for name in ("fr", "fr2"):
        assert [e.title for e in entries(pipeline, name)] == [
            "Le café de la place rouvre après l'été"
        ]


def test_layered_not_modified(web: SampleWeb, tmp_path: Path) -> None:
    v1 = feed(("a", "a", "First"))
    v2 = feed(("a", "a", "First"), ("b", "b", "Second"))
    web.routes["/etag/rss.xml"] = respond(200, v1, RSS, ETag='"same"')
    web.routes["/plain/rss.xml"] = respond(200, v1, RSS)
    config = make_config(
        web,
        tmp_path,
        extra=(
            extra_source(web, "etag", "etag/rss.xml"),
            extra_source(web, "plain", "plain/rss.xml"),
        ),
    )
    pipeline = Pipeline(config)
    srcs = [config.source("etag"), config.source("plain")]
    assert [r.outcome for r in pipeline.poll(srcs)] == ["new", "new"]
    # A server ignoring If-None-Match but sending the same ETag: not parsed, so the item the
    # new body carries is not seen until the validator changes.
    web.routes["/etag/rss.xml"] = respond(200, v2, RSS, ETag='"same"')
    # A server with no validators sending the very same bytes: not parsed either.
    results = pipeline.poll(srcs)
    assert [r.outcome for r in results] == ["not-modified", "unchanged"]
    assert len(entries(pipeline, "etag")) == 1
    web.routes["/etag/rss.xml"] = respond(200, v2, RSS, ETag='"new"')
    web.routes["/plain/rss.xml"] = respond(200, v2, RSS)
    assert [(r.outcome, r.new_entries) for r in pipeline.poll(srcs)] == [("new", 1), ("new", 1)]
    with pipeline.session() as s:
        polls = s.scalars(select(PollRow.outcome).where(PollRow.source_id == "plain")).all()
        assert polls == ["new", "unchanged", "new"]


def test_permanent_redirect_moves_the_feed_temporary_does_not(
    web: SampleWeb, tmp_path: Path
) -> None:
    body = feed(("a", "a", "First"))
    web.routes["/moved/rss.xml"] = redirect("/moved/v2", 301)
    web.routes["/moved/v2"] = redirect("/moved/v3", 308)
    web.routes["/moved/v3"] = respond(200, body, RSS)
    web.routes["/temp/rss.xml"] = redirect("/temp/elsewhere", 302)
    web.routes["/temp/elsewhere"] = respond(200, body, RSS)
    web.routes["/half/rss.xml"] = redirect("/half/b", 301)
    web.routes["/half/b"] = redirect("/half/c", 302)
    web.routes["/half/c"] = respond(200, body, RSS)
    names = ("moved", "temp", "half")
    config = make_config(
        web, tmp_path, extra=tuple(extra_source(web, n, f"{n}/rss.xml") for n in names)
    )
    pipeline = Pipeline(config)
    srcs = [config.source(n) for n in names]
    assert [r.outcome for r in pipeline.poll(srcs)] == ["new"] * 3
    with pipeline.session() as s:
        moved = {row.source_id: row.fetch_url for row in s.scalars(select(FeedRow))}
    assert moved["moved"] == web.url("moved/v3")
    assert moved["temp"] is None
    assert moved["half"] == web.url("half/b"), "only the permanent part of a chain is kept"
    pipeline.poll(srcs)
    assert len(web.seen("/moved/rss.xml")) == 1, "the moved feed is polled at its new address"
    assert len(web.seen("/temp/rss.xml")) == 2
    assert len(entries(pipeline, "moved")) == 1


def test_entry_identity_survives_guid_changes_duplicates_and_pruning(
    web: SampleWeb, tmp_path: Path
) -> None:
    web.routes["/id/rss.xml"] = respond(200, feed(("g1", "one", "One"), ("g2", "two", "Two")), RSS)
    web.routes["/dup/rss.xml"] = respond(200, (FEEDS / "dup-guid.xml").read_bytes(), RSS)
    config = make_config(
        web,
        tmp_path,
        extra=(extra_source(web, "id", "id/rss.xml"), extra_source(web, "dup", "dup/rss.xml")),
        retention_days=1,
    )
    pipeline = Pipeline(config)
    id_src, dup_src = config.source("id"), config.source("dup")
    capped = Pipeline(replace(config, settings=replace(config.settings, max_entries=1)))
    (one,) = capped.poll([id_src])
    assert one.new_entries == 1, "entries beyond max_entries are not processed"
    with pipeline.session.begin() as s:  # start over with the whole feed
        s.execute(delete(EntryRow))
        s.execute(update(FeedRow).values(body_hash=None))
    pipeline.poll([id_src, dup_src])
    assert len(entries(pipeline, "id")) == 2
    assert [e.key for e in entries(pipeline, "dup")].count("dup-1") == 1
    # The feed re-issues every guid: same link and title, same entries, even when the link
    # comes back spelled another way (tracking parameters, a trailing slash, a fragment).
    web.routes["/id/rss.xml"] = respond(
        200,
        feed(
            ("x1", "one?utm_source=rss&amp;utm_medium=feed", "One"),
            ("x2", "two/#comments", "Two"),
            ("x3", "three", "Three"),
        ),
        RSS,
    )
    (result,) = pipeline.poll([id_src])
    assert result.new_entries == 1 and len(entries(pipeline, "id")) == 3
    # Pruned entries stay pruned while the feed still lists them.
    with pipeline.session.begin() as s:
        for entry in s.scalars(select(EntryRow)):
            entry.fetched_at -= timedelta(days=2)
    assert pipeline.prune() > 0 and entries(pipeline, "id") == []
    web.routes["/id/rss.xml"] = respond(
        200,
        feed(
            ("x1", "one", "One"),
            ("y2", "two", "Two"),
            ("x3", "three", "Three"),
            ("x4", "four", "Four"),
        ),
        RSS,
    )
    (result,) = pipeline.poll([id_src])
    assert result.new_entries == 1
    assert [e.title for e in entries(pipeline, "id")] == ["Four"]


def test_a_new_source_with_two_feeds_stores_a_shared_entry_once(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A source with nothing stored yet skips the look-up of known entries; an entry both its
    feeds list is still stored once."""
    web.routes["/two/a.xml"] = respond(200, feed(("s1", "shared", "Shared"), ("a1", "a", "A")), RSS)
    web.routes["/two/b.xml"] = respond(200, feed(("s1", "shared", "Shared"), ("b1", "b", "B")), RSS)
    two = replace(
        extra_source(web, "two", "two/a.xml"), feeds=(web.url("two/a.xml"), web.url("two/b.xml"))
    )
    pipeline = Pipeline(make_config(web, tmp_path, extra=(two,)))
    (result,) = pipeline.poll([two])
    assert result.new_entries == 3
    assert sorted(e.title for e in entries(pipeline, "two")) == ["A", "B", "Shared"]


def test_a_stalled_host_does_not_hold_up_the_others(web: SampleWeb, tmp_path: Path) -> None:
    """Three feeds on a host that hangs (more than its two per-host slots) and the fixture
    outlets on a second host: every healthy source finishes before any stalled one."""
    released = threading.Event()

    def stall(h) -> None:  # noqa: ANN001 - the stdlib handler
        released.wait(3)
        respond(200, b"late")(h)

    with SampleWeb(SITE, host="127.0.0.2") as other:
        for n in range(3):
            web.routes[f"/stall{n}/rss.xml"] = stall
        base = make_config(other, tmp_path, timeout=1.0)
        stalled = tuple(extra_source(web, f"stall{n}", f"stall{n}/rss.xml") for n in range(3))
        config = replace(base, sources=stalled + base.sources)
        order: list[str] = []
        pipeline = Pipeline(config, progress=lambda stage, d, t, detail: order.append(detail))
        try:
            results = {r.source_id: r for r in pipeline.poll()}
        finally:
            released.set()
    healthy = [src.id for src in base.sources]
    assert {results[sid].outcome for sid in healthy} == {"new"}
    assert {results[f"stall{n}"].outcome for n in range(3)} == {"error"}
    finished = [d.split(":")[0] for d in order]
    assert set(finished[: len(healthy)]) == set(healthy), finished
    with pipeline.session() as s:
        assert s.scalar(select(func.count()).select_from(EntryRow)) == len(entries(pipeline))


def test_schedule_follows_server_hints_and_sources_warns_of_backlog(
    web: SampleWeb, tmp_path: Path
) -> None:
    ttl = feed(("a", "a", "A"), channel="<ttl>180</ttl>")
    web.routes["/ttl/rss.xml"] = respond(200, ttl, RSS)
    web.routes["/cached/rss.xml"] = respond(
        200, feed(("b", "b", "B")), RSS, Cache_Control="max-age=7200"
    )
    names = ("ttl", "cached")
    config = make_config(
        web, tmp_path, extra=tuple(extra_source(web, n, f"{n}/rss.xml") for n in names)
    )
    pipeline = Pipeline(config)
    before = utcnow()
    pipeline.poll()
    assert source_row(pipeline, "ttl").next_poll_at >= before + timedelta(minutes=180)
    assert source_row(pipeline, "cached").next_poll_at >= before + timedelta(hours=2)
    alpha = source_row(pipeline, "alpha")
    assert alpha.mean_gap_seconds and alpha.last_new_entry_at and alpha.mean_response_ms
    assert before + timedelta(minutes=5) <= alpha.next_poll_at <= before + timedelta(hours=27)

    out = io.StringIO()
    print_sources(pipeline.config, pipeline.store, out)
    assert "warning" not in out.getvalue()
    out = io.StringIO()
    print_sources(pipeline.config, pipeline.store, out, now=utcnow() + timedelta(days=2))
    assert f"warning: {len(config.sources)} of {len(config.sources)} sources are overdue" in (
        out.getvalue()
    )


def test_a_dead_parser_process_is_replaced(web: SampleWeb, tmp_path: Path) -> None:
    import os
    import signal

    pipeline = Pipeline(make_config(web, tmp_path))
    pipeline.parsers.start()
    killed = pipeline.parsers.pids()
    assert killed, "workers up"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    results = pipeline.poll()
    assert {r.outcome for r in results} == {"new"}
    assert pipeline.parsers.pids() and not set(killed) & set(pipeline.parsers.pids())
    pipeline.close()


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_process_leaves_no_parser_behind() -> None:
    """SIGKILL gives the pool no shutdown: its workers (the forkserver's children, not the
    process's) notice the process is gone and end, instead of waiting for work for ever."""
    import signal
    import subprocess
    import sys
    import time

    code = (
        "from aggregator.pipeline.parsing import ParserPool\n"
        "pool = ParserPool(); pool.start()\n"
        "print(*pool.pids(), flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    workers = [int(pid) for pid in proc.stdout.readline().split()]
    assert workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "parser workers outlived their process"


def test_a_feed_too_slow_to_parse_is_given_up_and_the_others_carry_on(
    web: SampleWeb, tmp_path: Path
) -> None:
    items = "".join(
        f"<item><guid>g{i}</guid><link>https://example.invalid/{i}</link><title>T{i}</title></item>"
        for i in range(40_000)
    )
    web.routes["/heavy/rss.xml"] = respond(
        200, f"<rss version='2.0'><channel><title>H</title>{items}</channel></rss>".encode(), RSS
    )
    config = make_config(web, tmp_path, extra=(extra_source(web, "heavy", "heavy/rss.xml"),))
    pipeline = Pipeline(replace(config, settings=replace(config.settings, parse_timeout=0.5)))
    results = {r.source_id: r for r in pipeline.poll()}
    assert results["heavy"].outcome == "error"
    assert results["heavy"].error == "the feed took over 0.5 s to parse (parse_timeout); skipped"
    assert {r.outcome for sid, r in results.items() if sid != "heavy"} == {"new"}
    assert entries(pipeline, "heavy") == []
    assert "parse_timeout" in (source_row(pipeline, "heavy").last_error or "")


def test_a_parser_stuck_in_c_code_is_killed_and_replaced() -> None:
    """A regular expression backtracking for ever holds a worker where no exception reaches
    it: past its deadline that worker (and only it) is killed, the feed gets an error, the
    next parse works."""
    import functools
    import re

    from aggregator.parse import parse_feed

    stuck = functools.partial(re.match, r"(a+)+$", "a" * 64 + "b")
    with ParserPool() as pool:
        pool.start()
        before = pool.pids()
        result = pool.run(stuck, deadline=1.0)  # type: ignore[arg-type]
        assert result.error == "the feed took over 1 s to parse (parse_timeout); skipped"
        ended = set(before) - set(pool.pids())
        assert len(ended) == 1, "the worker that overran, not the others"
        assert not _alive(ended.pop())
        after = pool.run(functools.partial(parse_feed, feed(("g", "l", "Fine"))), deadline=30)
        assert [e.title for e in after.entries] == ["Fine"]


def test_a_parse_waiting_for_a_worker_is_not_counted_against_its_deadline() -> None:
    """Many feeds parse at once on a few workers: the deadline counts each parse's own run,
    so healthy parses queued behind each other are never taken for hung ones."""
    import asyncio
    import functools
    import time

    # 0.02 s parses under a 2 s deadline, while the whole queue takes 5 s or more: counting
    # from the queue's start would end most of them.
    deadline, each = 2.0, 0.02
    with ParserPool() as pool:
        pool.start()
        jobs = [functools.partial(time.sleep, each) for _ in range(250 * pool.size)]

        async def parse_all() -> list[object]:
            return await asyncio.gather(*(pool.parse(j, deadline) for j in jobs))  # type: ignore[arg-type]

        started = time.perf_counter()
        assert asyncio.run(parse_all()) == [None] * len(jobs)
        assert time.perf_counter() - started > 1.5 * deadline, "the queue outlasts the deadline"


def test_a_hung_parse_does_not_take_other_feeds_parses_with_it() -> None:
    """Ending the worker under a hung parse leaves the parses beside it alone: they finish on
    the other workers and on its replacement, none cancelled (which would end the whole
    poll)."""
    import asyncio
    import functools
    import re
    import time

    stuck = functools.partial(re.match, r"(a+)+$", "a" * 64 + "b")
    healthy = functools.partial(time.sleep, 0.3)

    with ParserPool(2) as pool:
        pool.start()

        async def scenario() -> tuple[object, list[object]]:
            hung = asyncio.create_task(pool.parse(stuck, 1.5))  # type: ignore[arg-type]
            await asyncio.sleep(0.8)
            others = [asyncio.create_task(pool.parse(healthy, 10)) for _ in range(8)]  # type: ignore[arg-type]
            return await hung, await asyncio.gather(*others)

        hung, others = asyncio.run(scenario())
    assert hung.error == "the feed took over 1.5 s to parse (parse_timeout); skipped"  # type: ignore[attr-defined]
    assert others == [None] * 8


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not here")
def test_the_parser_pool_has_a_worker_per_core_the_process_may_use() -> None:
    """Pinned to one core (as a container's cpuset pins it), the poller starts one parser
    worker, not one per core of the machine."""
    code = (
        "from aggregator.pipeline.parsing import ParserPool\n"
        "pool = ParserPool(); pool.start()\n"
        "print(len(pool.pids()))\n"
        "pool.close()\n"
    )
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert pinned.stdout.strip() == "1"
