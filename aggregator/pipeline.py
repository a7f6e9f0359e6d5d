"""One cycle: fetch -> parse -> extract -> group -> rewrite -> publish, with the database between.

This is the only module that knows the order of the stages and the only one that talks to the
database. Each stage commits its own work in short transactions (one source, one batch of
groupings, one story), so a crash mid-cycle loses nothing already committed and never leaves
half a story; network I/O happens outside transactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, func, insert, literal, select, union_all, update
from sqlalchemy.orm import Session

from aggregator import cluster, db, extract, polling, publish, rewrite, robots
from aggregator.config import Config, Source
from aggregator.db import (
    EntryRow,
    FeedRow,
    PollRow,
    SourceRow,
    StageRow,
    StoryRow,
    TombstoneRow,
    UTCDateTime,
    utcnow,
)
from aggregator.fetch import AsyncFetcher, Fetcher, user_agent
from aggregator.identity import canonical_url
from aggregator.models import (
    ClusterArticle,
    Coverage,
    FeedEntry,
    FetchResult,
    ParsedFeed,
    PublishedStory,
    RelatedLink,
    SourceStatus,
    StoryArticle,
    Validators,
)
from aggregator.parse import entry_ident, parse_feed, strip_html
from aggregator.publish import websub
from aggregator.rewrite.model import ModelRewriter

log = logging.getLogger("aggregator")

FEED_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
STAGES = ("fetch", "extract", "group", "rewrite", "publish")

# The order entries are grouped and rewritten in: published time, then fetch time, then the
# entry's own identity (never the row id, which depends on which source answered first), so a
# replay of the same feeds opens every story with the same article on every machine.
ENTRY_ORDER = (EntryRow.published_at, EntryRow.fetched_at, EntryRow.source_id, EntryRow.key)

Progress = Callable[[str, int, int, str], None]


def _no_progress(stage: str, done: int, total: int, detail: str) -> None:
    return None


_RNG = random.Random()  # jitter; one generator, not one seeded from the OS per poll
_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def parser_pool() -> ProcessPoolExecutor:
    """Worker processes for feedparser (CPU-bound), one per core, started once per process.

    forkserver, not fork: the parent has threads (scheduler, writer, test servers) that a
    forked child would inherit in an unknown state.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and getattr(_POOL, "_broken", False):
            _POOL.shutdown(wait=False, cancel_futures=True)  # a worker died: start afresh
            _POOL = None
        if _POOL is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["aggregator.parse"])
            _POOL = ProcessPoolExecutor(max_workers=os.cpu_count() or 2, mp_context=context)
        return _POOL


async def _parse_in_pool(parse: Callable[[], ParsedFeed]) -> ParsedFeed:
    """Run ``parse`` in a worker process; a dead worker (killed, out of memory, a crash in
    a C parser) costs a fresh pool and one retry, then an error for this feed only."""
    loop = asyncio.get_running_loop()
    for attempt in (1, 2):
        try:
            return await loop.run_in_executor(parser_pool(), parse)
        except BrokenProcessPool:
            log.warning("feed parser process died (attempt %d); restarting the pool", attempt)
    return ParsedFeed(title=None, entries=(), error="the feed parser crashed on this document")


@dataclass(frozen=True)
class _FeedState:
    """What we remember of a feed for its next poll."""

    fetch_url: str  # the configured URL, or where it moved permanently
    validators: Validators
    body_hash: str | None


@dataclass
class _FeedPoll:
    """One feed's fetch and what it came to, on its way to the database."""

    url: str  # the configured URL (the feed's key)
    started: datetime
    result: FetchResult
    outcome: str = "error"  # new, unchanged, not-modified, error
    error: str | None = None
    parsed: ParsedFeed | None = None
    body_hash: str | None = None
    new_entries: int = 0


def _same_validators(sent: Validators, got: Validators) -> bool:
    """A 200 carrying the very validators we sent: the server ignored our conditional GET."""
    if sent.etag or got.etag:
        return bool(sent.etag) and sent.etag == got.etag
    return bool(sent.last_modified) and sent.last_modified == got.last_modified


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, or on a fresh thread when this one already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="poll-loop") as pool:
        return pool.submit(asyncio.run, coro).result()


class _PollWriter:
    """The database side of a poll: one thread, several finished sources per transaction.

    Sources that finish together share a commit (a commit per source is most of the cost of a
    warm cycle); each source is still stored whole or not at all. Should a batch fail, each of
    its sources is retried in a transaction of its own, so one bad source spoils no other.
    """

    def __init__(self, pipeline: Pipeline, loop: asyncio.AbstractEventLoop) -> None:
        self.pipeline = pipeline
        self.loop = loop
        self._pending: list[tuple[Source, list[_FeedPoll], asyncio.Future[SourceResult]]] = []
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="poll-writer")

    async def store(self, src: Source, polls: list[_FeedPoll]) -> SourceResult:
        future: asyncio.Future[SourceResult] = self.loop.create_future()
        with self._lock:
            self._pending.append((src, polls, future))
        self._thread.submit(self._flush)
        return await future

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    @staticmethod
    def _preload(s: Session, batch: list[tuple[Source, list[_FeedPoll], object]]) -> list[object]:
        """The batch's source and feed rows in two queries; ``Session.get`` then finds them in
        the identity map instead of asking the database once per source. The caller keeps the
        returned rows: the identity map holds unchanged rows only weakly."""
        ids = [src.id for src, _, _ in batch]
        urls = [p.url for _, polls, _ in batch for p in polls]
        return [
            *s.scalars(select(SourceRow).where(SourceRow.id.in_(ids))),
            *s.scalars(select(FeedRow).where(FeedRow.url.in_(urls))),
        ]

    @staticmethod
    def _fresh(s: Session, batch: list[tuple[Source, list[_FeedPoll], object]]) -> set[str]:
        """Sources of the batch with entries to store and nothing stored yet (no entry, no
        tombstone): one query here spares each of them the query for its known entries."""
        ids = {src.id for src, polls, _ in batch if any(p.parsed for p in polls)}
        if not ids:
            return set()
        stored = union_all(
            *(
                select(model.source_id).where(model.source_id.in_(ids))
                for model in (EntryRow, TombstoneRow)
            )
        )
        return ids - set(s.scalars(select(stored.subquery().c.source_id).distinct()))

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        settled: list[tuple[asyncio.Future[SourceResult], SourceResult | BaseException]] = []
        try:
            with self.pipeline.session.begin() as s:
                rows = self._preload(s, batch)  # noqa: F841 - kept alive for Session.get
                fresh = self._fresh(s, batch)
                for src, polls, future in batch:
                    settled.append((future, self.pipeline._store_poll(s, src, polls, fresh)))
        except Exception:  # noqa: BLE001 - retried one by one below, where it is reported
            settled = []
            for src, polls, future in batch:
                try:
                    with self.pipeline.session.begin() as s:
                        settled.append((future, self.pipeline._store_poll(s, src, polls)))
                except Exception as exc:  # noqa: BLE001 - handed to the awaiting task
                    settled.append((future, exc))
        for future, outcome in settled:
            self.loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[SourceResult], outcome: SourceResult | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


@dataclass(frozen=True)
class _Page:
    """What fetching an article page came to."""

    text: str | None = None
    error: str | None = None
    paywalled: bool = False


T = TypeVar("T")


def _round_robin(items: Sequence[T], key: Callable[[T], str]) -> list[T]:
    """Items reordered so that groups (hosts) take turns, keeping order within a group."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    out: list[T] = []
    for round_ in itertools.zip_longest(*groups.values()):
        out.extend(item for item in round_ if item is not None)
    return out


@dataclass
class SourceResult:
    """What one poll of one source came to, in words for the operator."""

    source_id: str
    name: str
    outcome: str  # new, unchanged, not-modified, error, waiting
    new_entries: int = 0
    error: str | None = None
    note: str | None = None  # why a waiting source was left alone
    status: str | None = None  # the source's health after the poll: ok, failing, parked

    @property
    def detail(self) -> str:
        detail = f"{self.source_id}: {self.outcome}"
        if self.error or self.note:
            detail += f" ({self.error or self.note})"
        elif self.new_entries:
            detail += f" (+{self.new_entries})"
        return detail


@dataclass
class CycleReport:
    sources: list[SourceResult] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    new_entries: int = 0
    stories: int = 0
    rewritten: int = 0
    feed_path: Path | None = None

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.sources if r.outcome == "error"]

    @property
    def waiting(self) -> list[SourceResult]:
        return [r for r in self.sources if r.outcome == "waiting"]

    def summary(self) -> list[str]:
        """The end-of-cycle summary: where the feed is, what changed, what failed, how long."""
        lines = [f"Feed written: {self.feed_path}"] if self.feed_path else []
        front = self.feed_path.parent / "index.html" if self.feed_path else None
        if front is not None and front.exists():
            lines.append(f"Front page: {front}")
        ok = len(self.sources) - len(self.failed) - len(self.waiting)
        waiting = f", {len(self.waiting)} waiting" if self.waiting else ""
        lines.append(
            f"Sources: {ok} ok, {len(self.failed)} failing{waiting}; "
            f"new entries: {self.new_entries}; "
            f"stories: {self.stories} ({self.rewritten} rewritten)"
        )
        lines += [f"  failing: {r.source_id} ({r.name}): {r.error}" for r in self.failed]
        lines += [f"  waiting: {r.source_id} ({r.name}): {r.note}" for r in self.waiting]
        if self.seconds:
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
            lines.append(f"Seconds per stage: {stages}")
        return lines


@dataclass(frozen=True)
class Health:
    """The service's health as /healthz reports it; ``problems`` empty means healthy."""

    last_publish: datetime | None
    publish_age: float | None  # seconds
    failing: list[SourceStatus]
    problems: list[str]


@dataclass(frozen=True)
class Metrics:
    """Counters and timings for /metrics."""

    polls: dict[str, int]  # by outcome
    entries: int
    stories: int
    stages: dict[str, tuple[float, float, int, datetime]]  # last s, total s, runs, last run
    failing_sources: int
    sources: int


class Pipeline:
    """The stages, run against one database and one configuration."""

    def __init__(
        self,
        config: Config,
        engine: Engine | None = None,
        *,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.settings = config.settings
        self.engine = engine or db.connect(config.db_url)
        self.session = db.session_factory(self.engine)
        self.progress = progress or _no_progress
        self.stop = stop or threading.Event()
        self.model = ModelRewriter(config.model) if config.model.enabled else None
        self._sync_sources()

    # --- set-up --------------------------------------------------------------------------------

    def fetcher(self) -> Fetcher:
        """The one-at-a-time fetcher (article pages), with the same limits as polling."""
        return Fetcher(
            timeout=self.settings.timeout,
            total_timeout=self.settings.total_timeout,
            max_redirects=self.settings.max_redirects,
            allow_private_hosts=self.config.allow_private_hosts,
            agent=user_agent(self.settings.site_url),
        )

    def _sync_sources(self) -> None:
        """Make the sources table match the configuration (names and leans may change)."""
        with self.session.begin() as s:
            for src in self.config.sources:
                row = s.get(SourceRow, src.id)
                if row is None:
                    s.add(SourceRow(id=src.id, name=src.name, lean=src.lean, kind=src.kind))
                else:
                    row.name, row.lean, row.kind = src.name, src.lean, src.kind
                for url in src.feeds:
                    feed = s.get(FeedRow, url)
                    if feed is None:
                        s.add(FeedRow(url=url, source_id=src.id))
                    elif feed.source_id != src.id:
                        feed.source_id = src.id

    # --- fetch and parse -----------------------------------------------------------------------

    def poll(self, sources: Sequence[Source] | None = None) -> list[SourceResult]:
        """Fetch, parse and store every given source (default: all enabled ones), concurrently.

        Without an explicit list, sources waiting out a server's Retry-After or an error
        backoff are left alone (their result says why); everything else is polled now,
        whatever its interval. Sources named explicitly are polled regardless.
        """
        explicit = sources is not None
        sources = list(self.config.enabled_sources if sources is None else sources)
        now = utcnow()
        feeds, waits = self._poll_state(sources, now)
        if explicit:
            waits = {}
        todo = [src for src in sources if src.id not in waits]
        polled = _run_async(self._poll_all(todo, feeds)) if todo else {}
        results = []
        for src in sources:
            if src.id in waits:
                results.append(SourceResult(src.id, src.name, "waiting", note=waits[src.id]))
            elif src.id in polled:
                results.append(polled[src.id])
        return results

    def async_fetcher(self, **overrides: object) -> AsyncFetcher:
        options: dict[str, object] = {
            "timeout": self.settings.timeout,
            "total_timeout": self.settings.total_timeout,
            "max_redirects": self.settings.max_redirects,
            "allow_private_hosts": self.config.allow_private_hosts,
            "agent": user_agent(self.settings.site_url),
            "concurrency": self.settings.concurrency,
            "per_host": self.settings.per_host,
        }
        return AsyncFetcher(**{**options, **overrides})  # type: ignore[arg-type]

    @property
    def policy(self) -> polling.Policy:
        st = self.settings
        return polling.Policy(
            min_interval=timedelta(minutes=st.min_interval),
            max_interval=timedelta(minutes=st.max_interval),
            default_interval=timedelta(minutes=st.default_interval),
            park_after=timedelta(days=st.park_after_days),
        )

    def _poll_state(
        self, sources: Sequence[Source], now: datetime
    ) -> tuple[dict[str, _FeedState], dict[str, str]]:
        """Each feed's validators and address, and which sources must wait (one query each)."""
        ids = [src.id for src in sources]
        with self.session() as s:
            feeds = {
                row.url: _FeedState(
                    row.fetch_url or row.url,
                    Validators(row.etag, row.last_modified),
                    row.body_hash,
                )
                for row in s.scalars(select(FeedRow).where(FeedRow.source_id.in_(ids)))
            }
            waits = {}
            for row in s.scalars(select(SourceRow).where(SourceRow.id.in_(ids))):
                why = polling.waiting(
                    row.status, row.consecutive_errors or 0, row.next_poll_at, row.retry_until, now
                )
                if why:
                    waits[row.id] = why
        return feeds, waits

    async def _poll_all(
        self, sources: Sequence[Source], feeds: dict[str, _FeedState]
    ) -> dict[str, SourceResult]:
        """Fetch every source at once (within the fetcher's limits), parse in worker
        processes, and store on one writer thread (see :class:`_PollWriter`)."""
        results: dict[str, SourceResult] = {}
        writer = _PollWriter(self, asyncio.get_running_loop())
        try:
            async with self.async_fetcher() as fetcher:
                tasks = [
                    asyncio.create_task(self._poll_one(fetcher, src, feeds, writer))
                    for src in sources
                ]
                for done, task in enumerate(asyncio.as_completed(tasks), start=1):
                    result = await task
                    if result is None:
                        continue
                    results[result.source_id] = result
                    self.progress("fetch", done, len(tasks), result.detail)
        finally:
            writer.close()
        return results

    async def _poll_one(
        self,
        fetcher: AsyncFetcher,
        src: Source,
        feeds: dict[str, _FeedState],
        writer: _PollWriter,
    ) -> SourceResult | None:
        if self.stop.is_set():
            return None
        polls = []
        for url in src.feeds:
            state = feeds.get(url) or _FeedState(url, Validators(), None)
            started = utcnow()
            res = await fetcher.get(
                state.fetch_url,
                state.validators,
                max_bytes=self.settings.max_feed_bytes,
                accept=FEED_ACCEPT,
            )
            try:
                polls.append(await self._examine(url, started, res, state))
            except Exception as exc:  # a bug on one feed must not stop the others
                log.exception("source %s: feed %s could not be examined", src.id, url)
                polls.append(_FeedPoll(url, started, res, error=f"internal error: {exc}"))
        try:
            result = await writer.store(src, polls)
        except Exception as exc:  # noqa: BLE001 - reported for this source; others carry on
            log.exception("source %s: its poll could not be stored", src.id)
            result = SourceResult(src.id, src.name, "error", error=f"not stored: {exc}")
        if result.error:
            log.warning("source %s (%s): %s", src.id, src.name, result.error)
        return result

    async def _examine(
        self, url: str, started: datetime, res: FetchResult, state: _FeedState
    ) -> _FeedPoll:
        """Layered "not modified": a 304, else the same validators, else the same body bytes;
        only a changed document is parsed (in a worker process, off the event loop)."""
        poll = _FeedPoll(url, started, res)
        if res.error:
            poll.outcome, poll.error = "error", res.error
        elif res.not_modified or _same_validators(state.validators, res.validators):
            poll.outcome = "not-modified"
        else:
            poll.body_hash = hashlib.sha256(res.content).hexdigest()
            if poll.body_hash == state.body_hash:
                poll.outcome = "unchanged"
            else:
                parse = functools.partial(
                    parse_feed,
                    res.content,
                    url=res.final_url,
                    content_type=res.content_type,
                    max_entries=self.settings.max_entries,
                )
                poll.parsed = await _parse_in_pool(parse)
                if poll.parsed.error:
                    poll.outcome, poll.error = "error", poll.parsed.error
        return poll

    def _store_poll(
        self, s: Session, src: Source, polls: list[_FeedPoll], fresh: set[str] | None = None
    ) -> SourceResult:
        """In the caller's transaction: the source's new entries, polls and health.

        ``fresh``: ids of sources known to have nothing stored (see ``_PollWriter._fresh``).
        The ORM changes (polls, health) are flushed once, at commit: entries go in through
        Core, so no query here needs them flushed first, and one flush batches them all.
        """
        with s.no_autoflush:
            return self._store_poll_rows(s, src, polls, fresh if fresh is not None else set())

    def _store_poll_rows(
        self, s: Session, src: Source, polls: list[_FeedPoll], fresh: set[str]
    ) -> SourceResult:
        errors: list[str] = []
        new_total = 0
        now = utcnow()
        for p in polls:
            res = p.result
            feed_row = s.get(FeedRow, p.url)
            if p.parsed is not None and not p.error:
                p.new_entries = self._store_entries(
                    s, src, p.parsed.entries, now, fresh=src.id in fresh
                )
                fresh.discard(src.id)  # its next feed must see what this one stored
                p.outcome = "new" if p.new_entries else "unchanged"
                new_total += p.new_entries
                if feed_row is not None:
                    feed_row.etag = res.validators.etag
                    feed_row.last_modified = res.validators.last_modified
                    feed_row.body_hash = p.body_hash
            s.add(
                PollRow(
                    source_id=src.id,
                    feed_url=p.url,
                    started_at=p.started,
                    seconds=res.elapsed,
                    http_status=res.status,
                    outcome=p.outcome,
                    error=p.error,
                    new_entries=p.new_entries,
                )
            )
            if feed_row is not None:
                feed_row.last_poll_at = now
                if not p.error and res.moved_to and res.moved_to != feed_row.fetch_url:
                    feed_row.fetch_url = res.moved_to
                    log.warning(
                        "source %s: feed %s moved permanently to %s; polling the new "
                        "address from now on (update %s)",
                        src.id,
                        p.url,
                        res.moved_to,
                        self.config.sources_path,
                    )
            if p.error:
                errors.append(p.error if len(src.feeds) == 1 else f"{p.url}: {p.error}")
        status = self._record_health(s, src, polls, errors, now)
        outcomes = [p.outcome for p in polls]
        if errors:
            message = "; ".join(errors)
            return SourceResult(src.id, src.name, "error", new_total, message, status=status)
        outcome = next(
            (o for o in ("new", "unchanged", "not-modified") if o in outcomes), "unchanged"
        )
        return SourceResult(src.id, src.name, outcome, new_total, status=status)

    def _store_entries(
        self,
        s: Session,
        src: Source,
        entries: Iterable[FeedEntry],
        now: datetime,
        *,
        fresh: bool = False,
    ) -> int:
        """Insert the entries we have not seen; return how many were new.

        An entry is known by its key (guid), or by its link and title together (feeds that
        change their guids), and an entry we pruned stays gone (tombstones). ``fresh``: the
        source has nothing stored, so there is nothing to look up.
        """
        entries = list(entries)
        keys = [e.key for e in entries]
        # Link spelled one way (tracking parameters, www., fragments gone) before it is hashed.
        ident_of = [
            entry_ident(canonical_url(e.link) if e.link else None, e.title) for e in entries
        ]
        idents = [i for i in ident_of if i]
        known_keys: set[str] = set()
        known_idents: set[str] = set()
        if not fresh:
            seen = union_all(
                *(
                    select(model.key, model.ident).where(
                        model.source_id == src.id, model.key.in_(keys) | model.ident.in_(idents)
                    )
                    for model in (EntryRow, TombstoneRow)
                )
            )
            for key, ident in s.execute(seen):
                known_keys.add(key)
                if ident:
                    known_idents.add(ident)
        rows = []
        for entry, ident in zip(entries, ident_of, strict=True):
            if entry.key in known_keys or (ident and ident in known_idents):
                continue
            known_keys.add(entry.key)
            if ident:
                known_idents.add(ident)
            rows.append(
                {
                    "source_id": src.id,
                    "key": entry.key,
                    "ident": ident,
                    "link": entry.link,
                    "title": entry.title,
                    "author": entry.author,
                    "published_at": entry.published or now,
                    "updated_at": entry.updated,
                    "fetched_at": now,
                    "summary": entry.summary,
                    "content": entry.content,
                    "image": entry.image,
                    "text_available": True,
                }
            )
        if rows:
            # Core, not ORM: one executemany without the unit of work's per-row bookkeeping.
            s.execute(EntryRow.__table__.insert(), rows)
        return len(rows)

    def _record_health(
        self,
        s: Session,
        src: Source,
        polls: list[_FeedPoll],
        errors: list[str],
        now: datetime,
    ) -> str:
        """Status, next poll time and response time of a source after a poll; returns status."""
        row = s.get(SourceRow, src.id)
        if row is None:  # pragma: no cover - _sync_sources made it
            return "new"
        failed = next((p.result for p in polls if p.error), None)
        shown = failed or (polls[-1].result if polls else None)
        published = tuple(
            e.published for p in polls if p.parsed for e in p.parsed.entries if e.published
        )
        ttls = [p.parsed.ttl_minutes for p in polls if p.parsed and p.parsed.ttl_minutes]
        outcome = polling.Outcome(
            ok=not errors,
            http_status=shown.status if shown else None,
            headers=shown.headers if shown else None,
            ttl_minutes=max(ttls, default=None),
            new_entries=sum(p.new_entries for p in polls),
            published=published,
        )
        health = polling.Health(
            status=row.status,
            failing_since=row.failing_since,
            consecutive_errors=row.consecutive_errors or 0,
            mean_gap=timedelta(seconds=row.mean_gap_seconds) if row.mean_gap_seconds else None,
            last_new_entry_at=row.last_new_entry_at,
        )
        pinned = timedelta(minutes=src.interval) if src.interval else None
        decision = polling.decide(health, outcome, now, self.policy, pinned=pinned, rng=_RNG)
        if decision.status == "parked" and row.status != "parked":
            log.warning(
                "source %s (%s) parked after failing since %s: %s; retried daily",
                src.id,
                src.name,
                f"{decision.failing_since:%Y-%m-%d %H:%M} UTC",
                "; ".join(errors),
            )
        row.last_poll_at = now
        row.last_http_status = shown.status if shown else None
        row.status = decision.status
        row.failing_since = decision.failing_since
        row.consecutive_errors = decision.consecutive_errors
        row.next_poll_at = decision.next_poll_at
        row.retry_until = decision.retry_until
        row.mean_gap_seconds = decision.mean_gap.total_seconds() if decision.mean_gap else None
        row.last_new_entry_at = decision.last_new_entry_at
        if polls:
            ms = 1000 * sum(p.result.elapsed for p in polls) / len(polls)
            row.mean_response_ms = (
                ms if row.mean_response_ms is None else (0.8 * row.mean_response_ms + 0.2 * ms)
            )
        if errors:
            row.last_error = "; ".join(errors)
        else:
            row.last_error = None
            row.last_ok_at = now
        return decision.status

    # --- extract -------------------------------------------------------------------------------

    def extract_pending(self) -> int:
        """Give every entry without text its article text (page, else the feed's own text).

        Pages are fetched politely: robots.txt is asked first (once per host), requests to one
        host are spaced by ``page_delay`` (or its Crawl-delay), and hosts take turns so the
        pauses overlap. A paywalled or truncated page marks the entry's text unavailable, so
        the story says so instead of passing a teaser off as the article.
        """
        with self.session() as s:
            pending = list(
                s.execute(
                    select(EntryRow.id, EntryRow.source_id, EntryRow.link)
                    .where(EntryRow.text.is_(None))
                    .order_by(EntryRow.id)
                )
            )
        if not pending:
            return 0
        full_text = {src.id: src.full_text for src in self.config.sources}
        pending = _round_robin(pending, lambda row: robots.host_of(row[2] or ""))
        with self.fetcher() as fetcher:
            rules = robots.Robots(lambda url: fetcher.get(url, max_bytes=500_000))
            pacer = robots.HostPacer(self.settings.page_delay, self.stop)
            for done, (entry_id, source_id, link) in enumerate(pending, start=1):
                if self.stop.is_set():
                    break
                page = _Page()
                if full_text.get(source_id, False) and link:
                    page = self._extract_page(fetcher, rules, pacer, link)
                with self.session.begin() as s:
                    entry = s.get(EntryRow, entry_id)
                    if entry is None:
                        continue
                    text = page.text
                    if text is None:
                        text = strip_html(entry.content or entry.summary) or entry.title
                    entry.text = text
                    entry.extract_error = page.error
                    entry.text_available = not page.paywalled and (
                        page.error is None or len(text) >= extract.MIN_TEXT_CHARS
                    )
                if page.error:
                    log.info("entry %s (%s): extraction failed: %s", entry_id, link, page.error)
                self.progress("extract", done, len(pending), link or "")
        return len(pending)

    def _extract_page(
        self, fetcher: Fetcher, rules: robots.Robots, pacer: robots.HostPacer, link: str
    ) -> _Page:
        if not rules.allowed(link):
            return _Page(error="robots.txt disallows fetching this page")
        pacer.wait(link, rules.crawl_delay(link))
        res = fetcher.get(link, max_bytes=self.settings.max_page_bytes, accept=PAGE_ACCEPT)
        if res.error:
            return _Page(error=res.error)
        marker = extract.paywall_marker(res.content)
        try:
            text = extract.extract_article(res.content, res.final_url).text
        except extract.ExtractionError as exc:
            return _Page(
                error=f"paywalled: {marker}" if marker else str(exc), paywalled=bool(marker)
            )
        if marker:
            return _Page(text=text, error=f"paywalled: {marker}", paywalled=True)
        return _Page(text=text)

    # --- group ---------------------------------------------------------------------------------

    def group(self) -> set[str]:
        """Assign every ungrouped entry to a story; return the ids of the stories touched.

        The story index is rebuilt from the entries grouped near the pending ones (by published
        time), then the pending entries stream through it oldest first. An entry whose
        canonical URL or near-duplicate text repeats an earlier entry is marked ``copy_of`` it
        and joins its story. When two stories turn out to be one, the newer folds into the
        older: its entries move, its row keeps ``merged_into`` so the id is never reused.
        """
        touched: set[str] = set()
        with self.session.begin() as s:
            pending = list(
                s.scalars(
                    select(EntryRow)
                    .where(EntryRow.story_id.is_(None), EntryRow.text.is_not(None))
                    .order_by(*ENTRY_ORDER)
                )
            )
            if not pending:
                return touched
            index = cluster.StoryIndex()
            kinds = {src.id: src.kind for src in self.config.sources}
            by_url: dict[str, EntryRow] = {}
            since = pending[0].published_at - cluster.HISTORY
            history = s.scalars(
                select(EntryRow)
                .where(EntryRow.story_id.is_not(None), EntryRow.published_at >= since)
                .order_by(*ENTRY_ORDER)
            )
            for entry in history:
                index.restore(
                    _cluster_article(entry, kinds.get(entry.source_id, "news")),
                    entry.story_id or "",
                )
                if entry.link:
                    by_url.setdefault(canonical_url(entry.link), entry)
            for done, entry in enumerate(pending, start=1):
                art = _cluster_article(entry, kinds.get(entry.source_id, "news"))
                original = by_url.get(canonical_url(entry.link)) if entry.link else None
                if original is not None and original.story_id:
                    entry.copy_of = original.id
                    entry.story_id = index.resolve(original.story_id)
                    index.restore(art, entry.story_id)
                else:
                    if entry.link:
                        by_url[canonical_url(entry.link)] = entry
                    found = index.add(art, cluster.story_id_for(entry.source_id, entry.key))
                    if found.opened:
                        self._open_story(s, found.story_id, art.published)
                    entry.copy_of = found.copy_of
                    entry.story_id = found.story_id
                    for retired in found.merged:
                        self._merge_story(s, retired, found.story_id)
                        touched.discard(retired)
                row = s.get(StoryRow, entry.story_id)
                if row is not None:
                    row.first_published = min(row.first_published, art.published)
                    row.last_published = max(row.last_published, art.published)
                touched.add(entry.story_id)
                self.progress("group", done, len(pending), entry.title[:60])
        return touched

    def _open_story(self, s: Session, story_id: str, published: datetime) -> None:
        if s.get(StoryRow, story_id) is None:
            row = StoryRow(
                id=story_id,
                created_at=utcnow(),
                first_published=published,
                last_published=published,
            )
            s.add(row)
            s.flush()  # the story row first: entries point at it

    def _merge_story(self, s: Session, retired: str, kept: str) -> None:
        """Fold story ``retired`` into the older ``kept``: entries move, the row stays retired."""
        s.flush()
        s.execute(update(EntryRow).where(EntryRow.story_id == retired).values(story_id=kept))
        old, row = s.get(StoryRow, retired), s.get(StoryRow, kept)
        if old is None or row is None:  # pragma: no cover - both were just in the index
            return
        old.merged_into = kept
        old.content_html = None  # off the feed: its articles are in the older story now
        row.first_published = min(row.first_published, old.first_published)
        row.last_published = max(row.last_published, old.last_published)
        s.execute(update(StoryRow).where(StoryRow.merged_into == retired).values(merged_into=kept))

    # --- rewrite -------------------------------------------------------------------------------

    def rewrite(self, story_ids: Iterable[str] | None = None) -> int:
        """Rewrite the stories whose inputs changed; return how many were rewritten.

        Besides ``story_ids``, stories never rewritten and stories whose model rewrite should
        be tried again (a timeout, a 429, a spent budget) are taken. With a model configured,
        up to ``concurrency`` stories are rewritten at once, and at most ``budget`` are sent.
        """
        with self.session() as s:
            ids = set(story_ids or ())
            ids |= set(
                s.scalars(
                    select(StoryRow.id).where(
                        StoryRow.rewrite_json.is_(None) | StoryRow.input_hash.is_(None)
                    )
                )
            )
        ordered = sorted(ids)
        if self.model is None:
            done = 0
            for n, story_id in enumerate(ordered, start=1):
                if self.stop.is_set():
                    break
                done += self._rewrite_one(story_id)
                self.progress("rewrite", n, len(ordered), story_id)
            return done
        self.model.new_cycle()
        with ThreadPoolExecutor(max_workers=self.config.model.concurrency) as pool:
            results = pool.map(
                lambda sid: False if self.stop.is_set() else self._rewrite_one(sid), ordered
            )
            done = 0
            for n, (story_id, changed) in enumerate(zip(ordered, results, strict=True), start=1):
                done += changed
                self.progress("rewrite", n, len(ordered), story_id)
        return done

    def _input_hash(self, articles: Sequence[StoryArticle]) -> str:
        """What a rewrite is made from: the articles, the rewrite settings and the model."""
        model = self.config.model
        return _hash(
            json.dumps(
                [
                    [
                        [a.entry_id, a.source_name, a.lean, a.kind, a.title, a.text, a.via]
                        for a in articles
                    ],
                    self.config.rewrite.summary_words,
                    [model.model, model.base_url, rewrite.PROMPT_VERSION] if self.model else None,
                ]
            )
        )

    def _rewrite_one(self, story_id: str) -> bool:
        """Rewrite one story if its inputs changed; store it in one transaction.

        The model (if any) is asked outside any transaction; the story's ``updated`` time
        moves only when what readers see changed.
        """
        with self.session() as s:
            story = s.get(StoryRow, story_id)
            if story is None:
                return False
            entries = list(
                s.scalars(
                    select(EntryRow).where(EntryRow.story_id == story_id).order_by(*ENTRY_ORDER)
                )
            )
            if not entries:
                return False
            articles = self._story_articles(s, entries)
            input_hash = self._input_hash(articles)
            if story.input_hash == input_hash and story.rewrite_json:
                return False
        result = rewrite.rewrite_story(articles, summary_words=self.config.rewrite.summary_words)
        final = True
        if self.model is not None:
            outcome = self.model.rewrite(input_hash, articles, result, label=story_id)
            result, final = outcome.rewrite, outcome.final
        coverage = rewrite.coverage_of(articles)
        content_html = publish.render_story_html(result, coverage)
        related = [
            {"url": a.link, "outlet": a.source_name, "lean": a.lean} for a in articles if a.link
        ]
        content_hash = _hash(json.dumps([result.headline, result.summary, content_html, related]))
        with self.session.begin() as s:
            story = s.get(StoryRow, story_id)
            if story is None:  # pruned meanwhile
                return False
            story.input_hash = input_hash if final else None  # None: try the model again
            story.rewrite_json = db.rewrite_to_json(result)
            story.headline = result.headline
            story.summary = result.summary
            story.content_html = content_html
            story.leans_json = json.dumps(list(coverage.leans))
            story.related_json = json.dumps(related)
            _record_attribution(story, articles, coverage)
            if story.content_hash != content_hash:
                story.content_hash = content_hash
                story.updated_at = utcnow()
            return True

    def _story_articles(self, s: Session, entries: list[EntryRow]) -> list[StoryArticle]:
        """One StoryArticle per original article; copies become its "via" outlets."""
        by_id = {e.id: e for e in entries}

        def original(entry: EntryRow) -> EntryRow:
            seen = {entry.id}
            while entry.copy_of in by_id and entry.copy_of not in seen:
                entry = by_id[entry.copy_of]
                seen.add(entry.id)
            return entry

        via: dict[int, list[tuple[str, str, str | None]]] = {}
        for entry in entries:
            root = original(entry)
            if root is not entry:
                art = self._story_article(s, entry)
                via.setdefault(root.id, []).append((art.source_name, art.lean, art.link))
        return [
            dataclasses.replace(self._story_article(s, e), via=tuple(via.get(e.id, ())))
            for e in entries
            if original(e) is e
        ]

    def _story_article(self, s: Session, entry: EntryRow) -> StoryArticle:
        try:
            src = self.config.source(entry.source_id)
            name, lean, kind = src.name, src.lean, src.kind
        except KeyError:  # a source removed from the config: keep what we stored
            row = s.get(SourceRow, entry.source_id)
            name, lean, kind = (row.name, row.lean, row.kind) if row else (entry.source_id,) * 3
        text = entry.text or ""
        available = entry.text_available is not False and not (
            entry.extract_error and len(text) < extract.MIN_TEXT_CHARS
        )
        return StoryArticle(
            entry_id=entry.id,
            source_id=entry.source_id,
            source_name=name,
            lean=lean,
            kind=kind,
            title=entry.title,
            link=entry.link,
            published=entry.published_at,
            text=text,
            text_available=available,
            fetched=entry.fetched_at,
        )

    # --- publish -------------------------------------------------------------------------------

    def published_stories(self, *, everything: bool = False) -> list[PublishedStory]:
        """The newest ``feed_size`` stories (or all, for the archive pages), newest first."""
        with self.session() as s:
            query = (
                select(StoryRow)
                .where(StoryRow.content_html.is_not(None), StoryRow.merged_into.is_(None))
                .order_by(StoryRow.last_published.desc(), StoryRow.id)
            )
            if not everything:
                query = query.limit(self.settings.feed_size)
            return [
                PublishedStory(
                    id=row.id,
                    headline=row.headline or "",
                    summary=row.summary or "",
                    content_html=row.content_html or "",
                    published=row.first_published,
                    updated=row.updated_at or row.first_published,
                    leans=tuple(json.loads(row.leans_json or "[]")),
                    related=tuple(RelatedLink(**r) for r in json.loads(row.related_json or "[]")),
                )
                for row in s.scalars(query)
            ]

    def failing_sources(self) -> list[SourceStatus]:
        enabled = {src.id for src in self.config.enabled_sources}
        with self.session() as s:
            rows = s.scalars(
                select(SourceRow)
                .where(SourceRow.status.in_(("failing", "parked")))
                .order_by(SourceRow.name)
            )
            return [
                SourceStatus(
                    r.name,
                    r.failing_since or utcnow(),
                    ("parked, retried daily: " if r.status == "parked" else "")
                    + (r.last_error or ""),
                )
                for r in rows
                if r.id in enabled
            ]

    def publish(self) -> Path:
        """Write every output (feeds, archive pages, site, OPML) and ping the WebSub hub."""
        started = time.perf_counter()
        result = publish.publish_site(
            self.published_stories(everything=True),
            self.settings,
            self.failing_sources(),
            self.config.out_dir,
            self.config.sources,
            utcnow(),
        )
        if self.settings.hub:
            for error in websub.ping_hub(self.settings.hub, result.topics, self.settings.timeout):
                log.warning("%s", error)
        self.record_stage("publish", time.perf_counter() - started)
        self.progress("publish", 1, 1, str(result.feed_path))
        return result.feed_path

    # --- health and metrics --------------------------------------------------------------------

    def record_stage(self, stage: str, seconds: float) -> None:
        """Remember how long a stage took (for /metrics) and when it last ran (for /healthz)."""
        with self.session.begin() as s:
            row = s.get(StageRow, stage)
            if row is None:
                row = StageRow(stage=stage, total_seconds=0.0, runs=0)
                s.add(row)
            row.last_at = utcnow()
            row.last_seconds = seconds
            row.total_seconds += seconds
            row.runs += 1

    def health(self) -> Health:
        """Is the service doing its job: last publish recent enough, which sources fail."""
        with self.session() as s:
            row = s.get(StageRow, "publish")
            last = row.last_at if row else None
        failing = self.failing_sources()
        age = (utcnow() - last).total_seconds() if last else None
        problems = []
        if age is None:
            problems.append("nothing published yet")
        elif age > self.settings.stale_after * 60:
            problems.append(f"last publish {age / 60:.0f} minutes ago")
        enabled = self.config.enabled_sources
        if enabled and len(failing) == len(enabled):
            problems.append("every source is failing")
        return Health(last, age, failing, problems)

    def metrics(self) -> Metrics:
        """Counts and timings from the database, for the Prometheus endpoint."""
        with self.session() as s:
            polls = dict(
                s.execute(select(PollRow.outcome, func.count()).group_by(PollRow.outcome)).all()
            )
            entries = s.scalar(select(func.count()).select_from(EntryRow)) or 0
            stories = s.scalar(select(func.count()).select_from(StoryRow)) or 0
            stages = {
                r.stage: (r.last_seconds, r.total_seconds, r.runs, r.last_at)
                for r in s.scalars(select(StageRow))
            }
            failing = s.scalar(
                select(func.count())
                .select_from(SourceRow)
                .where(SourceRow.status.in_(("failing", "parked")))
            )
        return Metrics(polls, entries, stories, stages, failing or 0, len(self.config.sources))

    # --- retention -----------------------------------------------------------------------------

    def prune(self) -> int:
        """Drop what was fetched more than ``retention_days`` ago (0 keeps everything).

        Age is counted from when we stored an entry, so an old article that turns up today is
        kept for the whole retention period rather than dropped on arrival.
        """
        days = self.settings.retention_days
        if not days:
            return 0
        now = utcnow()
        cutoff = now - timedelta(days=days)
        with self.session.begin() as s:
            recent = select(EntryRow.story_id).where(
                EntryRow.fetched_at >= cutoff, EntryRow.story_id.is_not(None)
            )
            doomed = (
                EntryRow.fetched_at < cutoff,
                (EntryRow.story_id.is_(None)) | (EntryRow.story_id.not_in(recent)),
            )
            # Tombstones first: a feed that still lists a pruned entry must not bring it back.
            s.execute(
                insert(TombstoneRow).from_select(
                    ["source_id", "key", "ident", "pruned_at"],
                    select(
                        EntryRow.source_id,
                        EntryRow.key,
                        EntryRow.ident,
                        literal(now, UTCDateTime()),
                    ).where(*doomed),
                )
            )
            gone = s.execute(delete(EntryRow).where(*doomed)).rowcount
            used = select(EntryRow.story_id).where(EntryRow.story_id.is_not(None))
            # Retired (merged) rows stay: they hold their ids so that none is ever reused.
            s.execute(
                delete(StoryRow).where(StoryRow.id.not_in(used), StoryRow.merged_into.is_(None))
            )
        return gone or 0

    # --- the whole cycle -----------------------------------------------------------------------

    def process(self, report: CycleReport) -> None:
        """Everything after fetching: extract, group, rewrite, publish (timed per stage)."""
        stages: list[tuple[str, Callable[[], object]]] = [
            ("extract", self.extract_pending),
        ]
        touched: set[str] = set()

        def do_group() -> None:
            touched.update(self.group())

        def do_rewrite() -> None:
            report.rewritten = self.rewrite(touched)

        stages += [("group", do_group), ("rewrite", do_rewrite)]
        for name, step in stages:
            if self.stop.is_set():
                return
            started = time.perf_counter()
            step()
            report.seconds[name] = time.perf_counter() - started
            self.record_stage(name, report.seconds[name])
        started = time.perf_counter()
        self.prune()
        report.feed_path = self.publish()
        report.seconds["publish"] = time.perf_counter() - started
        with self.session() as s:
            report.stories = s.scalar(select(func.count()).select_from(StoryRow)) or 0

    def run_cycle(self, sources: Sequence[Source] | None = None) -> CycleReport:
        """Poll, then extract, group, rewrite and publish: one full cycle."""
        report = CycleReport()
        started = time.perf_counter()
        report.sources = self.poll(sources)
        report.seconds["fetch"] = time.perf_counter() - started
        self.record_stage("fetch", report.seconds["fetch"])
        report.new_entries = sum(r.new_entries for r in report.sources)
        self.process(report)
        return report


def _cluster_article(entry: EntryRow, kind: str = "news") -> ClusterArticle:
    return ClusterArticle(
        entry_id=entry.id,
        source_id=entry.source_id,
        title=entry.title,
        text=entry.text or "",
        published=entry.published_at,
        kind=kind,
        fetched=entry.fetched_at,
    )


def _record_attribution(
    story: StoryRow, articles: Sequence[StoryArticle], coverage: Coverage
) -> None:
    """Store who reported the story first, who covered it, per-side counts and blindspot."""
    story.first_source_id = next(
        a.source_id for a in articles if a.source_name == coverage.first_source
    )
    outlets = [[a.source_id, a.source_name, a.lean, None] for a in articles]
    outlets += [[None, name, lean, a.source_name] for a in articles for name, lean, _ in a.via]
    story.outlets_json = json.dumps(outlets)
    story.count_left = coverage.count("left")
    story.count_center = coverage.count("center")
    story.count_right = coverage.count("right")
    story.blindspot = publish.blindspot_side(coverage.leans) is not None


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
