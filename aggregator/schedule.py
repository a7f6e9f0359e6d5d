"""The long-running scheduler (APScheduler 3) and the one-shot cycle behind ``run --once``.

A tick polls the sources that are due, then processes and publishes when anything changed.
Each tick, as it ends, schedules the next one for the moment the next source falls due (at
most ``TICK_SECONDS`` away), so a source is polled when it is due rather than at the next
whole minute. One worker thread runs the ticks, so steps never overlap; SIGTERM and Ctrl-C set
a stop flag that the pipeline checks between steps, so a stop never cuts a transaction in half.
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
from sqlalchemy.exc import SQLAlchemyError

from aggregator import polling
from aggregator.config import Config, Source
from aggregator.errors import Unavailable
from aggregator.pipeline import CycleReport, Pipeline, Progress
from aggregator.progress import TerminalProgress
from aggregator.store import utcnow, why

log = logging.getLogger("aggregator.schedule")
TICK_SECONDS = 60


def due_sources(pipeline: Pipeline, now: datetime) -> list[Source]:
    """Enabled sources never polled, or whose next poll time has come."""
    next_at = pipeline.store.next_poll_times()
    return [
        src
        for src in pipeline.config.enabled_sources
        if (when := next_at.get(src.id)) is None or when <= now
    ]


def next_tick(pipeline: Pipeline, now: datetime, longest: float = TICK_SECONDS) -> datetime:
    """When the next enabled source falls due (now, if one never was polled), but no later
    than ``longest`` seconds from now: a poll run by hand in between is noticed."""
    next_at = pipeline.store.next_poll_times()
    latest = now + timedelta(seconds=longest)
    due = [next_at.get(src.id) for src in pipeline.config.enabled_sources]
    if any(when is None for when in due):
        return now
    return max(now, min([latest, *(when for when in due if when is not None)]))


def overdue(pipeline: Pipeline, now: datetime, grace: timedelta | None = None) -> int:
    """Enabled sources overdue by more than ``grace`` (two ticks): polling is falling behind."""
    grace = grace or timedelta(seconds=2 * TICK_SECONDS)
    enabled = {src.id for src in pipeline.config.enabled_sources}
    next_at = pipeline.store.next_poll_times()
    return polling.backlog((when for sid, when in next_at.items() if sid in enabled), now, grace)


def tick(pipeline: Pipeline, *, finish: bool = False) -> CycleReport | None:
    """Poll what is due; process and publish if anything new arrived or a source's health moved.

    ``finish``: process and publish even when nothing is due or new. The scheduler asks for it
    on its first tick and after a failed one: a process killed (or a tick failed) after its
    poll committed leaves stored entries unprocessed, and their feeds, polled again, bring
    nothing new that would trigger the processing.
    """
    now = utcnow()
    due = due_sources(pipeline, now)
    if not due and not finish:
        return None
    late = overdue(pipeline, now) if due else 0
    if late:
        log.warning(
            "polling cannot keep up: %d of %d sources are overdue by more than %d minutes "
            "(raise [settings] concurrency, or poll fewer sources)",
            late,
            len(pipeline.config.enabled_sources),
            2 * TICK_SECONDS // 60,
        )
    before = {s.name for s in pipeline.failing_sources()}
    run = pipeline.start_poll(due)  # a stalled host's sources finish in the background
    report = CycleReport()
    try:
        # Timed as in run --once, so /metrics and /status show the scheduler's polls too.
        report.sources = pipeline.timed("fetch", run.settle, report) if due else run.settle()
        report.new_entries = sum(r.new_entries for r in report.sources)
        after = {s.name for s in pipeline.failing_sources()}
        if (
            finish
            or report.new_entries
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
    finally:
        stragglers = run.finish()
    report.sources += stragglers
    report.new_entries += sum(r.new_entries for r in stragglers)
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
    pipeline = Pipeline(config, stop=stop).open()  # a database that cannot work: one line now
    executor = ThreadPoolExecutor(1)
    scheduler = BlockingScheduler(
        executors={"default": executor},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": tick_seconds},
        timezone="UTC",
    )

    unfinished = True  # what a killed predecessor left is finished on the first tick

    def run_tick() -> None:
        nonlocal unfinished
        finish, unfinished = unfinished, True  # until this tick has gone through
        try:
            tick(pipeline, finish=finish)
            unfinished = False
        except (SQLAlchemyError, OSError, Unavailable) as exc:  # the world, not a bug: one line
            reason = why(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
            log.error(
                "tick failed: %s; retrying when the next source is due",
                reason,
                exc_info=log.isEnabledFor(logging.DEBUG),  # the traceback with -v
            )
        finally:  # even after a failed tick: the next one may find the database back
            if not stop.is_set():
                # A job of its own each time (no fixed id): the scheduler drops the spent one
                # by its id, which must never be the next one's.
                now = utcnow()
                try:
                    when = next_tick(pipeline, now, tick_seconds)
                except SQLAlchemyError as exc:
                    log.error("cannot read when sources are due: %s", why(exc))
                    when = now + timedelta(seconds=tick_seconds)
                scheduler.add_job(run_tick, "date", run_date=when, name="tick")

    scheduler.add_job(run_tick, "date", run_date=utcnow(), name="tick")
    log.info(
        "scheduler started: %d sources, each polled when due (checked at least every %ds); "
        "stop with Ctrl-C",
        len(config.enabled_sources),
        tick_seconds,
    )
    with pipeline:
        with stop_on_signals(stop, lambda: scheduler.shutdown(wait=False)):
            scheduler.start()
        executor.shutdown(wait=True)  # a tick still running sees the stop and ends first
    log.info("scheduler stopped")
