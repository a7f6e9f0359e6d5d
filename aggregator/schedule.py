"""The long-running scheduler (APScheduler 3) and the one-shot cycle behind ``run --once``.

A single tick job polls the sources that are due, then processes and publishes when anything
changed. One worker thread runs it, so steps never overlap; SIGTERM and Ctrl-C set a stop flag
that the pipeline checks between steps, so a stop never cuts a transaction in half.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import select

from aggregator import polling
from aggregator.config import Config, Source
from aggregator.db import SourceRow, utcnow
from aggregator.pipeline import CycleReport, Pipeline, Progress
from aggregator.progress import TerminalProgress

log = logging.getLogger("aggregator.schedule")
TICK_SECONDS = 60


def due_sources(pipeline: Pipeline, now: datetime) -> list[Source]:
    """Enabled sources never polled, or whose next poll time has come."""
    with pipeline.session() as s:
        next_at = dict(s.execute(select(SourceRow.id, SourceRow.next_poll_at)).all())
    return [
        src
        for src in pipeline.config.enabled_sources
        if next_at.get(src.id) is None or next_at[src.id] <= now
    ]


def overdue(pipeline: Pipeline, now: datetime, grace: timedelta | None = None) -> int:
    """Enabled sources overdue by more than ``grace`` (two ticks): polling is falling behind."""
    grace = grace or timedelta(seconds=2 * TICK_SECONDS)
    enabled = {src.id for src in pipeline.config.enabled_sources}
    with pipeline.session() as s:
        rows = s.execute(select(SourceRow.id, SourceRow.next_poll_at)).all()
    return polling.backlog((when for sid, when in rows if sid in enabled), now, grace)


def tick(pipeline: Pipeline) -> CycleReport | None:
    """Poll what is due; process and publish if anything new arrived or a source's health moved."""
    now = utcnow()
    due = due_sources(pipeline, now)
    if not due:
        return None
    late = overdue(pipeline, now)
    if late:
        log.warning(
            "polling cannot keep up: %d of %d sources are overdue by more than %d minutes "
            "(raise [settings] concurrency, or poll fewer sources)",
            late,
            len(pipeline.config.enabled_sources),
            2 * TICK_SECONDS // 60,
        )
    before = {s.name for s in pipeline.failing_sources()}
    report = CycleReport(sources=pipeline.poll(due))
    report.new_entries = sum(r.new_entries for r in report.sources)
    after = {s.name for s in pipeline.failing_sources()}
    if (
        report.new_entries
        or before != after
        or not pipeline.config.out_dir.joinpath("balanced.atom").exists()
    ):
        pipeline.process(report)
        log.info(
            "published %s: %d new entries, %d stories, %d failing sources",
            report.feed_path,
            report.new_entries,
            report.stories,
            len(after),
        )
    return report


@contextmanager
def stop_on_signals(
    stop: threading.Event, on_stop: Callable[[], None] = lambda: None
) -> Iterator[None]:
    """While inside, SIGTERM and Ctrl-C set ``stop`` (the pipeline halts between steps)."""

    def handler(signum: int, _frame: object) -> None:
        log.warning("received %s: stopping after the current step", signal.Signals(signum).name)
        stop.set()
        on_stop()

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; nothing to install
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_once(config: Config, progress: Progress | None = None) -> CycleReport:
    """One full cycle over every enabled source; failing sources do not fail the cycle."""
    stop = threading.Event()
    with Pipeline(config, progress=progress, stop=stop) as pipeline, stop_on_signals(stop):
        return pipeline.run_cycle()


def run(config: Config, once: bool) -> int:
    """What ``run [--once]`` and ``scheduler.py`` do: one cycle with a summary, or forever."""
    if not once:
        run_forever(config)
        return 0
    progress = TerminalProgress()
    report = run_once(config, progress)
    progress.close()
    print("\n".join(report.summary()))
    return 0


def run_forever(config: Config, tick_seconds: int = TICK_SECONDS) -> None:
    """Poll each source at its interval until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    pipeline = Pipeline(config, stop=stop)
    executor = ThreadPoolExecutor(1)
    scheduler = BlockingScheduler(
        executors={"default": executor},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": tick_seconds},
        timezone="UTC",
    )
    scheduler.add_job(
        tick,
        "interval",
        seconds=tick_seconds,
        args=[pipeline],
        id="tick",
        next_run_time=utcnow(),
    )
    log.info(
        "scheduler started: %d sources, checking every %ds; stop with Ctrl-C",
        len(config.enabled_sources),
        tick_seconds,
    )
    with pipeline:
        with stop_on_signals(stop, lambda: scheduler.shutdown(wait=False)):
            scheduler.start()
        executor.shutdown(wait=True)  # a tick still running sees the stop and ends first
    log.info("scheduler stopped")
