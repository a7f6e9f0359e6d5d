"""The scheduler's tick: poll what is due, publish only when something changed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update

from aggregator.config import Config
from aggregator.demo import SampleWeb
from aggregator.pipeline import Pipeline
from aggregator.schedule import due_sources, next_tick, overdue, tick
from aggregator.store.schema import SourceRow, utcnow
from tests.conftest import respond, write_sources
from tests.site_events import EVENTS, stories_by_event
from tests.test_logs import STAMPED


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


def test_a_finishing_tick_processes_what_a_killed_run_left(config: Config) -> None:
    """A run killed after its poll committed leaves entries unprocessed; polled again, their
    feeds bring nothing new. The scheduler's first tick finishes them (test_crash.py kills a
    real scheduler)."""
    with Pipeline(config) as pipeline:
        assert pipeline.poll() and pipeline.store.count_entries() > 0  # then the kill
        assert due_sources(pipeline, utcnow()) == []
        assert tick(pipeline) is None, "nothing due: an ordinary tick does nothing"
        assert not config.out_dir.joinpath("balanced.atom").exists()
        report = tick(pipeline, finish=True)
        assert report is not None and report.sources == [] and report.feed_path is not None
        assert pipeline.store.ungrouped_entries() == []
        assert report.stories == len(stories_by_event(pipeline)) == len(EVENTS)


def test_overdue_sources_are_counted(config: Config) -> None:
    pipeline = Pipeline(config)
    tick(pipeline)
    assert overdue(pipeline, utcnow()) == 0
    with pipeline.session.begin() as s:
        s.execute(update(SourceRow).values(next_poll_at=utcnow() - timedelta(minutes=30)))
    assert overdue(pipeline, utcnow()) == len(config.sources)


def test_next_tick_follows_the_next_due_time(config: Config) -> None:
    pipeline = Pipeline(config)
    now = utcnow()
    assert next_tick(pipeline, now) == now, "never polled: due at once"
    tick(pipeline)
    soon = utcnow() + timedelta(seconds=7)
    with pipeline.session.begin() as s:
        s.execute(update(SourceRow).where(SourceRow.id == "beta").values(next_poll_at=soon))
    assert next_tick(pipeline, utcnow()) == soon
    assert next_tick(pipeline, utcnow(), longest=3) < soon, "checked at least every 3 s"
    assert next_tick(pipeline, soon + timedelta(seconds=1)) == soon + timedelta(seconds=1)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_run_polls_an_interval_1_source_within_its_minute(web: SampleWeb, tmp_path: Path) -> None:
    """`interval = 1` with a 6-second minute: each poll is planned 6 to 6.6 s after the last
    (the interval and its jitter, 60-66 s in real minutes), where a fixed one-minute tick
    polled every other minute. The plan is read from the database; the polls the server saw
    are never sooner than a minute apart, nor two minutes (wide margins for a loaded machine:
    no bound here depends on the machine's speed)."""
    minute = 6
    times: list[float] = []
    # Without its <ttl>30</ttl>: a server's hint outweighs a configured interval.
    feed = (web.body("alpha/rss.xml") or b"").replace(b"<ttl>30</ttl>", b"")

    def alpha(h) -> None:  # noqa: ANN001 - the stdlib's handler
        times.append(time.monotonic())
        respond(200, feed, "application/rss+xml", ETag='"a1"')(h)

    web.routes["/alpha/rss.xml"] = alpha
    sources = write_sources(web, tmp_path)
    text = sources.read_text(encoding="utf-8")
    text = text.replace("[settings]\n", f"[settings]\nminute_seconds = {minute}\n", 1)
    text = text.replace('id = "alpha"\n', 'id = "alpha"\ninterval = 1\n', 1)
    sources.write_text(text, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator.cli", "run", "--allow-private-hosts"]
        + ["--sources", str(sources), "--db", f"sqlite:///{tmp_path / 'r.db'}"]
        + ["--out", str(tmp_path / "out")],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(times) < 5 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert len(times) >= 5, err
    gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]  # the first tick is long
    assert all(minute <= gap < 2 * minute for gap in gaps), (gaps, err)
    engine = create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect() as conn:
        last, planned = conn.execute(
            select(SourceRow.last_poll_at, SourceRow.next_poll_at).where(SourceRow.id == "alpha")
        ).one()
    engine.dispose()
    assert minute <= (planned - last).total_seconds() <= minute * 1.1, (last, planned)
    lines = err.strip().splitlines()
    assert all(STAMPED.match(line) for line in lines), err
    assert "Running job" not in err and "HTTP Request" not in err
