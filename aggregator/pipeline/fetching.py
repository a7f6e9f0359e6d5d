"""The fetch and parse stage: fetch every source's feeds, parse them, store them.

Why it exists: this is the stage itself, :class:`Fetching` (which sources are due, each feed's
GET, the layered "not modified" checks, what the store records for a poll and the pure
decision of the source's next poll). Around it: :mod:`.pollrun` runs a poll on a thread of
its own and decides when the cycle stops waiting for a stalled host, :mod:`.parsing` parses in
worker processes under a deadline, and :mod:`.pollwriter` stores finished sources from one
writer thread, each whole or not at all.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from aggregator import polling
from aggregator.config import FetchSettings, Source
from aggregator.fetch import AsyncFetcher, user_agent
from aggregator.models import (
    FeedState,
    FetchResult,
    PollStored,
    SourcePoll,
    Validators,
)
from aggregator.parse import parse_feed
from aggregator.pipeline.parsing import ParserPool
from aggregator.pipeline.pollrun import PollRun, straggler_seconds
from aggregator.pipeline.pollwriter import PolledFeed, PollWriter
from aggregator.pipeline.reports import Progress, SourceResult, log
from aggregator.store import StoreType, utcnow

_RNG = random.Random()  # jitter; one generator, not one seeded from the OS per poll


def _same_validators(sent: Validators, got: Validators) -> bool:
    """A 200 carrying the very validators we sent: the server ignored our conditional GET."""
    if sent.etag or got.etag:
        return bool(sent.etag) and sent.etag == got.etag
    return bool(sent.last_modified) and sent.last_modified == got.last_modified


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
        parsers: ParserPool,
        stop: threading.Event,
        progress: Progress,
    ) -> None:
        self.store = store
        self.parsers = parsers  # the pipeline's: started, restarted and ended by it
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
        processes, and store on one writer thread (see :class:`PollWriter`)."""
        writer = PollWriter(self, asyncio.get_running_loop())
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
        writer: PollWriter,
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
                polls.append(PolledFeed(url, started, res, error=f"internal error: {exc}"))
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
    ) -> PolledFeed:
        """Layered "not modified": a 304, else the same validators, else the same body bytes;
        only a changed document is parsed (in a worker process, off the event loop)."""
        poll = PolledFeed(url, started, res)
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
                poll.parsed = await self.parsers.parse(parse, self.settings.parse_timeout)
                if poll.parsed.error:
                    poll.outcome, poll.error = "error", poll.parsed.error
        return poll

    # --- on the writer thread: what the store records, and what it came to ----------------------

    @staticmethod
    def _errors(src: Source, polls: list[PolledFeed]) -> list[str]:
        return [p.error if len(src.feeds) == 1 else f"{p.url}: {p.error}" for p in polls if p.error]

    @staticmethod
    def _shown(polls: list[PolledFeed]) -> FetchResult | None:
        """The response that speaks for the source: its first failed feed's, else its last."""
        failed = next((p.result for p in polls if p.error), None)
        return failed or (polls[-1].result if polls else None)

    def record(self, src: Source, polls: list[PolledFeed]) -> SourcePoll:
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
        self, sources: dict[str, tuple[Source, list[PolledFeed]]]
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

    def result(self, src: Source, polls: list[PolledFeed], stored: PollStored) -> SourceResult:
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
