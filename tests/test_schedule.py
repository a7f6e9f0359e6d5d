"""The scheduler's tick: poll what is due, publish only when something changed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from aggregator.config import Config
from aggregator.db import SourceRow, utcnow
from aggregator.pipeline import Pipeline
from aggregator.schedule import due_sources, overdue, tick


def test_everything_is_due_at_first_then_at_its_interval(config: Config) -> None:
    pipeline = Pipeline(config)
    assert [s.id for s in due_sources(pipeline, utcnow())] == [s.id for s in config.sources]
    report = tick(pipeline)
    assert report is not None and report.feed_path is not None and report.new_entries > 0
    assert due_sources(pipeline, utcnow()) == []
    assert tick(pipeline) is None  # nothing due: no poll, no publish
    # The interval adapts to each source's publishing rate, within min_interval..max_interval
    # (plus up to 10% jitter): nothing is due before the floor, everything after the ceiling.
    soon = utcnow() + timedelta(minutes=config.settings.min_interval - 1)
    assert due_sources(pipeline, soon) == []
    later = utcnow() + timedelta(minutes=config.settings.max_interval * 1.1 + 1)
    assert len(due_sources(pipeline, later)) == len(config.sources)


def test_unchanged_poll_does_not_republish(config: Config) -> None:
    pipeline = Pipeline(config)
    first = tick(pipeline)
    assert first is not None and first.feed_path is not None
    stamp = first.feed_path.stat().st_mtime_ns
    with pipeline.session.begin() as s:
        s.execute(update(SourceRow).values(next_poll_at=utcnow() - timedelta(seconds=1)))
    again = tick(pipeline)
    assert again is not None and again.new_entries == 0
    assert again.feed_path is None and first.feed_path.stat().st_mtime_ns == stamp


def test_overdue_sources_are_counted(config: Config) -> None:
    pipeline = Pipeline(config)
    tick(pipeline)
    assert overdue(pipeline, utcnow()) == 0
    with pipeline.session.begin() as s:
        s.execute(update(SourceRow).values(next_poll_at=utcnow() - timedelta(minutes=30)))
    assert overdue(pipeline, utcnow()) == len(config.sources)
