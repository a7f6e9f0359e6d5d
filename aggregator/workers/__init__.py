"""Workers: the pipeline's stages as procrastinate tasks, shared by processes on many hosts.

``balanced-news worker`` runs one worker against PostgreSQL; start as many as needed, anywhere,
with the same ``BALANCED_NEWS_DB``, ``BALANCED_NEWS_SOURCES``, ``BALANCED_NEWS_OUT`` and
``BALANCED_NEWS_ALLOW_PRIVATE_HOSTS``. The work flows through procrastinate's tables:

- ``dispatch`` (periodic, deferred once per tick whatever the number of workers): releases the
  tasks of workers whose heartbeat stopped, claims the due sources (``FOR UPDATE SKIP LOCKED``,
  ``next_poll_at`` pushed forward as a lease) and defers ``poll`` tasks, each of one host
  group's sources (``hosts.py``) under that group's lock: one poll of a host runs at a time in
  the whole cluster, so the per-host limit holds across workers;
- ``poll``: polls its sources, then defers ``extract`` when it stored something new, and
  ``publish`` when the failing sources changed;
- ``extract``, then ``group`` (grouping, rewriting and pruning), then ``publish``: each runs
  on one worker at a time (its lock) and at most one more waits (its queueing lock), so a
  burst of polls coalesces into a few runs.

This module imports no procrastinate (``runner`` and ``tasks`` do), so that a missing
``postgres`` extra is one line, not a traceback. SQLite installs keep the single-process path
(``run``, ``scheduler.py``).
"""

from __future__ import annotations

from aggregator.config import Config
from aggregator.errors import WorkerModeError
from aggregator.store.queue import backend_name, queue_available


def check_worker_config(config: Config) -> None:
    """Workers share PostgreSQL through procrastinate: anything missing is one line naming
    what to use or install instead."""
    backend = backend_name(config.db_url)
    if backend != "postgresql":
        raise WorkerModeError(
            f"`balanced-news worker` needs PostgreSQL (BALANCED_NEWS_DB=postgresql+psycopg://...), "
            f"not {backend}; with SQLite run `balanced-news run` (or scheduler.py) instead"
        )
    if not queue_available():
        raise WorkerModeError(
            "`balanced-news worker` needs the postgres extra (procrastinate and psycopg): "
            "pip install 'balanced-news[postgres]'"
        )


__all__ = ["check_worker_config"]
