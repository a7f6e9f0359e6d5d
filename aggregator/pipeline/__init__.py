"""One cycle: fetch -> parse -> extract -> group -> rewrite -> publish, with the store between.

This package is the only place that knows the order of the stages, with the store
(:mod:`aggregator.store`) between them: one module per stage (``fetching``, ``grouping``,
``rewriting``, ``publishing``), each a part of :class:`Pipeline`, plus ``reports``. Each stage
commits its own work in short transactions (one source, one batch of groupings, one story), so
a crash mid-cycle loses nothing already committed and never leaves half a story; network I/O
happens outside transactions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Engine, delete, insert, literal, select

from aggregator.config import Config, Source
from aggregator.fetch import Fetcher, user_agent
from aggregator.models import Health, Metrics
from aggregator.pipeline.fetching import Fetching, parser_pool
from aggregator.pipeline.grouping import Grouping
from aggregator.pipeline.publishing import Publishing
from aggregator.pipeline.reports import (
    ENTRY_ORDER,
    FEED_ACCEPT,
    PAGE_ACCEPT,
    STAGES,
    CycleReport,
    Progress,
    SourceResult,
    _no_progress,
)
from aggregator.pipeline.rewriting import Rewriting
from aggregator.rewrite.model import ModelRewriter
from aggregator.store import Store
from aggregator.store import schema as db
from aggregator.store.schema import (
    EntryRow,
    StoryRow,
    TombstoneRow,
    UTCDateTime,
    utcnow,
)

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
    "ENTRY_ORDER",
    "parser_pool",
]


class Pipeline(Fetching, Grouping, Rewriting, Publishing):
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
        self._owns_engine = engine is None
        self.engine = engine or db.connect(config.db_url)
        self.store = Store(self.engine)
        self.session = self.store.session
        self.progress = progress or _no_progress
        self.stop = stop or threading.Event()
        self.model = ModelRewriter(config.model) if config.model.enabled else None
        self.store.sync_sources(config.sources)

    def close(self) -> None:
        """Let go of what the pipeline holds open: the model's HTTP client, the database
        connections (when it opened them) and the kept story index."""
        if self.model is not None:
            self.model.close()
        if self._owns_engine:
            self.engine.dispose()
        self._kept_index = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        recent = select(EntryRow.story_id).where(
            EntryRow.fetched_at >= cutoff, EntryRow.story_id.is_not(None)
        )
        doomed = (
            EntryRow.fetched_at < cutoff,
            (EntryRow.story_id.is_(None)) | (EntryRow.story_id.not_in(recent)),
        )
        with self.session.begin() as s, self.keeping_the_index(s, doomed):
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
        report.stories = self.store.count_stories()

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
