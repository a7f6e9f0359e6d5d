"""The publish stage, and the health and metrics read from the database."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from aggregator import db, publish
from aggregator.config import ORIGIN_FILE
from aggregator.db import (
    EntryRow,
    PollRow,
    SourceRow,
    StageRow,
    StoryRow,
    utcnow,
)
from aggregator.models import (
    PublishedStory,
    RelatedLink,
    RetiredStory,
    SourceStatus,
    StorylineEvent,
)
from aggregator.pipeline.reports import (
    Health,
    Metrics,
    log,
)
from aggregator.publish import websub, write_atomic

RETIRED_DAYS = 7  # how long a merged story's tombstone and forwarding page stay published


class Publishing:
    """The publish stage, health and metrics of :class:`~aggregator.pipeline.Pipeline`."""

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
            rows = list(s.scalars(query))
            lines: dict[str, list[StorylineEvent]] = {}
            wanted = {row.storyline_id for row in rows if row.storyline_id}
            if wanted:
                events = s.execute(
                    select(
                        StoryRow.storyline_id,
                        StoryRow.id,
                        StoryRow.headline,
                        StoryRow.first_published,
                    )
                    .where(
                        StoryRow.storyline_id.in_(wanted),
                        StoryRow.content_html.is_not(None),
                        StoryRow.merged_into.is_(None),
                    )
                    .order_by(StoryRow.first_published, StoryRow.id)
                )
                for line, sid, headline, when in events:
                    lines.setdefault(line, []).append(StorylineEvent(sid, headline or "", when))
            stories = []
            for row in rows:
                line = lines.get(row.storyline_id or "", [])
                place = next((n for n, e in enumerate(line) if e.id == row.id), 0)
                stories.append(
                    PublishedStory(
                        id=row.id,
                        headline=row.headline or "",
                        summary=row.summary or "",
                        content_html=row.content_html or "",
                        published=row.first_published,
                        updated=row.updated_at or row.first_published,
                        leans=tuple(json.loads(row.leans_json or "[]")),
                        related=tuple(
                            RelatedLink(**r) for r in json.loads(row.related_json or "[]")
                        ),
                        storyline_id=(row.storyline_id or "") if len(line) > 1 else "",
                        earlier=tuple(line[:place]),
                        later=tuple(line[place + 1 :]),
                    )
                )
            return stories

    def retired_stories(self, days: int = RETIRED_DAYS) -> list[RetiredStory]:
        """Stories merged into another in the last ``days`` days, newest first: long enough
        for every reader polling the feed to see the tombstone."""
        kept = aliased(StoryRow)
        with self.session() as s:
            rows = s.execute(
                select(StoryRow.id, StoryRow.merged_into, kept.headline, StoryRow.merged_at)
                .join(kept, kept.id == StoryRow.merged_into)
                .where(
                    StoryRow.merged_at >= utcnow() - timedelta(days=days),
                    kept.content_html.is_not(None),
                )
                .order_by(StoryRow.merged_at.desc(), StoryRow.id)
            ).all()
        return [RetiredStory(sid, into, headline or "", when) for sid, into, headline, when in rows]

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
            self.retired_stories(),
        )
        origin = {
            "db": db.lasting_url(self.config.db_url),
            "sources": str(self.config.sources_path.resolve()),
        }
        write_atomic(
            self.config.out_dir / ORIGIN_FILE, (json.dumps(origin, indent=2) + "\n").encode()
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
