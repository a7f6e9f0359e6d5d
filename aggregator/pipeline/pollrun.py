"""One poll on a thread of its own, and when the cycle stops waiting for it.

Why it exists: a stalled host must not hold the whole cycle back. :class:`PollRun` runs the
poll's event loop on its own thread, tells the cycle when only a stalled host's sources are
left (``settle``), and cuts those off at the cycle's end (``finish``); how long a host may
keep a request out before it counts as stalled is decided here (``straggler_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aggregator.config import Source
from aggregator.fetch import AsyncFetcher
from aggregator.models import FeedState, FetchResult
from aggregator.pipeline.reports import FEED_ACCEPT, SourceResult, log

if TYPE_CHECKING:
    from aggregator.pipeline.fetching import Fetching


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
