"""One cycle: fetch -> parse -> extract -> group -> rewrite -> publish, with the store between.

This package is the only place that knows the order of the stages, with the store
(:mod:`aggregator.store`) between them: one module per stage (``fetching``, ``extracting``,
``grouping``, ``rewriting``, ``publishing``), each an object :class:`Pipeline` holds, plus
``reports``; the fetch stage's parts have modules of their own: ``parsing`` (the feed parser
processes), ``pollrun`` (a poll on its own thread), ``pollwriter`` (its writer thread). Each stage
commits its own work in short transactions (one source, one batch of groupings, one story), so
a crash mid-cycle loses nothing already committed and never leaves half a story; network I/O
happens outside transactions.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine

from aggregator.config import Config, Source
from aggregator.fetch import Fetcher, user_agent
from aggregator.models import Health, Metrics, PublishedStory, SourceStatus
from aggregator.pipeline.extracting import Extracting
from aggregator.pipeline.fetching import Fetching
from aggregator.pipeline.grouping import Grouping
from aggregator.pipeline.parsing import ParserPool
from aggregator.pipeline.pollrun import PollRun
from aggregator.pipeline.publishing import Publishing, publishing_of
from aggregator.pipeline.reports import (
    FEED_ACCEPT,
    PAGE_ACCEPT,
    STAGES,
    CycleReport,
    Progress,
    SourceResult,
    _no_progress,
)
from aggregator.pipeline.rewriting import Rewriting
from aggregator.publish import safe_url
from aggregator.rewrite.model import ModelRewriter
from aggregator.store import Sessions, Store, connect, utcnow

__all__ = [
    "Pipeline",
    "CycleReport",
    "SourceResult",
    "Health",
    "Metrics",
    "Progress",
    "STAGES",
    "FEED_ACCEPT",
    "PAGE_ACCEPT",
    "ParserPool",
    "PollRun",
]

T = TypeVar("T")


def page_fetcher(config: Config) -> Callable[[], Fetcher]:
    """The one-at-a-time fetcher (article pages), with the same limits as polling. (A
    function of the configuration, not a method: a stage holding the pipeline would keep it,
    and its parser processes, alive in a reference cycle.)"""
    st = config.settings
    return functools.partial(
        Fetcher,
        timeout=st.timeout,
        total_timeout=st.total_timeout,
        max_redirects=st.max_redirects,
        allow_private_hosts=config.allow_private_hosts,
        agent=user_agent(st.site_url),
    )


@dataclass(frozen=True)
class _Opened:
    """What :meth:`Pipeline.open` made: the database and the stages working on it."""

    engine: Engine
    owns_engine: bool
    store: Store
    model: ModelRewriter | None
    fetching: Fetching
    extracting: Extracting
    grouping: Grouping
    rewriting: Rewriting
    publishing: Publishing


class Pipeline:
    """The stages, run against one database and one configuration.

    Each stage is an object of its own holding the store and its own settings, no more
    (``fetching``: the fetch part of ``[settings]``, ``extracting``: the extract part,
    ``grouping``: ``[grouping]``, ``rewriting``: ``[rewrite]`` and ``[model]``,
    ``publishing``: the publish part); the pipeline's methods of the same names run them;
    ``parsers`` is its feed parser processes (:class:`ParserPool`), ended when it closes.
    Making a pipeline does no I/O and starts no process: :meth:`open` (or the first use of the
    store or a stage, or ``with``) connects to the database, creating it at the newest schema
    when it is empty, and records the configured sources.
    """

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
        self.progress = progress or _no_progress
        self.stop = stop or threading.Event()
        self._engine = engine  # given: the caller's to dispose of
        self.parsers = ParserPool()  # the feed parser processes, started by the first parse
        self._opened: _Opened | None = None
        self._opening = threading.Lock()

    def open(self) -> Pipeline:
        """Connect to the database and record the configured sources, once (later calls
        return at once). Raises what :func:`aggregator.store.connect` raises: a database that
        is down, read-only or at another schema is one line before anything is polled."""
        self._parts()
        return self

    def _open(self) -> _Opened:
        config = self.config
        engine = self._engine or connect(config.db_url)
        store = Store(engine)
        try:
            store.sync_sources(config.sources)
        except BaseException:
            if self._engine is None:
                engine.dispose()
            raise
        model = ModelRewriter(config.model) if config.model.enabled else None
        return _Opened(
            engine=engine,
            owns_engine=self._engine is None,
            store=store,
            model=model,
            fetching=Fetching(
                store,
                config.enabled_sources,
                config.settings.fetch,
                allow_private_hosts=config.allow_private_hosts,
                sources_path=config.sources_path,
                parsers=self.parsers,
                stop=self.stop,
                progress=self.progress,
            ),
            extracting=Extracting(
                store,
                config.sources,
                config.settings.extract,
                page_fetcher(config),
                stop=self.stop,
                progress=self.progress,
            ),
            grouping=Grouping(
                store,
                config.sources,
                config.grouping,
                progress=self.progress,
            ),
            rewriting=Rewriting(
                store,
                config.sources,
                config.rewrite,
                config.model,
                model,
                stop=self.stop,
                progress=self.progress,
                usable_link=lambda url: safe_url(url) is not None,
            ),
            publishing=publishing_of(store, config, progress=self.progress),
        )

    def _parts(self) -> _Opened:
        opened = self._opened
        if opened is None:
            with self._opening:
                opened = self._opened
                if opened is None:
                    opened = self._opened = self._open()
        return opened

    @property
    def engine(self) -> Engine:
        return self._parts().engine

    @property
    def store(self) -> Store:
        return self._parts().store

    @property
    def session(self) -> Sessions:
        return self._parts().store.session

    @property
    def model(self) -> ModelRewriter | None:
        return self._parts().model

    @property
    def fetching(self) -> Fetching:
        return self._parts().fetching

    @property
    def extracting(self) -> Extracting:
        return self._parts().extracting

    @property
    def grouping(self) -> Grouping:
        return self._parts().grouping

    @property
    def rewriting(self) -> Rewriting:
        return self._parts().rewriting

    @property
    def publishing(self) -> Publishing:
        return self._parts().publishing

    def close(self) -> None:
        """Let go of what the pipeline holds open: the feed parser processes, the model's HTTP
        client, the database connections (when it opened them) and the kept story index."""
        self.parsers.close()
        opened = self._opened
        if opened is None:
            return
        if opened.model is not None:
            opened.model.close()
        if opened.owns_engine:
            opened.engine.dispose()
        opened.grouping.kept_index = None

    def __enter__(self) -> Pipeline:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the stages ----------------------------------------------------------------------------

    def poll(self, sources: Sequence[Source] | None = None) -> list[SourceResult]:
        """Fetch, parse and store the given sources (default: every enabled one, except those
        waiting out a backoff); see :class:`Fetching`."""
        return self.fetching.poll(sources)

    def start_poll(self, sources: Sequence[Source] | None = None) -> PollRun:
        """The same poll on a thread of its own, for a cycle that goes on without a stalled
        host: settle it, process, then finish it (see :class:`PollRun`)."""
        return self.fetching.start(sources)

    def extract_pending(self) -> int:
        """Give every entry without text its article text (see :class:`Extracting`)."""
        return self.extracting.extract_pending()

    def group(self) -> set[str]:
        """Assign every ungrouped entry to a story; the ids of the stories touched."""
        return self.grouping.group()

    def rewrite(self, story_ids: Iterable[str] | None = None) -> int:
        """Rewrite the stories whose inputs changed; how many were rewritten."""
        return self.rewriting.rewrite(story_ids)

    def publish(self) -> Path:
        """Write every output and ping the WebSub hub; the main feed's path."""
        return self.publishing.publish()

    def published_stories(self, *, everything: bool = False) -> list[PublishedStory]:
        return self.publishing.published_stories(everything=everything)

    def failing_sources(self) -> list[SourceStatus]:
        return self.publishing.failing_sources()

    def record_stage(self, stage: str, seconds: float) -> None:
        self.publishing.record_stage(stage, seconds)

    def health(self) -> Health:
        return self.publishing.health()

    def metrics(self) -> Metrics:
        return self.publishing.metrics()

    # --- retention -----------------------------------------------------------------------------

    def prune(self) -> int:
        """Drop what was fetched more than ``retention_days`` ago (0 keeps everything).

        Age is counted from when we stored an entry, so an old article that turns up today is
        kept for the whole retention period rather than dropped on arrival. The kept story
        index survives when nothing it holds was pruned.
        """
        days = self.settings.retention_days
        if not days:
            return 0
        now = utcnow()
        kept = self.grouping.take_index()
        pruned = self.store.prune_entries(
            now - timedelta(days=days), now, kept.since if kept else None
        )
        self.grouping.after_prune(kept, pruned)
        return pruned.entries

    # --- the whole cycle -----------------------------------------------------------------------

    def timed(self, stage: str, step: Callable[[], T], report: CycleReport | None = None) -> T:
        """Run one stage, remembering how long it took (for /metrics and /healthz, and in
        ``report`` when given): the one place stages are timed, for a cycle and for workers."""
        started = time.perf_counter()
        result = step()
        seconds = time.perf_counter() - started
        self.record_stage(stage, seconds)
        if report is not None:
            report.seconds[stage] = seconds
        return result

    def process(self, report: CycleReport) -> None:
        """Everything after fetching: extract, group, rewrite, publish (timed per stage)."""
        if self.stop.is_set():
            return
        self.timed("extract", self.extract_pending, report)
        if self.stop.is_set():
            return
        touched = self.timed("group", self.group, report)
        if self.stop.is_set():
            return
        report.rewritten = self.timed("rewrite", lambda: self.rewrite(touched), report)
        started = time.perf_counter()
        self.prune()
        report.feed_path = self.publish()
        report.seconds["publish"] = time.perf_counter() - started
        report.stories = self.store.count_stories(live=True)  # not the merged-away rows

    def run_cycle(self, sources: Sequence[Source] | None = None) -> CycleReport:
        """Poll, then extract, group, rewrite and publish: one full cycle."""
        report = CycleReport()
        run = self.start_poll(sources)
        try:
            report.sources = self.timed("fetch", run.settle, report)
            report.new_entries = sum(r.new_entries for r in report.sources)
            self.process(report)
        finally:
            late = run.finish()  # a stalled host's sources: stored now, processed next cycle
        report.sources += late
        report.new_entries += sum(r.new_entries for r in late)
        return report
