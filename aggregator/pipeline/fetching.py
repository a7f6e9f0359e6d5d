"""Fetch, parse and store feeds.

Polling is async (global and per-host limits), parsing runs in a process pool, and one writer
thread hands finished sources to the store, which records each whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import multiprocessing
import os
import random
import statistics
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aggregator import polling
from aggregator.config import FetchSettings, Source
from aggregator.fetch import AsyncFetcher, user_agent
from aggregator.identity import canonical_url
from aggregator.models import (
    FeedPoll,
    FeedState,
    FetchResult,
    ParsedFeed,
    PollStored,
    SourcePoll,
    Validators,
)
from aggregator.parse import entry_ident, exit_with, parse_feed
from aggregator.pipeline.reports import FEED_ACCEPT, Progress, SourceResult, log
from aggregator.store import StoreType, utcnow

_RNG = random.Random()  # jitter; one generator, not one seeded from the OS per poll
_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or a taskset's
    cpuset), not the machine's: a parser worker per core it cannot use only competes."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 2


_WORKERS = usable_cores()
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


@dataclass
class _FeedPoll:
    """One feed's fetch and what it came to, on its way to the store."""

    url: str  # the configured URL (the feed's key)
    started: datetime
    result: FetchResult
    outcome: str = "error"  # new, unchanged, not-modified, error
    error: str | None = None
    parsed: ParsedFeed | None = None
    body_hash: str | None = None

    def record(self) -> FeedPoll:
        """The store's view of this poll: a parsed document's entries with their idents (the
        link spelled one way, tracking parameters, www. and fragments gone, then hashed)."""
        res = self.result
        entries = idents = None
        if self.parsed is not None and not self.error:
            entries = self.parsed.entries
            idents = tuple(
                entry_ident(canonical_url(e.link) if e.link else None, e.title) for e in entries
            )
        return FeedPoll(
            url=self.url,
            started=self.started,
            seconds=res.elapsed,
            http_status=res.status,
            outcome=self.outcome,
            error=self.error,
            entries=entries,
            idents=idents or (),
            validators=res.validators,
            body_hash=self.body_hash,
            moved_to=res.moved_to,
        )


def _same_validators(sent: Validators, got: Validators) -> bool:
    """A 200 carrying the very validators we sent: the server ignored our conditional GET."""
    if sent.etag or got.etag:
        return bool(sent.etag) and sent.etag == got.etag
    return bool(sent.last_modified) and sent.last_modified == got.last_modified


_Pending = tuple[Source, list[_FeedPoll], "asyncio.Future[SourceResult]"]


class _PollWriter:
    """The database side of a poll: one thread, several finished sources per transaction.

    Sources that finish together share a commit (a commit per source is most of the cost of a
    warm cycle); each source is still stored whole or not at all (see
    :meth:`StoreType.record_polls`, which retries a failed batch source by source).
    """

    def __init__(self, fetching: Fetching, loop: asyncio.AbstractEventLoop) -> None:
        self.fetching = fetching
        self.loop = loop
        self._pending: list[_Pending] = []
        self._flushing = False  # a flush is queued that has not taken the pending list yet
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="poll-writer")

    async def store(self, src: Source, polls: list[_FeedPoll]) -> SourceResult:
        future: asyncio.Future[SourceResult] = self.loop.create_future()
        with self._lock:
            self._pending.append((src, polls, future))
            queued, self._flushing = self._flushing, True
        if not queued:  # one flush takes everything pending: no thread hand-off per source
            self._thread.submit(self._flush)
        return await future

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._flushing = False
        if not batch:
            return
        settled: list[tuple[asyncio.Future[SourceResult], SourceResult | BaseException]] = []
        ready: list[_Pending] = []
        records: list[SourcePoll] = []
        for src, polls, future in batch:  # a bug on one source must not spoil the batch
            try:
                records.append(self.fetching.record(src, polls))
                ready.append((src, polls, future))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting task
                settled.append((future, exc))
        sources = {src.id: (src, polls) for src, polls, _ in ready}
        try:
            stored = self.fetching.store.record_polls(records, self.fetching.decider(sources))
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting tasks
            stored = [exc] * len(ready)
        for (src, polls, future), outcome in zip(ready, stored, strict=True):
            if isinstance(outcome, Exception):
                settled.append((future, outcome))
                continue
            try:
                settled.append((future, self.fetching.result(src, polls, outcome)))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting task
                settled.append((future, exc))
        self.loop.call_soon_threadsafe(_settle, settled)  # one wake-up of the loop a batch


def _settle(
    settled: list[tuple[asyncio.Future[SourceResult], SourceResult | BaseException]],
) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class Fetching:
    """The fetch and parse stage: every source's feeds fetched at once (within the fetcher's
    limits), parsed in worker processes, and stored through the store by one writer thread."""

    def __init__(
        self,
        store: StoreType,
        sources: Sequence[Source],
        settings: FetchSettings,
        *,
        allow_private_hosts: bool,
        sources_path: Path,
        stop: threading.Event,
        progress: Progress,
    ) -> None:
        self.store = store
        self.sources = tuple(sources)  # the enabled ones: polled when none are named
        self.settings = settings
        self.allow_private_hosts = allow_private_hosts
        self.sources_path = sources_path  # named in the warning about a moved feed
        self.stop = stop
        self.progress = progress

    def poll(self, sources: Sequence[Source] | None = None) -> list[SourceResult]:
        """Fetch, parse and store every given source (default: all enabled ones), concurrently,
        waiting for the last of them (each within its timeouts).

        Without an explicit list, sources waiting out a server's Retry-After or an error
        backoff are left alone (their result says why); everything else is polled now,
        whatever its interval. Sources named explicitly are polled regardless.
        """
        run = self.start(sources)
        run.wait()
        return run.results()

    def start(self, sources: Sequence[Source] | None = None) -> PollRun:
        """The poll of :meth:`poll`, started on a thread of its own: the cycle may go on while
        a stalled host's sources are still out (see :class:`PollRun`)."""
        explicit = sources is not None
        sources = list(self.sources if sources is None else sources)
        now = utcnow()
        feeds, states = self.store.poll_state([src.id for src in sources])
        waits: dict[str, SourceResult] = {}
        if not explicit:
            for src in sources:
                st = states.get(src.id)
                if st is None:
                    continue
                why = polling.waiting(
                    st.status, st.consecutive_errors, st.next_poll_at, st.retry_until, now
                )
                if why:
                    waits[src.id] = SourceResult(
                        src.id, src.name, "waiting", note=why, status=st.status
                    )
        patience = {sid: straggler_seconds(st.mean_response_ms) for sid, st in states.items()}
        return PollRun(self, sources, waits, feeds, patience)

    def async_fetcher(self) -> AsyncFetcher:
        st = self.settings
        return AsyncFetcher(
            timeout=st.timeout,
            total_timeout=st.total_timeout,
            max_redirects=st.max_redirects,
            allow_private_hosts=self.allow_private_hosts,
            agent=user_agent(st.site_url),
            concurrency=st.concurrency,
            per_host=st.per_host,
        )

    @property
    def policy(self) -> polling.Policy:
        st = self.settings
        return polling.Policy(
            min_interval=st.minutes(st.min_interval),
            max_interval=st.minutes(st.max_interval),
            default_interval=st.minutes(st.default_interval),
            park_after=timedelta(days=st.park_after_days),
        )

    async def _poll_all(self, run: PollRun, feeds: dict[str, FeedState]) -> None:
        """Fetch every source at once (within the fetcher's limits), parse in worker
        processes, and store on one writer thread (see :class:`_PollWriter`)."""
        writer = _PollWriter(self, asyncio.get_running_loop())
        try:
            async with self.async_fetcher() as fetcher:
                tasks = [
                    asyncio.create_task(self._poll_one(fetcher, src, feeds, writer, run))
                    for src in run.todo
                ]
                watch = asyncio.create_task(run.watch(fetcher))
                stop = asyncio.create_task(self._cancel_on_stop(tasks))
                try:
                    for done, task in enumerate(asyncio.as_completed(tasks), start=1):
                        try:
                            result = await task
                        except asyncio.CancelledError:
                            if not self.stop.is_set():
                                raise
                            continue  # stopped mid-request: this source stays unpolled
                        if result is None:
                            continue
                        if not run.add(result):
                            self.progress("fetch", done, len(tasks), result.detail)
                finally:
                    watch.cancel()
                    stop.cancel()
        finally:
            writer.close()

    async def _cancel_on_stop(self, tasks: list[asyncio.Task[SourceResult | None]]) -> None:
        """On stop, cancel the polls still fetching: a shutdown waits for no server. A poll
        already handed to the writer is stored whole all the same (the writer finishes)."""
        while not self.stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()

    async def _poll_one(
        self,
        fetcher: AsyncFetcher,
        src: Source,
        feeds: dict[str, FeedState],
        writer: _PollWriter,
        run: PollRun,
    ) -> SourceResult | None:
        if self.stop.is_set():
            return None
        polls = []
        for url in src.feeds:
            state = feeds.get(url) or FeedState(url, Validators(), None)
            started = utcnow()
            res = await run.fetch(fetcher, src.id, state, self.settings.max_feed_bytes)
            if res is None:  # cut off before its request was sent: left for the next poll
                return SourceResult(src.id, src.name, "waiting", note=run.untried(url))
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
        self, url: str, started: datetime, res: FetchResult, state: FeedState
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

    # --- on the writer thread: what the store records, and what it came to ----------------------

    @staticmethod
    def _errors(src: Source, polls: list[_FeedPoll]) -> list[str]:
        return [p.error if len(src.feeds) == 1 else f"{p.url}: {p.error}" for p in polls if p.error]

    @staticmethod
    def _shown(polls: list[_FeedPoll]) -> FetchResult | None:
        """The response that speaks for the source: its first failed feed's, else its last."""
        failed = next((p.result for p in polls if p.error), None)
        return failed or (polls[-1].result if polls else None)

    def record(self, src: Source, polls: list[_FeedPoll]) -> SourcePoll:
        """The store's view of a source's poll."""
        errors = self._errors(src, polls)
        shown = self._shown(polls)
        return SourcePoll(
            source_id=src.id,
            feeds=tuple(p.record() for p in polls),
            error="; ".join(errors) if errors else None,
            http_status=shown.status if shown else None,
        )

    def decider(
        self, sources: dict[str, tuple[Source, list[_FeedPoll]]]
    ) -> Callable[[str, polling.Health, int, datetime], polling.Decision]:
        """The pure decision of each source's next health and poll time, for the store."""
        policy = self.policy

        def decide(
            source_id: str, health: polling.Health, new_entries: int, now: datetime
        ) -> polling.Decision:
            src, polls = sources[source_id]
            errors = self._errors(src, polls)
            shown = self._shown(polls)
            published = tuple(
                e.published for p in polls if p.parsed for e in p.parsed.entries if e.published
            )
            ttls = [p.parsed.ttl_minutes for p in polls if p.parsed and p.parsed.ttl_minutes]
            outcome = polling.Outcome(
                ok=not errors,
                http_status=shown.status if shown else None,
                headers=shown.headers if shown else None,
                ttl_minutes=max(ttls, default=None),
                new_entries=new_entries,
                published=published,
            )
            pinned = self.settings.minutes(src.interval) if src.interval else None
            decision = polling.decide(health, outcome, now, policy, pinned=pinned, rng=_RNG)
            if decision.status == "parked" and health.status != "parked":
                log.warning(
                    "source %s (%s) parked after failing since %s: %s; retried daily",
                    src.id,
                    src.name,
                    f"{decision.failing_since:%Y-%m-%d %H:%M} UTC",
                    "; ".join(errors),
                )
            return decision

        return decide

    def result(self, src: Source, polls: list[_FeedPoll], stored: PollStored) -> SourceResult:
        """What a stored poll came to, for the operator."""
        for url, moved_to in stored.moved:
            log.warning(
                "source %s: feed %s moved permanently to %s; polling the new "
                "address from now on (update %s)",
                src.id,
                url,
                moved_to,
                self.sources_path,
            )
        outcomes = []
        for p, new in zip(polls, stored.new_entries, strict=True):
            if p.parsed is not None and not p.error:
                p.outcome = "new" if new else "unchanged"
            outcomes.append(p.outcome)
        new_total = sum(stored.new_entries)
        errors = self._errors(src, polls)
        if errors:
            message = "; ".join(errors)
            return SourceResult(src.id, src.name, "error", new_total, message, status=stored.status)
        outcome = next(
            (o for o in ("new", "unchanged", "not-modified") if o in outcomes), "unchanged"
        )
        return SourceResult(src.id, src.name, outcome, new_total, status=stored.status)


# A poll settles (the cycle goes on) when every source left waits on a host whose oldest request
# has been out STRAGGLER_SECONDS, STRAGGLER_TIMES the source's mean response, and STRAGGLER_TIMES
# the mean answer of this poll so far: a stalled host. Those sources keep going while the
# cycle runs. The last term is the machine's speed now: on a loaded machine every answer is
# slow, and a host is stalled only against what the others took (before any answer, none is).
# bench/stall.py (run --once over the demo, a silent host beside it): a fixed 2 s cost
# 1.32x-1.58x the cycle without it, 1 s 1.06x-1.61x, these 0.5 s 1.05x-1.25x (b10380c, which
# waited for the timeouts: 6.2x-8.6x).
STRAGGLER_SECONDS = 0.5
STRAGGLER_TIMES = 4


def straggler_seconds(mean_response_ms: float | None) -> float:
    """How long a source's host may keep its request unanswered while every other source is
    done before the cycle goes on without it: a habitually slow feed is given more."""
    usual = (mean_response_ms or 0) / 1000
    return max(STRAGGLER_SECONDS, STRAGGLER_TIMES * usual)


class PollRun:
    """One poll on a thread of its own (:meth:`Fetching.start`), so a stalled host does not
    hold the cycle back.

    :meth:`settle` returns once every source is done, or once the only ones left wait on a
    stalled host (one whose oldest request has gone unanswered for ``STRAGGLER_SECONDS``):
    those keep going in the background while the cycle extracts, groups and publishes.
    :meth:`finish` then cuts off what is still out: a request already sent ends as this
    source's error (stored, so the operator sees it), one never sent leaves its source due
    for the next poll. What the stragglers stored meanwhile is processed by the next cycle.
    """

    def __init__(
        self,
        fetching: Fetching,
        sources: Sequence[Source],
        waits: dict[str, SourceResult],
        feeds: dict[str, FeedState],
        patience: dict[str, float],
    ) -> None:
        self.sources = tuple(sources)
        self._patience = patience  # source: seconds (see straggler_seconds); else the least
        self.todo = [src for src in sources if src.id not in waits]
        self._results: dict[str, SourceResult] = dict(waits)
        self._late: list[SourceResult] = []
        self._settled = False
        self._cut = False
        self._cond = threading.Condition()
        self._out: dict[str, tuple[str, asyncio.Future[FetchResult]]] = {}  # source: url, fetch
        self._sent: dict[str, float] = {}  # source: when its request got its slots
        self._answers: list[float] = []  # how long each answer of this poll took
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(fetching, feeds), name="poll-loop", daemon=True
        )
        if self.todo:
            self._thread.start()

    def _run(self, fetching: Fetching, feeds: dict[str, FeedState]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await fetching._poll_all(self, feeds)  # noqa: SLF001 - its own stage's helper

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            self._error = exc
        finally:
            with self._cond:
                self._settled = True
                self._cond.notify_all()

    # --- on the caller's thread -----------------------------------------------------------------

    def wait(self) -> None:
        """Until every source is done, each within its own timeouts."""
        if self._thread.ident:
            self._thread.join()
        self._raise()

    def settle(self) -> list[SourceResult]:
        """Until every source is done or only a stalled host's are left; the results so far."""
        with self._cond:
            self._cond.wait_for(lambda: self._settled or not self._thread.is_alive())
        self._raise()
        return self.results()

    def results(self) -> list[SourceResult]:
        """The results so far, in the order of the sources."""
        with self._cond:
            return [self._results[s.id] for s in self.sources if s.id in self._results]

    def finish(self) -> list[SourceResult]:
        """Cut off what is still out (see the class); the results that came after
        :meth:`settle`."""
        if self._thread.is_alive() and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to cut
                self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._cut_when_due()))
        if self._thread.ident:
            self._thread.join()
        self._raise()
        with self._cond:
            return list(self._late)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # --- on the poll's event loop ---------------------------------------------------------------

    def add(self, result: SourceResult) -> bool:
        """Record a finished source; whether it came after the poll settled."""
        with self._cond:
            self._results[result.source_id] = result
            if self._settled:
                self._late.append(result)
            return self._settled

    async def fetch(
        self, fetcher: AsyncFetcher, source_id: str, state: FeedState, max_bytes: int
    ) -> FetchResult | None:
        """One feed's GET, which :meth:`finish` may cut off: then an error when the request
        was sent, or None when it never was."""
        loop = asyncio.get_running_loop()
        fetch = asyncio.ensure_future(
            fetcher.get(
                state.fetch_url,
                state.validators,
                max_bytes=max_bytes,
                accept=FEED_ACCEPT,
                on_start=lambda: self._sent.__setitem__(source_id, loop.time()),
            )
        )
        self._out[source_id] = (state.fetch_url, fetch)
        try:
            result = await fetch
            self._answered(source_id, loop.time())
            return result
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._cut or (task is not None and task.cancelling()):
                raise
            sent = self._sent.get(source_id)
            if sent is None:
                return None
            seconds = loop.time() - sent
            host = urlsplit(state.fetch_url).hostname
            return FetchResult(
                url=state.fetch_url,
                final_url=state.fetch_url,
                status=None,
                error=f"no answer from {host} in {seconds:.1f} s; the cycle went on without it",
                elapsed=seconds,
            )
        finally:
            self._out.pop(source_id, None)
            self._sent.pop(source_id, None)

    def _answered(self, source_id: str, now: float) -> None:
        sent = self._sent.get(source_id)
        self._answers.append(now - sent if sent is not None else 0.0)

    def untried(self, url: str) -> str:
        host = urlsplit(url).hostname
        return f"not polled: {host} gave no answer to this cycle's earlier requests"

    async def watch(self, fetcher: AsyncFetcher, every: float = 0.1) -> None:
        """Settle the poll once every source left waits on a stalled host."""
        while True:
            await asyncio.sleep(every)
            if not self._answers:  # nothing answered yet: no measure of a stall
                continue
            with self._cond:
                left = [s.id for s in self.todo if s.id not in self._results]
                stalled = bool(left) and all(
                    sid in self._out and fetcher.busy_for(self._out[sid][0]) >= self._due(sid)
                    for sid in left
                )
                if stalled:
                    self._settled = True
                    self._cond.notify_all()
                    log.info(
                        "%d source(s) still wait on a stalled host; the cycle goes on without them",
                        len(left),
                    )
                    return

    def _due(self, source_id: str) -> float:
        """How long ``source_id``'s host may keep a request out before it counts as stalled."""
        usual = STRAGGLER_TIMES * statistics.fmean(self._answers) if self._answers else 0.0
        return max(self._patience.get(source_id, STRAGGLER_SECONDS), usual)

    async def _cut_when_due(self, every: float = 0.05) -> None:
        """Cut off what is still out once each request sent has been out its :meth:`_due`
        time: a source is never reported as failing before its host had that long (on a
        loaded machine a request sent just before the cycle's end would be cut in 0.1 s)."""
        loop = asyncio.get_running_loop()
        while any(
            loop.time() - sent < self._due(sid)
            for sid, sent in list(self._sent.items())
            if sid in self._out
        ):
            await asyncio.sleep(every)
        self._cut_off()

    def _cut_off(self) -> None:
        self._cut = True
        for _url, fetch in list(self._out.values()):
            fetch.cancel()
