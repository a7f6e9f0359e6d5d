"""``balanced-news worker``: one worker process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from procrastinate.worker import Worker
from sqlalchemy.exc import IntegrityError

from aggregator.config import QUEUE_CONNECTIONS, Config
from aggregator.pipeline import Pipeline
from aggregator.store import Pool, connect
from aggregator.store.queue import ensure_queue_schema
from aggregator.workers import check_worker_config
from aggregator.workers.tasks import QUEUES, WorkerState, build_app

log = logging.getLogger("aggregator.workers")

# A stop (SIGTERM, Ctrl-C) lets running tasks end early on their own for GRACE_SECONDS (a
# poll cancels its requests, an extract or a rewrite stops between items); then they are
# cancelled and queued again. By STOP_SECONDS the process is gone, whatever a thread is still
# doing (a long page fetch, a long parse): what it had not committed is rolled back, as after
# a crash, and its task is queued again. systemd's default TimeoutStopSec is 90 s.
GRACE_SECONDS = 3.0
STOP_SECONDS = 7.0


def _pipeline(config: Config, name: str) -> Pipeline:
    """The worker's pipeline, on a pool of at most ``pool_size`` minus the task queue's
    connections. Workers starting together on a new database may race to add the same
    sources (the pipeline syncs them): the loser tries once more."""
    pool = Pool(config.workers.pool_size - QUEUE_CONNECTIONS, f"balanced-news worker {name}")
    engine = connect(config.db_url, pool=pool)  # unreachable, read-only: one line
    pipeline = Pipeline(config, engine)
    try:
        return pipeline.open()
    except IntegrityError:
        return pipeline.open()


def run_worker(
    config: Config, name: str | None = None, queues: Sequence[str] | None = None
) -> None:
    """Run one worker until SIGTERM or Ctrl-C, which stop it within ``STOP_SECONDS``;
    ``queues``: take only these tasks' queues (default: all, see ``tasks.QUEUES``)."""
    check_worker_config(config)
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    pipeline = _pipeline(config, name)
    if ensure_queue_schema(config.db_url).created:  # behind: one line naming db upgrade
        log.info("task queue tables (procrastinate) created")
    pipeline.parsers.start()  # so the first polls do not wait for them
    ws = config.workers
    threads = ThreadPoolExecutor(ws.concurrency, thread_name_prefix="task")
    state = WorkerState(pipeline, threads)
    app = build_app(config, name)
    log.info(
        "worker %s started (queues %s): %d sources, %d tasks at once, %d connections at most; "
        "stop with Ctrl-C or SIGTERM",
        name,
        ", ".join(queues or QUEUES),
        len(config.enabled_sources),
        ws.concurrency,
        ws.pool_size,
    )
    stopping: list[float] = []

    async def main() -> None:
        async with app.open_async():
            worker = Worker(
                app,
                queues=list(queues or QUEUES),
                name=name,
                concurrency=ws.concurrency,
                fetch_job_polling_interval=1.0,
                shutdown_graceful_timeout=GRACE_SECONDS,
                delete_jobs="never" if ws.keep_jobs else "successful",
                additional_context={"state": state},
                install_signal_handlers=False,  # ours: the pipeline must hear it too
                update_heartbeat_interval=ws.heartbeat_seconds,
                stalled_worker_timeout=ws.stalled_seconds,
            )

            def stop(signum: int) -> None:
                if stopping:
                    return
                stopping.append(time.monotonic())
                log.info("worker %s stopping (%s)", name, signal.Signals(signum).name)
                pipeline.stop.set()  # tasks end early: see GRACE_SECONDS
                worker.stop()

            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop, signum)
            await worker.run()

    try:
        asyncio.run(main())
    finally:
        threads.shutdown(wait=False, cancel_futures=True)
        _exit_by(stopping[0] + STOP_SECONDS if stopping else None, name)
        pipeline.close()
        pipeline.engine.dispose()
    log.info("worker %s stopped", name)


def _exit_by(deadline: float | None, name: str) -> None:
    """Wait for the task threads until ``deadline``; past it, end the process now (Python
    would wait for them at exit): their uncommitted work is rolled back by the database."""
    if deadline is None:
        return
    busy = [t for t in threading.enumerate() if t.name.startswith("task")]
    for thread in busy:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [t for t in busy if t.is_alive()]
    if left:
        log.warning(
            "worker %s stopped with %d task threads still busy; their work is queued again",
            name,
            len(left),
        )
        logging.shutdown()
        os._exit(0)
