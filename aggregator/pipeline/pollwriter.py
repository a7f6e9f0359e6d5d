"""The database side of a poll: what one feed's fetch came to, and the one writer thread
that hands finished sources to the store.

Why it exists apart from :mod:`.fetching`: the fetches run on an event loop, while the store is
synchronous and a commit per source is most of a warm cycle's cost; this thread takes every
source finished meanwhile into one transaction (each source still whole or not at all) and
wakes the loop once per batch.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.config import Source
from aggregator.identity import canonical_url
from aggregator.models import FeedPoll, FetchResult, ParsedFeed, SourcePoll
from aggregator.parse import entry_ident
from aggregator.pipeline.reports import SourceResult

if TYPE_CHECKING:
    from aggregator.pipeline.fetching import Fetching


@dataclass
class PolledFeed:
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


_Pending = tuple[Source, list[PolledFeed], "asyncio.Future[SourceResult]"]


class PollWriter:
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

    async def store(self, src: Source, polls: list[PolledFeed]) -> SourceResult:
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
