"""``balanced-news worker``: one worker process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from aggregator.config import Config, ConfigError
from aggregator.pipeline import Pipeline, parser_pool
from aggregator.store.queue import ensure_queue_schema, queue_available
from aggregator.workers.tasks import WorkerState, build_app

log = logging.getLogger("aggregator.workers")


def check_worker_config(config: Config) -> None:
    """Workers share PostgreSQL: anything else is one line naming what to use instead."""
    backend = make_url(config.db_url).get_backend_name()
    if backend != "postgresql":
        raise ConfigError(
            f"`balanced-news worker` needs PostgreSQL (BALANCED_NEWS_DB=postgresql+psycopg://...), "
            f"not {backend}; with SQLite run `balanced-news run` (or scheduler.py) instead"
        )
    if not queue_available():
        raise ConfigError(
            "`balanced-news worker` needs procrastinate: pip install 'balanced-news[postgres]'"
        )


def _pipeline(config: Config) -> Pipeline:
    """The worker's pipeline. Workers starting together on a new database may race to add
    the same sources (the pipeline syncs them): the loser tries once more."""
    try:
        return Pipeline(config)
    except IntegrityError:
        return Pipeline(config)


def run_worker(config: Config, name: str | None = None) -> None:
    """Run one worker until SIGTERM or Ctrl-C, which stop it once its running tasks end."""
    check_worker_config(config)
    if ensure_queue_schema(config.db_url):
        log.info("task queue tables (procrastinate) created")
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    pipeline = _pipeline(config)
    parser_pool()  # the feed parsers start before the first poll, not during it
    threads = ThreadPoolExecutor(config.workers.concurrency, thread_name_prefix="task")
    state = WorkerState(pipeline, threads)
    app = build_app(config)
    log.info(
        "worker %s started: %d sources, %d tasks at once; stop with Ctrl-C or SIGTERM",
        name,
        len(config.enabled_sources),
        config.workers.concurrency,
    )

    async def main() -> None:
        async with app.open_async():
            await app.run_worker_async(name=name, additional_context={"state": state})

    try:
        asyncio.run(main())
    finally:
        threads.shutdown(wait=True)
        pipeline.close()
    log.info("worker %s stopped", name)
