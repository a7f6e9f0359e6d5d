"""Fetch, parse and store feeds.

Polling is async (global and per-host limits), parsing runs in a process pool, and one writer
thread stores each source's result whole or not at all.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import multiprocessing
import os
import random
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aggregator import polling
from aggregator.config import Source
from aggregator.fetch import AsyncFetcher, user_agent
from aggregator.identity import canonical_url
from aggregator.models import (
    FeedEntry,
    FetchResult,
    ParsedFeed,
    Validators,
)
from aggregator.parse import entry_ident, exit_with, parse_feed
from aggregator.pipeline.reports import (
    FEED_ACCEPT,
    SourceResult,
    log,
)
from aggregator.store.schema import (
    EntryRow,
    FeedRow,
    PollRow,
    SourceRow,
    TombstoneRow,
    utcnow,
)

if TYPE_CHECKING:
    from aggregator.pipeline import Pipeline


_RNG = random.Random()  # jitter; one generator, not one seeded from the OS per poll
_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_WORKERS = os.cpu_count() or 2
# Parses handed to the pool at once, per worker (per event loop): enough that a worker never
# waits for the busy event loop to hand it the next one, few enough that a parse's hard limit
# counts at most this many parses' time rather than a queue of every feed's parse.
# bench/poll.py cold cycle: 1 per worker 16.7-17.7 s, 2 per worker 14.9-18.1 s, 8 per
# worker 13.8-14.0 s, no limit 12.9-15.4 s.
IN_HAND_PER_WORKER = 8
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def parser_pool() -> ProcessPoolExecutor:
    """Worker processes for feedparser (CPU-bound), one per core, started once per process.

    forkserver, not fork: the parent has threads (scheduler, writer, test servers) that a
    forked child would inherit in an unknown state.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and getattr(_POOL, "_broken", False):
            _POOL.shutdown(wait=False)  # a worker died: start afresh
            _POOL = None
        if _POOL is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["aggregator.parse"])
            _POOL = ProcessPoolExecutor(
                max_workers=_WORKERS,
                mp_context=context,
                initializer=exit_with,  # a killed parent leaves no orphaned parser
                initargs=(os.getpid(),),
            )
        return _POOL


def _restart_pool() -> None:
    """Kill the parser workers and let the next parse start a fresh pool.

    For a worker stuck where the parse's own alarm cannot reach it (inside C code). Parses
    in flight on the other worker fail with BrokenProcessPool and are retried on the new pool
    (nothing is cancelled: a cancelled parse would end its whole poll, not just its feed).
    """
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        workers = getattr(pool, "_processes", None) or {}  # no public way to kill a worker
        for process in list(workers.values()):
            process.terminate()
        pool.shutdown(wait=False)


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(IN_HAND_PER_WORKER * _WORKERS)
    return slots


async def _parse_in_pool(
    parse: Callable[[], ParsedFeed], hard_limit: float | None = None
) -> ParsedFeed:
    """Run ``parse`` in a worker process; a dead worker (killed, out of memory, a crash in
    a C parser) costs a fresh pool and one retry, then an error for this feed only.

    ``hard_limit`` (seconds) is the last resort for a worker that never answers (the parse's
    own time limit covers Python code, not a C loop): the workers are killed and restarted,
    and this feed gets an error. It counts from when the parse is handed to the pool, behind
    fewer than ``IN_HAND_PER_WORKER`` other parses on its worker.
    """
    loop = asyncio.get_running_loop()
    async with _slots():
        return await _parse_with_retry(loop, parse, hard_limit)


async def _parse_with_retry(
    loop: asyncio.AbstractEventLoop, parse: Callable[[], ParsedFeed], hard_limit: float | None
) -> ParsedFeed:
    for attempt in (1, 2):
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(parser_pool(), parse), timeout=hard_limit
            )
        except BrokenProcessPool:
            log.warning("feed parser process died (attempt %d); restarting the pool", attempt)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # this poll is being cancelled: not ours to swallow
            # the pool went away under this parse (another feed's hard limit): try again
            log.warning("feed parser pool restarted under a parse (attempt %d)", attempt)
        except TimeoutError:
            log.warning("feed parser gave no answer in %g s; restarting the pool", hard_limit)
            _restart_pool()
            return ParsedFeed(
                title=None,
                entries=(),
                error=f"the feed parser hung on this document (no answer in {hard_limit:g} s)",
            )
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


T = TypeVar("T")


def _insert_new_entries(dialect: str) -> Any:
    """An insert of entries that skips one already stored (same source and key): delivery to
    workers is at least once, so two polls of one feed may race to store the same entry."""
    table = EntryRow.__table__
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        return insert(table).on_conflict_do_nothing(index_elements=["source_id", "key"])
    return table.insert()


class Fetching:
    """The fetch and parse stages of :class:`~aggregator.pipeline.Pipeline`.

    A part of the pipeline, not a class of its own: it uses the pipeline's ``config``,
    ``settings``, ``session``, ``progress`` and ``stop``.
    """

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
                note, status = waits[src.id]
                results.append(SourceResult(src.id, src.name, "waiting", note=note, status=status))
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
            min_interval=st.minutes(st.min_interval),
            max_interval=st.minutes(st.max_interval),
            default_interval=st.minutes(st.default_interval),
            park_after=timedelta(days=st.park_after_days),
        )

    def _poll_state(
        self, sources: Sequence[Source], now: datetime
    ) -> tuple[dict[str, _FeedState], dict[str, tuple[str, str]]]:
        """Each feed's validators and address, and which sources must wait, why, and their
        status (one query each)."""
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
                    waits[row.id] = (why, row.status)
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
        else:
            log.info("source %s", result.detail)  # the one line per source per poll
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
                    time_limit=self.settings.parse_timeout,
                )
                # The parse's own alarm answers first; the hard limit is for a worker stuck in C
                # (it allows for the parses ahead of this one on its worker, each within its
                # own time limit).
                hard_limit = IN_HAND_PER_WORKER * self.settings.parse_timeout + 10
                poll.parsed = await _parse_in_pool(parse, hard_limit)
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
            s.execute(_insert_new_entries(s.get_bind().dialect.name), rows)
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
        pinned = self.settings.minutes(src.interval) if src.interval else None
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
