"""``balanced-news worker``: one worker process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import IntegrityError

from aggregator.config import Config, ConfigError
from aggregator.pipeline import Pipeline, parser_pool
from aggregator.store.queue import backend_name, ensure_queue_schema, queue_available
from aggregator.workers.tasks import QUEUES, WorkerState, build_app

log = logging.getLogger("aggregator.workers")


def check_worker_config(config: Config) -> None:
    """Workers share PostgreSQL: anything else is one line naming what to use instead."""
    backend = backend_name(config.db_url)
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


def _start_parsers() -> None:
    """Start every feed parser process now (they start one by one as parses come in, and
    each start costs a second of CPU), so the first polls do not pay for them."""
    pool = parser_pool()
    waits = [pool.submit(time.sleep, 0.2) for _ in range(os.cpu_count() or 2)]
    for wait in waits:
        wait.result()


def run_worker(
    config: Config, name: str | None = None, queues: Sequence[str] | None = None
) -> None:
    """Run one worker until SIGTERM or Ctrl-C, which stop it once its running tasks end;
    ``queues``: take only these tasks' queues (default: all, see ``tasks.QUEUES``)."""
    check_worker_config(config)
    if ensure_queue_schema(config.db_url):
        log.info("task queue tables (procrastinate) created")
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    pipeline = _pipeline(config)
    _start_parsers()
    threads = ThreadPoolExecutor(config.workers.concurrency, thread_name_prefix="task")
    state = WorkerState(pipeline, threads)
    app = build_app(config)
    log.info(
        "worker %s started (queues %s): %d sources, %d tasks at once; stop with Ctrl-C or SIGTERM",
        name,
        ", ".join(queues or QUEUES),
        len(config.enabled_sources),
        config.workers.concurrency,
    )

    async def main() -> None:
        async with app.open_async():
            await app.run_worker_async(
                name=name, queues=list(queues or QUEUES), additional_context={"state": state}
            )

    try:
        asyncio.run(main())
    finally:
        threads.shutdown(wait=True)
        pipeline.close()
    log.info("worker %s stopped", name)
